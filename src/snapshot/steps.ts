/** Time per step inside a provider's take, in ms, for the window breakdown that `ebr show` prints. */
export function timed<T>(steps: Record<string, number>, name: string, fn: () => T): T {
  const t0 = performance.now();
  try {
    return fn();
  } finally {
    steps[name] = (steps[name] ?? 0) + performance.now() - t0;
  }
}
