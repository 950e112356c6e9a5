/** The discovery table (one row per chunk of a backup) and the archive members with their digests. */
import type { Space } from '../model.js';
import type { Catalog } from './catalog.js';

export interface DiscoveryRow {
  space: string;
  space_kind: string;
  critical: number;
  chunk: string;
  path: string;
  type: string;
  offset: number;
  size: number;
  details: string | null;
}

export interface MemberRow {
  space: string;
  name: string;
  size: number;
  sha256: string;
  stream: string;
  offset: number;
}

export function recordDiscovery(cat: Catalog, backupId: string, spaces: Space[]): void {
  const insert = cat.db.prepare(
    'INSERT INTO discovery (backup_id, space, space_kind, critical, chunk, path, type, offset, size, details) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)',
  );
  cat.tx(() => {
    for (const s of spaces) {
      for (const c of s.chunks) {
        insert.run(backupId, s.name, s.kind, s.critical ? 1 : 0, c.name, c.path, c.type, c.offset ?? 0, c.size, c.details ? JSON.stringify(c.details) : null);
      }
    }
  });
}

/** The spaces as listed once the window opened replace those found before it. */
export function replaceDiscovery(cat: Catalog, backupId: string, spaces: Space[]): void {
  cat.tx(() => {
    cat.db.prepare('DELETE FROM discovery WHERE backup_id = ?').run(backupId);
    recordDiscovery(cat, backupId, spaces);
  });
}

export function discoveryOf(cat: Catalog, backupId: string): DiscoveryRow[] {
  return cat.db.prepare('SELECT space, space_kind, critical, chunk, path, type, offset, size, details FROM discovery WHERE backup_id = ? ORDER BY space, chunk').all(backupId) as DiscoveryRow[];
}

export function recordMembers(cat: Catalog, backupId: string, members: MemberRow[]): void {
  const insert = cat.db.prepare('INSERT INTO members (backup_id, space, name, size, sha256, stream, offset) VALUES (?, ?, ?, ?, ?, ?, ?)');
  cat.tx(() => {
    for (const m of members) insert.run(backupId, m.space, m.name, m.size, m.sha256, m.stream, m.offset);
  });
}

export function membersOf(cat: Catalog, backupId: string): MemberRow[] {
  return cat.db.prepare('SELECT space, name, size, sha256, stream, offset FROM members WHERE backup_id = ? ORDER BY space, name').all(backupId) as MemberRow[];
}
