/** How a backup is stored: its codec and each space's stream as it reached the target (schema 4). */
import type { StoredCodec } from '../archive/codec.js';
import type { ManifestSpace } from '../archive/manifest.js';
import type { Catalog } from './catalog.js';

export interface StreamRow {
  space: string;
  stream: string;
  stored_bytes: number | null;
  stored_sha256: string | null;
  /** JSON: where the stream lies on the target's media (tape volumes and files), when the target said. */
  placement: string | null;
}

/** Records the streams and the codec of a backup; in the caller's transaction when there is one. */
export function recordStreams(cat: Catalog, backupId: string, spaces: ManifestSpace[], codec: StoredCodec | undefined): void {
  const insert = cat.db.prepare('INSERT INTO streams (backup_id, space, stream, stored_bytes, stored_sha256, placement) VALUES (?, ?, ?, ?, ?, ?)');
  const storedBytes = spaces.every((s) => s.stored) ? spaces.reduce((n, s) => n + s.stored!.bytes, 0) : null;
  cat.tx(() => {
    for (const s of spaces) insert.run(backupId, s.name, s.stream, s.stored?.bytes ?? null, s.stored?.sha256 ?? null, s.placement ? JSON.stringify(s.placement) : null);
    cat.db.prepare('UPDATE backups SET codec = ?, stored_bytes = ? WHERE id = ?').run(codec ? JSON.stringify(codec) : null, storedBytes, backupId);
  });
}

export function streamsOf(cat: Catalog, backupId: string): StreamRow[] {
  return cat.db.prepare('SELECT space, stream, stored_bytes, stored_sha256, placement FROM streams WHERE backup_id = ? ORDER BY space').all(backupId) as StreamRow[];
}

/** "zstd level 3, encrypted (aes-256-gcm, key id …)", or "as is". */
export function describeCodec(codec: StoredCodec | undefined | null): string {
  if (!codec) return 'as is';
  const parts = [codec.compression === 'none' ? 'uncompressed' : `${codec.compression}${codec.level !== undefined ? ` level ${codec.level}` : ''}`];
  if (codec.encryption) parts.push(`encrypted (${codec.encryption.alg}, key id ${codec.encryption.keyId})`);
  return parts.join(', ');
}
