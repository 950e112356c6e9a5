/**
 * `ebr backup --dry-run` for MariaDB/MySQL: the statements mariadb-session.ts sends, in order. The
 * dialect depends on the server version, which only a connection tells: the plan shows MariaDB 10.11's
 * (BACKUP STAGE) and says so.
 */
import type { InstanceContext, MirrorContext, PlanStep, Space } from '../../src/adapter-api.js';
import { noteStep, sqlStep } from '../../src/plan.js';
import type { MariadbSettings } from './mariadb-config.js';
import { dialectFor, mirrorQueries, parseVersion, settingsQuery } from './mariadb-queries.js';

export function mariadbBackupPlan(instance: InstanceContext<MariadbSettings>, spaces: Space[]): PlanStep[] {
  const s = instance.settings;
  const d = dialectFor(parseVersion('10.11.0-MariaDB'));
  const all = (phase: string, list: string[]) => list.map((t) => sqlStep(phase, t));
  return [
    noteStep('connect', `connect to ${s.socket ? `socket ${s.socket}` : `${s.host ?? 'localhost'}:${s.port ?? 3306}`} as ${s.user}; statements below are MariaDB 10.4+'s (MySQL 8 uses LOCK INSTANCE FOR BACKUP / FLUSH TABLES WITH READ LOCK)`),
    sqlStep('connect', 'SELECT VERSION() AS version, @@version_comment AS comment'),
    sqlStep('discover', settingsQuery(d.settings)),
    sqlStep('discover', 'SELECT SCHEMA_NAME AS name FROM information_schema.SCHEMATA'),
    sqlStep('discover', d.tablespaces),
    sqlStep('discover', "SELECT TABLE_SCHEMA AS `schema`, TABLE_NAME AS `table`, ENGINE AS engine FROM information_schema.TABLES WHERE TABLE_TYPE = 'BASE TABLE' AND ENGINE IS NOT NULL AND TABLE_SCHEMA NOT IN ('information_schema', 'performance_schema')"),
    sqlStep('discover', 'SHOW BINARY LOGS'),
    ...all('checkpoint', d.sessionSetup(s.lockWaitTimeoutS)),
    ...all('checkpoint', d.checkpoint),
    sqlStep('checkpoint', d.currentBinlog),
    noteStep('checkpoint', 'fsync of the binlog being written'),
    ...all('checkpoint', d.blockTimeout(s.blockTimeoutMs)),
    ...all('acquire', d.block),
    sqlStep('acquire', d.currentBinlog),
    noteStep('acquire', `files of ${spaces.length} space(s) frozen by the snapshot provider`),
    sqlStep('release', 'SELECT CONNECTION_ID() AS id'),
    noteStep('release', 'the binlog position read with the commits still held'),
    ...all('release', d.unblock),
    ...all('release', d.afterWindow),
    ...(instance.logStore ? [noteStep('after-release', 'FLUSH BINARY LOGS, then every closed binlog the log archive lacks is copied into it (`ebr log sync`)')] : []),
  ];
}

const where = (s: MariadbSettings) => (s.socket ? s.socket : `${s.host ?? 'localhost'}:${s.port ?? 3306}`);
const mq = mirrorQueries;

/** The plan of a split mirror (mariadb-mirror.ts): the replica's statements with the primary's around them. */
export function mirrorBackupPlan(instance: InstanceContext<MariadbSettings>, replica: MirrorContext<MariadbSettings>, spaces: Space[]): PlanStep[] {
  const onReplica = mariadbBackupPlan({ ...instance, settings: replica.settings, logStore: undefined }, spaces).map((s) => ({ ...s, text: `replica: ${s.text}` }));
  const phase = (p: string) => onReplica.filter((s) => s.phase === p);
  const primary = `the primary ${where(instance.settings)}`;
  return [
    ...phase('connect'),
    noteStep('connect', `and a session on ${primary}`),
    sqlStep('connect', 'primary: SELECT VERSION() AS version, @@version_comment AS comment'),
    sqlStep('preflight', `primary: ${settingsQuery(dialectFor(parseVersion('10.11.0-MariaDB')).settings)}`),
    sqlStep('preflight', `replica: ${mq.replicaStatus}`),
    sqlStep('preflight', `replica: ${mq.replicaIdentity}`),
    sqlStep('preflight', `primary: ${mq.primaryIdentity}`),
    sqlStep('preflight', `primary: ${mq.primaryBinlogs}`),
    noteStep('preflight', `refused unless the replica replicates from ${primary} (Master_Server_Id = its server_id), both threads running, within ${replica.maxLagMs} ms`),
    sqlStep('preflight', `replica: ${mq.replicationFiles}`),
    ...phase('discover'),
    noteStep('discover', 'relay logs, master.info and relay-log.info are left out: a restored copy starts as a standalone server'),
    sqlStep('acquire', `replica: ${mq.stop}`),
    sqlStep('acquire', `replica: ${mq.replicaStatus} -- Relay_Master_Log_File, Exec_Master_Log_Pos: the backup's position in the primary's binlog`),
    sqlStep('acquire', `replica: ${mq.splitPoint}`),
    ...phase('checkpoint').map((s) => ({ ...s, phase: 'acquire' })),
    ...phase('acquire'),
    ...phase('release'),
    sqlStep('release', `primary: ${mq.primaryPosition}`),
    sqlStep('release', `replica: ${mq.start}`),
    ...(instance.logStore ? [noteStep('after-release', `${primary}: FLUSH BINARY LOGS, then every closed binlog the log archive lacks is copied into it (\`ebr log sync\`)`)] : []),
    sqlStep('after-release', `primary: ${mq.primaryBinlogs}`),
    ...(replica.resync === 'wait' ? [sqlStep('after-release', `replica: ${mq.waitFor} -- until it reaches the primary's position at the resume`)] : []),
  ];
}
