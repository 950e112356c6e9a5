// A block that outlives its client, with no database: this process holds LOCKFILE (its pid inside) until
// it gets SIGTERM, then removes it. "Blocked" means the lock file exists and this process lives.
// Usage: node fake-block.mjs LOCKFILE
import { renameSync, rmSync, writeFileSync } from 'node:fs';

const lock = process.argv[2];
// Written aside and renamed in: whoever sees the lock file can read the whole pid from it.
writeFileSync(`${lock}.tmp`, String(process.pid));
renameSync(`${lock}.tmp`, lock);
const end = () => {
  rmSync(lock, { force: true });
  process.exit(0);
};
process.on('SIGTERM', end);
process.on('SIGINT', () => undefined);
setInterval(() => undefined, 1 << 30);
