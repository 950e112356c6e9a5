/**
 * The Informix stand-in for tests: a state file describing a small server whose chunks are byte ranges
 * of two real files (as chunks of raw devices are), and executable stand-ins for onstat, onmode and
 * onbar that answer what IBM documents and record every run. No Informix server is involved anywhere.
 */
import { existsSync, mkdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
export const tools = { onstat: path.join(here, 'onstat-double.mjs'), onmode: path.join(here, 'onmode-double.mjs'), onbar: path.join(here, 'onbar-double.mjs') };

export interface InformixState {
  server: string;
  mode: 'online' | 'quiescent' | 'offline';
  blocked: boolean;
  blockedLog?: number;
  checkpoints: number;
  unblocks: number;
  currentLog: number;
  physChunk: number;
  logChunk: number;
  logs: Array<{ uniqid: number; backedUp: boolean }>;
  dbspaces: Array<{ number: number; name: string; pgsize: number; fchunk: number; temp?: boolean; critical?: boolean }>;
  chunks: Array<{ chunk: number; dbs: number; offset: number; size: number; path: string }>;
  restores: Array<{ kind: string; dbspaces?: string[]; until?: string | null; salvaged?: boolean; chunks?: Record<string, string> }>;
  pendingLogical?: boolean;
  salvaged?: boolean;
  /** onmode -c block runs so far. */
  blocks?: number;
  /** A block of the server's own shown in the header (CKPT, LONGTX…), not ebr's. */
  otherBlock?: string;
  /** A file onmode -c block renames away (to <file>.gone), so the snapshot inside the window fails. */
  blockRename?: string;
  /** Commands (`tool arg…`) that fail with this output and exit status instead of running. */
  fail?: Record<string, { message: string; exit?: number }>;
}

export interface Run {
  at: string;
  tool: string;
  argv: string[];
  server: string | null;
  informixdir: string | null;
}

export interface InformixDouble {
  env: Record<string, string>;
  instanceYaml: string;
  dir: string;
  /** The INFORMIXDIR the stand-ins are laid out in (with `informixDir: true`). */
  informixDir: string;
  /** onconfig, sqlhosts and the ixbar boot file. */
  files: { onconfig: string; sqlhosts: string; ixbar: string };
  /** The bytes of a chunk's range now. */
  bytes(chunk: number): Buffer;
  /** The two files the chunks are ranges of. */
  disks: [string, string];
  /** Byte range [start, end) of a chunk in its file. */
  range(chunk: number): { file: string; start: number; end: number };
  /** Both disks now, with the given chunks' ranges zeroed: every byte a restore of those chunks must not touch. */
  outside(chunks: number[]): Buffer[];
  state(): InformixState;
  update(change: (s: InformixState) => void): void;
  runs(): Run[];
  /** Each run as `tool arg…`. */
  commands(): string[];
  clearRuns(): void;
  cleanup(): void;
}

const base = 2048;

/**
 * `informixDir: true` lays the stand-ins out as an INFORMIXDIR (`<dir>/informix/bin/onstat` …) and
 * configures only `informixDir`, as a real installation would be; otherwise each tool's path is set.
 */
export function startInformixDouble(dir: string, o: { informixDir?: boolean } = {}): InformixDouble {
  const chunksDir = path.join(dir, 'chunks');
  const etc = path.join(dir, 'etc');
  for (const d of [chunksDir, etc]) mkdirSync(d, { recursive: true });
  const disks: [string, string] = [path.join(chunksDir, 'disk1'), path.join(chunksDir, 'disk2')];
  const dbspaces: InformixState['dbspaces'] = [
    { number: 1, name: 'rootdbs', pgsize: 2048, fchunk: 1, critical: true },
    { number: 2, name: 'datadbs', pgsize: 4096, fchunk: 2 },
    { number: 3, name: 'tempdbs', pgsize: 2048, fchunk: 4, temp: true },
    { number: 4, name: 'logdbs', pgsize: 2048, fchunk: 5, critical: true },
  ];
  // offset in base pages (2 KiB), size in pages of the dbspace: disk1 = rootdbs 0–64 KiB | nobody's
  // 64–80 KiB | datadbs chunk 2 80–112 KiB | tail; disk2 = head | datadbs chunk 3 8–32 KiB | gap |
  // tempdbs 40–56 KiB | gap | logdbs (the logical logs) 60–92 KiB | tail.
  const chunks: InformixState['chunks'] = [
    { chunk: 1, dbs: 1, offset: 0, size: 32, path: disks[0] },
    { chunk: 2, dbs: 2, offset: 40, size: 8, path: disks[0] },
    { chunk: 3, dbs: 2, offset: 4, size: 6, path: disks[1] },
    { chunk: 4, dbs: 3, offset: 20, size: 8, path: disks[1] },
    { chunk: 5, dbs: 4, offset: 30, size: 16, path: disks[1] },
  ];
  const pgOf = (c: InformixState['chunks'][number]) => dbspaces.find((d) => d.number === c.dbs)!.pgsize;
  const range = (n: number) => {
    const c = chunks.find((x) => x.chunk === n)!;
    return { file: c.path, start: c.offset * base, end: c.offset * base + c.size * pgOf(c) };
  };
  for (const disk of disks) {
    const size = disk === disks[0] ? 160 * 1024 : 96 * 1024;
    const buf = Buffer.alloc(size);
    for (let i = 0; i < size; i++) buf[i] = (i * 7 + (disk === disks[0] ? 1 : 3)) & 0xff;
    writeFileSync(disk, buf);
  }
  const informixDir = path.join(dir, 'informix');
  if (o.informixDir) {
    mkdirSync(path.join(informixDir, 'bin'), { recursive: true });
    for (const [tool, file] of Object.entries(tools)) symlinkSync(file, path.join(informixDir, 'bin', tool));
  }
  const files = { onconfig: path.join(etc, 'onconfig.ids1'), sqlhosts: path.join(etc, 'sqlhosts'), ixbar: path.join(etc, 'ixbar.0') };
  writeFileSync(files.onconfig, 'ROOTNAME rootdbs\nROOTPATH ' + disks[0] + '\nSERVERNUM 0\nDBSERVERNAME ids1\n');
  writeFileSync(files.sqlhosts, 'ids1 onsoctcp localhost 9088\n');
  writeFileSync(files.ixbar, 'ids1 rootdbs R 1 1 0\n');
  const state: InformixState = {
    server: 'ids1',
    mode: 'online',
    blocked: false,
    checkpoints: 0,
    unblocks: 0,
    currentLog: 7,
    physChunk: 1,
    logChunk: 5,
    logs: [5, 6, 7].map((u) => ({ uniqid: u, backedUp: u < 7 })),
    dbspaces,
    chunks,
    restores: [],
  };
  const stateFile = path.join(dir, 'informix-double.json');
  writeFileSync(stateFile, JSON.stringify(state, null, 1));
  const read = () => JSON.parse(readFileSync(stateFile, 'utf8')) as InformixState;
  const runsFile = `${stateFile}.runs.jsonl`;
  const runs = () => (existsSync(runsFile) ? readFileSync(runsFile, 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l) as Run) : []);
  return {
    env: { EBR_INFORMIX_DOUBLE_STATE: stateFile },
    instanceYaml: [
      '    adapter: informix',
      '    informix:',
      '      server: ids1',
      `      onconfig: ${files.onconfig}`,
      `      sqlhosts: ${files.sqlhosts}`,
      `      ixbar: ${files.ixbar}`,
      ...(o.informixDir ? [`      informixDir: ${informixDir}`] : [`      onstat: ${tools.onstat}`, `      onmode: ${tools.onmode}`, `      onbar: ${tools.onbar}`]),
    ].join('\n'),
    informixDir,
    files,
    bytes(chunk) {
      const r = range(chunk);
      return readFileSync(r.file).subarray(r.start, r.end);
    },
    dir,
    disks,
    range,
    outside(chunks) {
      return disks.map((d) => {
        const keep = readFileSync(d);
        for (const c of chunks) {
          const r = range(c);
          if (r.file === d) keep.fill(0, r.start, r.end);
        }
        return keep;
      });
    },
    state: read,
    update(change) {
      const s = read();
      change(s);
      writeFileSync(stateFile, JSON.stringify(s, null, 1));
    },
    runs,
    commands: () => runs().map((r) => [r.tool, ...r.argv].join(' ')),
    clearRuns: () => writeFileSync(runsFile, ''),
    cleanup() {
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
