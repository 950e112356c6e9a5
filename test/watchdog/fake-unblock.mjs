// The release command of the fake block: ends it from outside (SIGTERM to the holder, then waits until
// the lock is gone) and appends one line to COUNTFILE, so tests can count how often a block was released.
// Exits 0 also when nothing was blocked (release commands must be safe to repeat); FAIL=1 makes it fail.
// Usage: node fake-unblock.mjs LOCKFILE COUNTFILE
import { appendFileSync, existsSync, readFileSync } from 'node:fs';

const [lock, countFile] = process.argv.slice(2);
appendFileSync(countFile, `${process.pid} ${Date.now()}\n`);
if (process.env.FAIL === '1') {
  process.stderr.write('fake unblock: told to fail\n');
  process.exit(3);
}
if (existsSync(lock)) {
  let text;
  try {
    text = readFileSync(lock, 'utf8');
  } catch {
    // the holder is gone already
  }
  if (text !== undefined) {
    const pid = Number(text);
    // Never kill(0) or a negative pid: that would signal a whole process group.
    if (!Number.isInteger(pid) || pid <= 0) {
      process.stderr.write(`fake unblock: ${lock} holds no pid: ${JSON.stringify(text)}\n`);
      process.exit(4);
    }
    try {
      process.kill(pid, 'SIGTERM');
    } catch {
      // the holder is gone already
    }
  }
  const until = Date.now() + 5000;
  while (existsSync(lock) && Date.now() < until) await new Promise((r) => setTimeout(r, 10));
}
process.exit(existsSync(lock) ? 1 : 0);
