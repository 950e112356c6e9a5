/**
 * Containment: a restore writes only inside the directories it was meant to. Every destination comes
 * from the catalog and the verified manifest, and is checked before anything is written: inside the
 * restore root (--to DIR) or, in place, inside the directories the backup's discovery recorded; no
 * component below that root may be a symbolic link (ebr runs as root, the directories belong to the
 * database's OS user, and a planted link must not carry a write, chmod or chown elsewhere).
 */
import { lstat } from 'node:fs/promises';
import path from 'node:path';
import { EbrError } from '../errors.js';

/** Member names are relative paths of plain components: no `..`, `.`, empty parts, absolute names or NUL. */
export function checkMemberName(name: string, space: string, ctx: Record<string, unknown>): void {
  const parts = name.split('/');
  const bad =
    name.length === 0 ? 'is empty' : name.includes('\0') ? 'holds a NUL byte' : path.isAbsolute(name) ? 'is absolute' : parts.some((p) => p === '..') ? 'climbs out with ..' : parts.some((p) => p === '' || p === '.') ? 'has empty or . components' : undefined;
  if (bad) {
    throw new EbrError('unsafePath', `the archive's member ${JSON.stringify(name)} of space ${space} ${bad}; ebr refuses to restore it`, {
      hint: 'nothing was written; the archive was damaged or edited — restore another backup (`ebr list`) and run `ebr verify` on this one',
      context: { ...ctx, space, member: name },
    });
  }
}

export class DestinationGuard {
  private readonly roots: string[];
  private readonly checkedDirs = new Set<string>();

  /** `roots`: absolute directories; nested ones are folded into the outermost. */
  constructor(roots: string[], private readonly ctx: Record<string, unknown>) {
    const sorted = [...new Set(roots.map((r) => path.resolve(r)))].sort((a, b) => a.length - b.length);
    this.roots = sorted.filter((r, i) => !sorted.slice(0, i).some((o) => isInside(r, o)));
  }

  get rootDirs(): readonly string[] {
    return this.roots;
  }

  /** The root that holds p, or a refusal naming p and the roots. */
  rootOf(p: string): string {
    const abs = path.resolve(p);
    if (abs !== p.replace(/\/+$/, '') || p.includes('\0')) throw this.refuse(p, 'is not a plain absolute path');
    const root = this.roots.find((r) => abs === r || isInside(abs, r));
    if (!root) throw this.refuse(p, `lies outside the directories this restore may write (${this.roots.join(', ')})`);
    return root;
  }

  /**
   * p is inside a root and no existing component between the root and p's parent is a symbolic link
   * or something other than a directory. The last component itself is the caller's to judge.
   */
  async check(p: string): Promise<void> {
    const root = this.rootOf(p);
    if (path.resolve(p) === root) return;
    const rel = path.relative(root, path.dirname(p));
    if (!rel) return;
    let dir = root;
    for (const part of rel.split(path.sep)) {
      dir = path.join(dir, part);
      if (this.checkedDirs.has(dir)) continue;
      const st = await lstat(dir).catch((err: NodeJS.ErrnoException) => {
        if (err.code === 'ENOENT') return undefined;
        throw err;
      });
      if (!st) return; // the rest does not exist yet: mkdir makes it, checking each step
      if (st.isSymbolicLink()) throw this.refuse(p, `would be reached through the symbolic link ${dir}`);
      if (!st.isDirectory()) throw this.refuse(p, `would be reached through ${dir}, which is not a directory`);
      this.checkedDirs.add(dir);
    }
  }

  /** p was moved away: what was checked at p and below no longer holds. */
  forget(p: string): void {
    for (const d of this.checkedDirs) if (d === p || isInside(d, p)) this.checkedDirs.delete(d);
  }

  refuse(p: string, why: string): EbrError {
    return new EbrError('unsafePath', `restore refuses to write ${p}: it ${why}`, {
      hint: 'nothing outside the restore\'s own directories is ever written; if a link was planted there, remove it; if the archive names this path, it was edited — use another backup',
      context: { ...this.ctx, path: p },
    });
  }
}

export function isInside(p: string, dir: string): boolean {
  const rel = path.relative(dir, p);
  return rel !== '' && !rel.startsWith('..') && !path.isAbsolute(rel);
}
