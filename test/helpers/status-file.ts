/**
 * Status files that fixtures (writers, fake blocks) rewrite while a test polls them. The fixtures write
 * each one aside and rename it in, so a reader sees a whole file or none: a missing file is "not yet",
 * and a file that does not parse is a bug in the fixture, reported as such rather than retried.
 */
import { readFileSync } from 'node:fs';

export function readStatusFile<T>(file: string): T | undefined {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
  try {
    return JSON.parse(text) as T;
  } catch (err) {
    throw new Error(`${file} holds a partial status (${JSON.stringify(text.slice(0, 80))}): its writer must write it aside and rename it in`, { cause: err });
  }
}

/** The status once the file exists (for code that runs after the writer has reported once). */
export function statusNow<T>(file: string): T {
  const s = readStatusFile<T>(file);
  if (s === undefined) throw new Error(`${file} does not exist yet: wait for the writer's first report`);
  return s;
}
