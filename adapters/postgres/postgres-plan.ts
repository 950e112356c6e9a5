/**
 * `ebr backup --dry-run` for PostgreSQL: the statements postgres-session.ts sends, phase by phase, in
 * the order the workflow calls them. Built from the same constants the session sends.
 */
import type { InstanceContext, PlanStep, Space } from '../../src/adapter-api.js';
import type { PostgresSettings } from './postgres-config.js';
import { walCommand } from './ebr-command.js';
import * as q from './postgres-queries.js';

const sql = (phase: string, text: string): PlanStep => ({ phase, kind: 'sql', text: text.trim().replace(/\s+/g, ' ') });

export function postgresBackupPlan(instance: InstanceContext<PostgresSettings>, spaces: Space[]): PlanStep[] {
  const s = instance.settings;
  const layout = (phase: string) => [sql(phase, q.databases), sql(phase, q.tablespaces), sql(phase, q.configFiles)];
  return [
    { phase: 'connect', kind: 'note', text: `connect to ${s.host}:${s.port} as ${s.user}, database ${s.database}` },
    ...q.sessionSettings.map((t) => sql('connect', t)),
    sql('connect', q.describeServer),
    sql('preflight', q.archiveSettings),
    ...layout('discover'),
    sql('checkpoint', q.checkpoint),
    sql('acquire', q.backupStart.replace('$1', `'ebr ${instance.name} <time>'`)),
    // The files are listed again once the backup has started (see postgres-session.ts block).
    ...layout('acquire'),
    { phase: 'acquire', kind: 'note', text: `files of ${spaces.length} space(s) listed again under the data directory and tablespaces` },
    sql('release', q.backupStop),
    {
      phase: 'after-release',
      kind: 'note',
      text: `wait up to ${s.archiveWaitMs} ms for the stop segment in the log archive (the server's archive_command: ${walCommand('push', instance.name, instance.configFile, ['%p'])}); ${q.archiverStatus.trim().replace(/\s+/g, ' ')} if it does not come`,
    },
  ];
}
