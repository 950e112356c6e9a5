/**
 * For providers whose storage cannot be made here (no device-mapper, no ZFS module): a command runner
 * that records every argv and answers from a script, and a mount table written by the test.
 */
import type { CommandResult, CommandRunner } from '../../src/snapshot/command-runner.js';
import { readMounts } from '../../src/snapshot/volumes.js';
import type { Volume } from '../../src/model.js';

export interface FakeRunner {
  run: CommandRunner;
  /** Every command run, as one string per argv (`zfs snapshot a@b c@b`). */
  calls: string[];
}

/** `answer` gets the argv joined by spaces and returns a result, or undefined for plain success. */
export function fakeRunner(answer: (cmd: string) => Partial<CommandResult> | undefined = () => undefined): FakeRunner {
  const calls: string[] = [];
  return {
    calls,
    run: async (file, args) => {
      const cmd = [file, ...args].join(' ');
      calls.push(cmd);
      const a = answer(cmd) ?? {};
      return { exitCode: a.exitCode ?? 0, stdout: a.stdout ?? '', stderr: a.stderr ?? '' };
    },
  };
}

/** A mount table: each entry is [mount point, fs type, device, root?]. */
export function fakeMounts(entries: Array<[string, string, string, string?]>): () => Volume[] {
  const text = entries.map(([mp, fs, dev, root], i) => `${100 + i} 1 0:${50 + i} ${root ?? '/'} ${mp} rw,relatime - ${fs} ${dev} rw`).join('\n');
  return () => readMounts(text);
}
