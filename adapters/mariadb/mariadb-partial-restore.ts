/**
 * Online partial restore of schemas into the running server (InnoDB transportable tablespaces):
 * the backup's server space and the schema go into a scratch data directory; a temporary server
 * recovers them and exports the schema's tables (FLUSH TABLES … FOR EXPORT); on the live server each
 * table is discarded and re-imported from the exported .ibd/.cfg. Nothing else on the live server is
 * touched. Every table definition is compared first: one that changed since the backup refuses the
 * whole restore, naming the table, before any table is changed. The live table's own file is kept
 * until its import succeeded, and put back if the import fails.
 */
import { randomBytes } from 'node:crypto';
import { commandStep, noteStep, sqlStep } from '../../src/plan.js';
import { chown, copyFile, mkdir, readdir, rename, rm, stat, statfs } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { InstanceContext, RestorePlan, Restorer } from '../../src/adapter-api.js';
import { EbrError, throwIfAborted } from '../../src/errors.js';
import { connectOptionsOf, openSql, type Sql } from './mariadb-connection.js';
import type { MariadbSettings } from './mariadb-config.js';
import { serverSpace } from './mariadb-discovery.js';
import { sqlError } from './mariadb-errors.js';
import { encodeFileName } from './mariadb-layout.js';
import { dialectFor, parseVersion, quoteId } from './mariadb-queries.js';
import { backupPointOf, destinationIn, ownerOf, restoredLayout, runAsUser, serverOptions } from './mariadb-restore-plan.js';
import { indexPrefix, writeBinlogIndex } from './mariadb-binlog-history.js';
import { checkLastBinlogInUse, expectRecoveryBinlogs, recoveryNote, recoveryReport, restoredBinlogs } from './mariadb-recovery.js';
import { startTempServer } from './mariadb-temp-server.js';
import { findTools, type Tools } from './mariadb-tools.js';

/**
 * The scratch directory holds only the chosen schemas; redo that touches the others' tablespaces would
 * stop recovery on the missing files. Level 1 lets recovery skip what is missing (and nothing more:
 * rollback and purge still run). The imported tables are checked by IMPORT itself and CHECK TABLE.
 */
export const partialRecovery = ['--innodb-force-recovery=1'];

interface TablePlan {
  table: string;
  /** The definition in the backup, as SHOW CREATE TABLE prints it. */
  definition: string;
  existsLive: boolean;
}

export function onlinePartialRestorer(instance: InstanceContext<MariadbSettings>, plan: RestorePlan): Restorer {
  const point = backupPointOf(plan.meta, instance.name);
  const scratchRoot = instance.settings.scratchDir ? instance.resolvePath(instance.settings.scratchDir) : os.tmpdir();
  const scratch = path.join(scratchRoot, `ebr-mariadb-${plan.backupId}-${randomBytes(4).toString('hex')}`);
  const base = path.join(scratch, 'data');
  const layout = restoredLayout(point, base);
  const destinationOf = destinationIn(base);
  const ctx = { instance: instance.name, backupId: plan.backupId, phase: 'restore' };
  const toWrite = [serverSpace, ...plan.requested];
  const schemas = plan.spaces.filter((s) => plan.requested.includes(s.name));
  // The temporary server resolves the backup's prepared transactions from the binlogs restored beside
  // it, never from the live server's (the restored index may name those by their absolute paths).
  const binlogs = restoredBinlogs(plan.spaces.filter((s) => toWrite.includes(s.name)).flatMap((s) => s.chunks), destinationOf, layout);
  let tools: Tools | undefined;
  const tag = randomBytes(3).toString('hex');

  const live = () => openSql(connectOptionsOf(instance.settings, instance.resolvePath), { ...ctx, phase: 'connect' });

  return {
    spacesToWrite: () => toWrite,

    // Everything this restore writes goes into its own scratch directory; the live server only imports.
    extraRoots: () => [scratch],

    async plan() {
      return [
        noteStep('check', `the live server must run and accept ${instance.settings.user}; the files are restored under ${base}`),
        commandStep('finish', [tools?.server ?? 'mariadbd', `--datadir=${base}`, ...serverOptions(point, layout, instance.settings, true), ...partialRecovery]),
        sqlStep('finish', `SET SESSION lock_wait_timeout = ${instance.settings.lockWaitTimeoutS}`),
        sqlStep('finish', 'SELECT @@datadir AS datadir'),
        ...schemas.map((sp) => noteStep('finish', `${String(sp.details?.schema ?? sp.name)}: each table exported from the temporary server (FLUSH TABLES … FOR EXPORT) and imported into the live one (ALTER TABLE … DISCARD TABLESPACE, copy, ALTER TABLE … IMPORT TABLESPACE, CHECK TABLE)`)),
        noteStep('finish', 'the temporary server is shut down and its directory removed'),
      ];
    },

    async check() {
      if (plan.until) {
        throw new EbrError('usage', '--until cannot be combined with --partial: a schema comes back at the backup\'s time', {
          hint: 'leave out --until, or restore the whole server with --to DIR --until TIME and copy what you need from there',
          context: ctx,
        });
      }
      tools = findTools(point.flavor === 'mysql' ? 'mysql' : 'mariadb', instance.settings, instance.name);
      expectRecoveryBinlogs(point, layout, binlogs, ctx);
      const sql = await live().catch((err: unknown) => {
        throw new EbrError('restore', `a partial restore goes into the running server, and instance ${instance.name} does not answer: ${(err as Error).message}`, {
          hint: 'start the server first; to restore a schema while the server is stopped, restore the whole server (or use --to DIR)',
          context: ctx,
          cause: err,
        });
      });
      try {
        const [row] = await sql.query('SELECT VERSION() AS version, @@version_comment AS comment, @@innodb_page_size AS pageSize');
        const v = parseVersion(String(row?.version), String(row?.comment));
        dialectFor(v);
        if (v.flavor !== point.flavor || String(row?.pageSize) !== point.settings.innodb_page_size) {
          throw new EbrError('restore', `the live server (${v.version}, page size ${String(row?.pageSize)}) cannot import tablespaces from this backup (${point.version}, page size ${point.settings.innodb_page_size})`, {
            hint: 'transportable tablespaces need the same server family and page size; restore with --to DIR instead',
            context: ctx,
          });
        }
      } finally {
        await sql.end();
      }
      const need = plan.spaces.filter((s) => toWrite.includes(s.name)).flatMap((s) => s.chunks).reduce((a, c) => a + c.size, 0);
      await mkdir(scratchRoot, { recursive: true });
      const fs = await statfs(scratchRoot);
      if (fs.bavail * fs.bsize < need * 1.1) {
        throw new EbrError('restore', `${scratchRoot} has ${Math.round((fs.bavail * fs.bsize) / 2 ** 20)} MiB free; the temporary server needs about ${Math.round((need * 1.1) / 2 ** 20)} MiB`, {
          hint: 'point mariadb.scratchDir at a filesystem with more room',
          context: { ...ctx, path: scratchRoot },
        });
      }
      await mkdir(base, { recursive: true, mode: 0o700 });
      const owner = ownerOf(plan);
      if (owner && process.getuid?.() === 0) {
        await chown(scratch, owner.uid, owner.gid);
        await chown(base, owner.uid, owner.gid);
      }
    },

    destinationOf,

    async finish(signal, files) {
      const notes: string[] = [];
      const restored: Record<string, string[]> = {};
      let prepared: number | undefined;
      const runAs = runAsUser(plan);
      try {
        throwIfAborted(signal, ctx);
        await writeBinlogIndex(files, layout, await indexPrefix(layout), binlogs, ownerOf(plan) ?? {});
        await checkLastBinlogInUse(layout, binlogs, ctx);
        const server = await startTempServer({ program: tools!.server, datadir: base, scratch, ...(runAs ? { runAs } : {}), options: [...serverOptions(point, layout, instance.settings, true), ...partialRecovery], instance: instance.name, onSpawn: (pid) => files.ownProcess(pid) }, signal);
        try {
          const recovery = await recoveryReport(server.errorLog);
          notes.push(recoveryNote(recovery, base));
          prepared = recovery.prepared;
          const temp = await server.connect(signal);
          const sql = await live();
          try {
            await sql.query(`SET SESSION lock_wait_timeout = ${instance.settings.lockWaitTimeoutS}`);
            const [dd] = await sql.query('SELECT @@datadir AS datadir');
            const liveDatadir = String(dd?.datadir);
            for (const space of schemas) {
              throwIfAborted(signal, ctx);
              const schema = String(space.details?.schema ?? space.name);
              const dir = String(space.details?.dir ?? space.name);
              const done = await importSchema({ temp, live: sql, schema, dir, scratchDir: path.join(base, dir), liveDir: path.join(liveDatadir, dir), tag, ctx, notes });
              restored[space.name] = done;
              notes.push(`${schema}: ${done.length} table(s) imported into the running server${done.length ? ` (${done.join(', ')})` : ''}`);
            }
          } finally {
            await sql.end();
            await temp.query('UNLOCK TABLES').catch(() => undefined);
            await temp.end();
          }
          await server.stop();
        } catch (err) {
          await server.kill();
          throw err;
        }
      } finally {
        await rm(scratch, { recursive: true, force: true });
      }
      return { notes, details: { imported: restored, ...(prepared !== undefined ? { preparedAtRecovery: prepared } : {}) } };
    },
  };
}

interface ImportOptions {
  temp: Sql;
  live: Sql;
  schema: string;
  dir: string;
  scratchDir: string;
  liveDir: string;
  tag: string;
  ctx: Record<string, unknown>;
  notes: string[];
}

async function importSchema(o: ImportOptions): Promise<string[]> {
  const { temp, live, schema } = o;
  const q = async (sql: Sql, statement: string, params?: unknown[], where = 'live') => {
    try {
      return await sql.query(statement, params);
    } catch (err) {
      throw sqlError(err, 'restore', `${statement.slice(0, 120)} on the ${where} server failed`, { ...o.ctx, schema });
    }
  };
  // ROW_FORMAT is compared too: SHOW CREATE TABLE omits it when it came from innodb_default_row_format,
  // and IMPORT refuses a tablespace of another row format only after the live table was discarded.
  const tablesOf = async (sql: Sql, where: string) =>
    (await q(sql, "SELECT TABLE_NAME AS t, ENGINE AS e, ROW_FORMAT AS f FROM information_schema.TABLES WHERE TABLE_SCHEMA = ? AND TABLE_TYPE = 'BASE TABLE'", [schema], where)).map((r) => ({
      table: String(r.t),
      engine: String(r.e),
      rowFormat: String(r.f),
    }));
  const backupTables = await tablesOf(temp, 'temporary');
  const liveList = await tablesOf(live, 'live');
  const liveTables = new Set(liveList.map((t) => t.table));
  const scratchFiles = await readdir(o.scratchDir).catch(() => [] as string[]);
  const filesOf = (table: string, names: string[]) => {
    const enc = encodeFileName(table);
    return names.filter((n) => n === `${enc}.ibd` || n === `${enc}.cfg` || n.startsWith(`${enc}#P#`) || n.startsWith(`${enc}#p#`));
  };

  const plans: TablePlan[] = [];
  const skipped: string[] = [];
  const changed: string[] = [];
  for (const t of backupTables) {
    if (t.engine.toLowerCase() !== 'innodb') {
      skipped.push(`${t.table} (${t.engine})`);
      continue;
    }
    if (!filesOf(t.table, scratchFiles).some((n) => n.endsWith('.ibd'))) {
      skipped.push(`${t.table} (in the system tablespace)`);
      continue;
    }
    const definition = normalize(String((await q(temp, `SHOW CREATE TABLE ${quoteId(schema)}.${quoteId(t.table)}`, undefined, 'temporary'))[0]?.['Create Table']));
    const existsLive = liveTables.has(t.table);
    if (existsLive) {
      const now = normalize(String((await q(live, `SHOW CREATE TABLE ${quoteId(schema)}.${quoteId(t.table)}`))[0]?.['Create Table']));
      const liveFormat = liveList.find((l) => l.table === t.table)?.rowFormat;
      if (now !== definition) changed.push(`${schema}.${t.table}`);
      else if (liveFormat !== t.rowFormat) changed.push(`${schema}.${t.table} (row format ${liveFormat}, ${t.rowFormat} in the backup)`);
    }
    plans.push({ table: t.table, definition, existsLive });
  }
  if (changed.length > 0) {
    throw new EbrError('restore', `the definition of ${changed.join(', ')} changed since the backup; nothing was imported`, {
      hint: 'a tablespace can only be imported into a table with the same definition: restore the old definition first (ALTER TABLE), or restore the whole server with --to DIR and copy the rows across',
      context: { ...o.ctx, schema, table: changed[0] },
    });
  }
  if (skipped.length > 0) o.notes.push(`${schema}: not restored online (only a full restore brings them back): ${skipped.join(', ')}`);
  const onlyLive = [...liveTables].filter((t) => !backupTables.some((b) => b.table === t));
  if (onlyLive.length > 0) o.notes.push(`${schema}: tables made after the backup were left as they are: ${onlyLive.join(', ')}`);
  if (plans.length === 0) return [];

  if (!(await q(live, 'SELECT 1 AS x FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = ?', [schema])).length) {
    const [db] = await q(temp, `SHOW CREATE DATABASE ${quoteId(schema)}`, undefined, 'temporary');
    await q(live, String(db?.['Create Database']));
  }
  // The exported files stay consistent while this session holds the tables locked.
  await q(temp, `FLUSH TABLES ${plans.map((p) => `${quoteId(schema)}.${quoteId(p.table)}`).join(', ')} FOR EXPORT`, undefined, 'temporary');
  const exported = await readdir(o.scratchDir);
  const liveStat = await stat(o.liveDir).catch(() => undefined);
  await q(live, 'SET SESSION foreign_key_checks = 0');
  const done: string[] = [];
  for (const p of plans) {
    const name = `${quoteId(schema)}.${quoteId(p.table)}`;
    if (!p.existsLive) {
      await q(live, `USE ${quoteId(schema)}`);
      await q(live, p.definition);
    }
    const owner = liveStat ?? (await stat(o.liveDir));
    const incoming = filesOf(p.table, exported);
    const staged = (f: string) => path.join(o.liveDir, `${f}.ebr-import-${o.tag}`);
    const dropStaged = () => Promise.all(incoming.map((f) => rm(staged(f), { force: true })));
    let kept: string[] = [];
    try {
      // Copy first (the slow part), so that the table is discarded only for the renames and the import.
      for (const f of incoming) {
        await copyFile(path.join(o.scratchDir, f), staged(f));
        if (process.getuid?.() === 0) await chown(staged(f), owner.uid, owner.gid);
      }
      kept = p.existsLive ? await keepLiveCopy(o, q, name, p.table) : [];
      await q(live, `ALTER TABLE ${name} DISCARD TABLESPACE`);
    } catch (err) {
      await dropStaged();
      for (const k of kept) await rm(path.join(o.liveDir, k), { force: true });
      throw err;
    }
    try {
      for (const f of incoming) await rename(staged(f), path.join(o.liveDir, f));
      await q(live, `ALTER TABLE ${name} IMPORT TABLESPACE`);
    } catch (err) {
      await dropStaged();
      const back = await putBack(o, q, name, kept).catch((e: unknown) => e as Error);
      const e = err instanceof EbrError ? err : new EbrError('restore', `importing ${schema}.${p.table} failed: ${(err as Error).message}`, { context: { ...o.ctx, schema, table: p.table }, cause: err });
      throw new EbrError(e.code, `${e.message}; ${back === true ? 'the table was put back as it was' : `putting the table back failed too (${back instanceof Error ? back.message : 'no copy kept'}), it is left discarded`}`, {
        hint: e.hint ?? `look at the server's error log; tables imported before ${p.table} (${done.join(', ') || 'none'}) keep the backup's rows`,
        context: e.context,
        cause: e,
      });
    }
    for (const f of [...incoming.filter((n) => n.endsWith('.cfg')), ...kept]) await rm(path.join(o.liveDir, f), { force: true });
    done.push(p.table);
  }
  return done;
}

type Query = (sql: Sql, statement: string, params?: unknown[], where?: string) => Promise<Record<string, unknown>[]>;

/** Exports the live table and keeps a copy of its files beside them, named *.ebr-keep-<tag>. */
async function keepLiveCopy(o: ImportOptions, q: Query, name: string, table: string): Promise<string[]> {
  await q(o.live, `FLUSH TABLES ${name} FOR EXPORT`);
  const kept: string[] = [];
  try {
    const enc = encodeFileName(table);
    for (const f of await readdir(o.liveDir)) {
      if (!(f === `${enc}.ibd` || f === `${enc}.cfg` || f.startsWith(`${enc}#P#`) || f.startsWith(`${enc}#p#`)) || f.includes('.ebr-')) continue;
      await copyFile(path.join(o.liveDir, f), path.join(o.liveDir, `${f}.ebr-keep-${o.tag}`));
      kept.push(`${f}.ebr-keep-${o.tag}`);
    }
  } finally {
    await q(o.live, 'UNLOCK TABLES');
  }
  return kept;
}

async function putBack(o: ImportOptions, q: Query, name: string, kept: string[]): Promise<true> {
  if (kept.length === 0) throw new Error('no copy of the live table was kept');
  await q(o.live, `ALTER TABLE ${name} DISCARD TABLESPACE`).catch(() => undefined);
  for (const k of kept) await rename(path.join(o.liveDir, k), path.join(o.liveDir, k.replace(`.ebr-keep-${o.tag}`, '')));
  await q(o.live, `ALTER TABLE ${name} IMPORT TABLESPACE`);
  return true;
}

/** AUTO_INCREMENT counters move with the rows; they are not part of the definition. */
function normalize(definition: string): string {
  return definition.replace(/ AUTO_INCREMENT=\d+/g, '');
}
