/** Every statement the adapter sends, in one place. */

export const sessionSettings = [
  // The backup session must outlive any timeout a DBA set for ordinary sessions: if it dies, the server aborts the backup.
  'SET statement_timeout = 0',
  'SET idle_session_timeout = 0',
  'SET idle_in_transaction_session_timeout = 0',
  'SET lock_timeout = 0',
];

export const describeServer = `
SELECT current_setting('server_version') AS version,
       current_setting('server_version_num')::int AS version_num,
       current_setting('data_directory', true) AS data_directory,
       (SELECT setting::bigint * CASE unit WHEN '8kB' THEN 8192 WHEN 'MB' THEN 1048576 ELSE 1 END FROM pg_settings WHERE name = 'wal_segment_size') AS wal_segment_size,
       (SELECT system_identifier::text FROM pg_control_system()) AS system_identifier,
       (SELECT catalog_version_no FROM pg_control_system()) AS catalog_version,
       (SELECT timeline_id FROM pg_control_checkpoint()) AS timeline,
       pg_is_in_recovery() AS in_recovery`;

export const archiveSettings = `
SELECT current_setting('archive_mode') AS archive_mode,
       current_setting('archive_command') AS archive_command,
       current_setting('archive_library') AS archive_library,
       current_setting('wal_level') AS wal_level,
       current_setting('full_page_writes') AS full_page_writes,
       (SELECT rolsuper FROM pg_roles WHERE rolname = current_user) AS superuser,
       has_function_privilege('pg_backup_start(text, boolean)', 'EXECUTE') AS can_start,
       has_function_privilege('pg_backup_stop(boolean)', 'EXECUTE') AS can_stop`;

export const configFiles = `
SELECT current_setting('config_file', true) AS config_file,
       current_setting('hba_file', true) AS hba_file,
       current_setting('ident_file', true) AS ident_file,
       current_setting('log_directory', true) AS log_directory`;

export const databases = `SELECT oid::bigint AS oid, datname, dattablespace::bigint AS tablespace, datistemplate AS template, datallowconn AS allow_conn FROM pg_database ORDER BY oid`;

export const tablespaces = `SELECT oid::bigint AS oid, spcname, pg_tablespace_location(oid) AS location FROM pg_tablespace ORDER BY oid`;

export const checkpoint = 'CHECKPOINT';

export const backupStart = 'SELECT pg_backup_start($1, fast => true)::text AS lsn';

/**
 * wait_for_archive => false on purpose: the server then returns at once instead of waiting for the
 * archiver inside the window, and afterRelease waits for the stop segment in ebr's own log archive,
 * which proves more (the segment is in the store this instance restores from, with its digest).
 */
export const backupStop = 'SELECT lsn::text AS lsn, labelfile, spcmapfile FROM pg_backup_stop(wait_for_archive => false)';

export const archiverStatus = `SELECT last_archived_wal, last_archived_time, last_failed_wal, last_failed_time, failed_count FROM pg_stat_archiver`;

/** A split mirror (postgres-mirror.ts): the statements on the replica and on the primary. */
export const mirrorQueries = {
  /** On the replica: is it a standby, of which system, streaming, paused, how far behind. */
  replicaState: `
SELECT pg_is_in_recovery() AS in_recovery,
       (SELECT system_identifier::text FROM pg_control_system()) AS system_identifier,
       CASE WHEN pg_is_in_recovery() THEN pg_get_wal_replay_pause_state() END AS pause_state,
       (SELECT status FROM pg_stat_wal_receiver LIMIT 1) AS receiver,
       pg_last_wal_replay_lsn()::text AS replay_lsn,
       COALESCE(EXTRACT(EPOCH FROM (now() - pg_last_xact_replay_timestamp())) * 1000, 0)::float8 AS replay_age_ms`,
  primaryState: `SELECT (SELECT system_identifier::text FROM pg_control_system()) AS system_identifier, pg_current_wal_lsn()::text AS lsn, pg_is_in_recovery() AS in_recovery`,
  pause: 'SELECT pg_wal_replay_pause()',
  pauseState: 'SELECT pg_get_wal_replay_pause_state() AS state, pg_last_wal_replay_lsn()::text AS lsn',
  resume: 'SELECT pg_wal_replay_resume()',
  primaryLsn: 'SELECT pg_current_wal_lsn()::text AS lsn',
  replayLsn: 'SELECT pg_last_wal_replay_lsn()::text AS lsn',
  /** A WAL record on the primary, so the switch below always closes the segment the backup ends in. */
  mark: "SELECT pg_logical_emit_message(false, 'ebr', 'split mirror backup')",
  switchWal: 'SELECT pg_switch_wal()',
  lsnDiff: 'SELECT pg_wal_lsn_diff($1::pg_lsn, $2::pg_lsn)::float8 AS bytes',
} as const;
