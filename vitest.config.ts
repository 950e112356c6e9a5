import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    testTimeout: 120_000,
    hookTimeout: 180_000,
    // Real servers and loop devices: files run one at a time so they never fight over ports, devices or the 2 cores.
    fileParallelism: false,
    reporters: ['default'],
  },
});
