/** Every entry under some directories, with its kind, mode, owner and content digest (or link target): two equal trees hold the same files. */
import { createHash } from 'node:crypto';
import { existsSync, lstatSync, readFileSync, readdirSync, readlinkSync } from 'node:fs';
import path from 'node:path';

export function tree(...roots: string[]): Record<string, string> {
  const out: Record<string, string> = {};
  const walk = (dir: string) => {
    for (const name of readdirSync(dir).sort()) {
      const p = path.join(dir, name);
      const st = lstatSync(p);
      const head = `${st.mode.toString(8)} ${st.uid}:${st.gid}`;
      if (st.isSymbolicLink()) out[p] = `${head} -> ${readlinkSync(p)}`;
      else if (st.isDirectory()) {
        out[p] = `${head} dir`;
        walk(p);
      } else out[p] = `${head} ${createHash('sha256').update(readFileSync(p)).digest('hex')}`;
    }
  };
  for (const r of roots) if (existsSync(r)) walk(r);
  return out;
}
