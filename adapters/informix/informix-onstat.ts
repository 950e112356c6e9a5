/**
 * Reading what onstat prints, in the layout the Administrator's Reference documents for `onstat -`,
 * `onstat -d` and `onstat -l`. Only the columns ebr needs are read; anything else is ignored.
 */

export interface ServerStatus {
  /** Shared memory is up (On-Line, Quiescent, Fast Recovery…); false for "shared memory not initialized". */
  up: boolean;
  /** The mode word of the header: On-Line, Quiescent, Off-Line… */
  mode: string;
  /**
   * Blocked for an external backup: the header's `Blocked:` line names ARCHIVE (`Blocked:ARCHIVE_EBR`
   * after onmode -c block). Other reasons (CKPT, LONGTX, LBU…) are the server's own and end by themselves.
   */
  blocked: boolean;
  /** Every reason the `Blocked:` line gives (CKPT, ARCHIVE_EBR, LONGTX, LBU…), empty when not blocked. */
  blockReasons: string[];
  version: string;
}

/**
 * The header line every onstat run prints first, as the Administrator's Reference shows it:
 * `IBM Informix Dynamic Server Version 14.10.FC9 -- On-Line -- Up 01:02:03 -- 156096 Kbytes`, followed by
 * `Blocked:<reason>[ <reason>…]` while the server is blocked (for an external backup the reason is
 * ARCHIVE…; onstat shows CKPT, LONGTX, MEDIA_FAILURE, HANG_SYSTEM, DBS_DROP, DDR or LBU for its own blocks).
 * With the server down onstat prints `shared memory not initialized for INFORMIXSERVER '<name>'`.
 */
export function parseStatus(output: string): ServerStatus {
  const header = /^(.*?Version\s+(\S+))\s+--\s+(.+?)\s+--/m.exec(output);
  const up = !!header && !/shared memory not initialized/i.test(output);
  const reasons = [...output.matchAll(/\bBlocked:\s*([A-Z_][A-Z_ ]*)/g)].flatMap((m) => m[1]!.trim().split(/\s+/));
  return { up, mode: header?.[3]?.trim() ?? 'Off-Line', blocked: up && reasons.some((r) => r.startsWith('ARCHIVE')), blockReasons: up ? reasons : [], version: header?.[2] ?? '' };
}

export interface DbspaceRow {
  number: number;
  name: string;
  pageSize: number;
  /** The letter flags: position 3 is B (blobspace), S (sbspace), T (temporary dbspace), U (temporary sbspace). */
  letters: string;
  temporary: boolean;
}

export interface ChunkRow {
  chunk: number;
  dbspace: number;
  /** In base pages (onstat -d). */
  offset: number;
  /** In pages of the dbspace's page size (the NOTE under onstat -d's chunk list). */
  size: number;
  path: string;
}

/** `onstat -d`: the Dbspaces section and the Chunks section. */
export function parseDbspaces(output: string): { dbspaces: DbspaceRow[]; chunks: ChunkRow[] } {
  const dbspaces: DbspaceRow[] = [];
  const chunks: ChunkRow[] = [];
  let section: 'dbspaces' | 'chunks' | undefined;
  for (const raw of output.split('\n')) {
    const line = raw.trimEnd();
    if (/^Dbspaces\s*$/.test(line)) section = 'dbspaces';
    else if (/^Chunks\s*$/.test(line)) section = 'chunks';
    else if (section === 'dbspaces') {
      // address number flags fchunk nchunks pgsize flags owner name; the letter flags may hold blanks.
      const t = line.trim().split(/\s+/);
      if (t.length >= 9 && /^[0-9a-f]+$/i.test(t[0]!) && /^\d+$/.test(t[1]!) && /^0x/i.test(t[2]!) && /^\d+$/.test(t[5]!)) {
        const letters = t.slice(6, -2).join('');
        // Position 1 is M or N (mirrored); T or U anywhere after it marks a temporary dbspace or sbspace.
        dbspaces.push({ number: Number(t[1]), pageSize: Number(t[5]), letters, name: t.at(-1)!, temporary: /[TU]/.test(letters.slice(1)) });
      }
    } else if (section === 'chunks') {
      // address chunk/dbs offset size free bpages flags pathname
      const m = /^\s*[0-9a-f]+\s+(\d+)\s+(\d+)\s+(\d+)\s+(\d+)\s+(?:\d+|~?\d+)\s+(?:\d+\s+)?[A-Z-]{3,}\s+(\/\S.*)$/i.exec(line);
      if (m) chunks.push({ chunk: Number(m[1]), dbspace: Number(m[2]), offset: Number(m[3]), size: Number(m[4]), path: m[5]!.trim() });
    }
  }
  return { dbspaces, chunks };
}

export interface LogInfo {
  /** Chunk holding the physical log (phybegin chunk:page). */
  physicalChunk?: number;
  /** Chunks holding logical log files (begin chunk:page of each). */
  logicalChunks: number[];
  /** The unique id of the current logical log (flag C). */
  current?: number;
}

/** `onstat -l`: phybegin of the physical log, and each logical log file's flags, uniqid and begin. */
export function parseLogs(output: string): LogInfo {
  const lines = output.split('\n');
  const info: LogInfo = { logicalChunks: [] };
  const phy = lines.findIndex((l) => /\bphybegin\b/.test(l));
  if (phy >= 0) {
    const m = /^\s*(\d+):\d+/.exec(lines[phy + 1] ?? '');
    if (m) info.physicalChunk = Number(m[1]);
  }
  for (const l of lines) {
    // address number flags uniqid begin size used %used
    const m = /^\s*[0-9a-f]+\s+\d+\s+([UFACLB-]{7})\s+(\d+)\s+(\d+):\d+\s+\d+/i.exec(l);
    if (!m) continue;
    info.logicalChunks.push(Number(m[3]));
    if (m[1]!.includes('C')) info.current = Number(m[2]);
  }
  info.logicalChunks = [...new Set(info.logicalChunks)];
  return info;
}
