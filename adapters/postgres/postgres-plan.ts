/**
 * `ebr backup --dry-run` for PostgreSQL: the statements postgres-session.ts sends, phase by phase, in
 * the order the workflow calls them. Built from the same constants the session sends.
 */
import type { InstanceContext, MirrorContext, PlanStep, Space } from '../../src/adapter-api.js';
import { noteStep, sqlStep as step } from '../../src/plan.js';
import type { PostgresSettings } from './postgres-config.js';
import { walCommand } from './ebr-command.js';
import * as q from './postgres-queries.js';


export function postgresBackupPlan(instance: InstanceContext<PostgresSettings>, spaces: Space[]): PlanStep[] {
  const s = instance.settings;
  const layout = (phase: string) => [step(phase, q.databases), step(phase, q.tablespaces), step(phase, q.configFiles)];
  return [
    { phase: 'connect', kind: 'note', text: `connect to ${s.host}:${s.port} as ${s.user}, database ${s.database}` },
    ...q.sessionSettings.map((t) => step('connect', t)),
    step('connect', q.describeServer),
    step('preflight', q.archiveSettings),
    ...layout('discover'),
    step('checkpoint', q.checkpoint),
    step('acquire', q.backupStart.replace('$1', `'ebr ${instance.name} <time>'`)),
    // The files are listed again once the backup has started (see postgres-session.ts block).
    ...layout('acquire'),
    { phase: 'acquire', kind: 'note', text: `files of ${spaces.length} space(s) listed again under the data directory and tablespaces` },
    step('release', q.backupStop),
    {
      phase: 'after-release',
      kind: 'note',
      text: `wait up to ${s.archiveWaitMs} ms for the stop segment in the log archive (the server's archive_command: ${walCommand('push', instance.name, instance.configFile, ['%p'])}); ${q.archiverStatus.trim().replace(/\s+/g, ' ')} if it does not come`,
    },
  ];
}

const where = (s: PostgresSettings) => `${s.host}:${s.port}`;
const mirrorQueries = q.mirrorQueries;

/** The plan of a split mirror (postgres-mirror.ts): the replica's statements with the primary's around them. */
export function mirrorBackupPlan(instance: InstanceContext<PostgresSettings>, replica: MirrorContext<PostgresSettings>, spaces: Space[]): PlanStep[] {
  const onReplica = postgresBackupPlan({ ...instance, settings: replica.settings }, spaces).filter((s) => s.phase !== 'preflight' && s.phase !== 'after-release');
  const primary = `the primary ${where(instance.settings)}`;
  const at = (i: number) => onReplica.findIndex((s) => s.phase === (['discover', 'acquire', 'release'] as const)[i]);
  const steps: PlanStep[] = [
    ...onReplica.slice(0, at(0)).map((s) => ({ ...s, text: `replica: ${s.text}` })),
    noteStep('connect', `and a session on ${primary}`),
    step('preflight', `primary: ${q.archiveSettings}`),
    step('preflight', `replica: ${mirrorQueries.replicaState}`),
    step('preflight', `primary: ${mirrorQueries.primaryState}`),
    noteStep('preflight', `refused unless the replica is a streaming standby of this system, not paused, within ${replica.maxLagMs} ms`),
    ...onReplica.slice(at(0), at(2)).map((s) => ({ ...s, text: `replica: ${s.text}` })),
    step('acquire', `replica: ${mirrorQueries.pause}`),
    step('acquire', `replica: ${mirrorQueries.pauseState} -- until paused`),
    ...onReplica.slice(at(2)).map((s) => ({ ...s, text: `replica: ${s.text}` })),
    step('release', `primary: ${mirrorQueries.primaryLsn}`),
    step('release', `replica: ${mirrorQueries.resume}`),
    step('after-release', `primary: ${mirrorQueries.mark}`),
    step('after-release', `primary: ${mirrorQueries.switchWal}`),
    noteStep('after-release', `wait for the stop segment in the log archive, pushed by ${primary}'s archive_command`),
    ...(replica.resync === 'wait' ? [step('after-release', `replica: ${mirrorQueries.replayLsn} -- until it reaches the primary's position at the resume`)] : []),
  ];
  return steps;
}
