/** A progress bar on a terminal; nothing at all when output goes to a file, a pipe or --json. */
import cliProgress from 'cli-progress';
import type { Progress, ProgressListener } from '../workflow/progress.js';
import { bytes } from './format.js';

export function progressBar(enabled: boolean): { listener: ProgressListener | undefined; stop(): void } {
  if (!enabled) return { listener: undefined, stop() {} };
  let bar: cliProgress.SingleBar | undefined;
  let phase = '';
  return {
    listener(p: Progress) {
      if (!bar || phase !== p.phase) {
        bar?.stop();
        phase = p.phase;
        bar = new cliProgress.SingleBar(
          {
            format: `${p.phase.padEnd(7)} [{bar}] {percentage}% {done}/{all} {space}`,
            hideCursor: true,
            clearOnComplete: true,
            stream: process.stderr,
          },
          cliProgress.Presets.shades_classic,
        );
        bar.start(Math.max(1, p.bytesTotal), 0, { done: bytes(0), all: bytes(p.bytesTotal), space: '' });
      }
      bar.update(Math.min(p.bytesDone, Math.max(1, p.bytesTotal)), { done: bytes(p.bytesDone), all: bytes(p.bytesTotal), space: p.space ?? '' });
    },
    stop() {
      bar?.stop();
    },
  };
}
