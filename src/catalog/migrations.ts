/** Catalog schema, one entry per version; PRAGMA user_version says how far a catalog is. */
export const migrations: string[] = [
  `
  CREATE TABLE instances (
    name TEXT PRIMARY KEY,
    vendor TEXT NOT NULL,
    first_seen TEXT NOT NULL,
    last_seen TEXT NOT NULL
  );
  CREATE TABLE backups (
    id TEXT PRIMARY KEY,
    instance TEXT NOT NULL REFERENCES instances(name),
    vendor TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('running', 'complete', 'failed')),
    phase TEXT NOT NULL,
    started_at TEXT NOT NULL,
    finished_at TEXT,
    block_window_ms REAL,
    window_steps TEXT,
    log_start TEXT,
    log_end TEXT,
    timeline INTEGER,
    server TEXT,
    meta TEXT,
    snapshot_provider TEXT NOT NULL,
    target_type TEXT NOT NULL,
    location TEXT,
    bytes INTEGER,
    members INTEGER,
    runner_host TEXT NOT NULL,
    runner_pid INTEGER NOT NULL,
    runner_start TEXT NOT NULL,
    error TEXT
  );
  CREATE INDEX backups_by_instance ON backups(instance, started_at);
  CREATE TABLE phases (
    backup_id TEXT NOT NULL REFERENCES backups(id),
    seq INTEGER NOT NULL,
    phase TEXT NOT NULL,
    started_at TEXT NOT NULL,
    ended_at TEXT,
    outcome TEXT,
    duration_ms REAL,
    PRIMARY KEY (backup_id, seq)
  );
  CREATE TABLE discovery (
    backup_id TEXT NOT NULL REFERENCES backups(id),
    space TEXT NOT NULL,
    space_kind TEXT NOT NULL,
    critical INTEGER NOT NULL,
    chunk TEXT NOT NULL,
    path TEXT NOT NULL,
    type TEXT NOT NULL,
    offset INTEGER NOT NULL DEFAULT 0,
    size INTEGER NOT NULL,
    details TEXT,
    PRIMARY KEY (backup_id, chunk)
  );
  CREATE TABLE members (
    backup_id TEXT NOT NULL REFERENCES backups(id),
    space TEXT NOT NULL,
    name TEXT NOT NULL,
    size INTEGER NOT NULL,
    sha256 TEXT NOT NULL,
    stream TEXT NOT NULL,
    offset INTEGER NOT NULL,
    PRIMARY KEY (backup_id, name)
  );
  CREATE TABLE locks (
    instance TEXT PRIMARY KEY,
    backup_id TEXT NOT NULL,
    runner_host TEXT NOT NULL,
    runner_pid INTEGER NOT NULL,
    runner_start TEXT NOT NULL,
    acquired_at TEXT NOT NULL
  );
  CREATE TABLE resources (
    id INTEGER PRIMARY KEY,
    backup_id TEXT NOT NULL,
    provider TEXT NOT NULL,
    kind TEXT NOT NULL,
    path TEXT NOT NULL,
    details TEXT,
    created_at TEXT NOT NULL,
    removed_at TEXT
  );
  CREATE TABLE restores (
    id INTEGER PRIMARY KEY,
    backup_id TEXT NOT NULL,
    mode TEXT NOT NULL,
    spaces TEXT NOT NULL,
    target_dir TEXT,
    until TEXT,
    started_at TEXT NOT NULL,
    finished_at TEXT,
    status TEXT NOT NULL,
    error TEXT
  );
  `,
  // 2: retention removes old archives; the row stays as history, with the time it was removed.
  `ALTER TABLE backups ADD COLUMN removed_at TEXT;`,
  // 3: the catalog vouches for the archive (digests of manifest.json and every meta/ file, recorded at
  // seal); rebuilt rows came from an archive's manifest, not from a backup this catalog watched; a
  // restore journals its plan (every file it moves) and the step it is in, so a crash can be finished
  // or undone by the next command.
  `
  ALTER TABLE backups ADD COLUMN manifest_sha256 TEXT;
  ALTER TABLE backups ADD COLUMN meta_sha256 TEXT;
  ALTER TABLE backups ADD COLUMN rebuilt_at TEXT;
  ALTER TABLE restores ADD COLUMN instance TEXT;
  ALTER TABLE restores ADD COLUMN step TEXT;
  ALTER TABLE restores ADD COLUMN journal TEXT;
  ALTER TABLE restores ADD COLUMN runner_host TEXT;
  ALTER TABLE restores ADD COLUMN runner_pid INTEGER;
  ALTER TABLE restores ADD COLUMN runner_start TEXT;
  ALTER TABLE restores ADD COLUMN outcome TEXT;
  CREATE TABLE restore_steps (
    restore_id INTEGER NOT NULL REFERENCES restores(id),
    seq INTEGER NOT NULL,
    op TEXT NOT NULL,
    path TEXT NOT NULL,
    details TEXT,
    PRIMARY KEY (restore_id, seq)
  );
  `,
  // 4: how each backup is stored — its codec (compression, encryption; never a key, the data key only
  // wrapped) and each space's stream as stored (size, sha256, where on the media, e.g. tape volumes).
  `
  ALTER TABLE backups ADD COLUMN codec TEXT;
  ALTER TABLE backups ADD COLUMN stored_bytes INTEGER;
  CREATE TABLE streams (
    backup_id TEXT NOT NULL REFERENCES backups(id),
    space TEXT NOT NULL,
    stream TEXT NOT NULL,
    stored_bytes INTEGER,
    stored_sha256 TEXT,
    placement TEXT,
    PRIMARY KEY (backup_id, space)
  );
  `,
  // 5: drills: a backup restored into scratch, started and checked by the DBMS's own checks; each run with its
  // timings, check results and the logs it replayed, so `ebr list` and `ebr status` can say when a backup
  // was last proven restorable. scratch and runner let the next drill remove what a dead one left.
  `
  CREATE TABLE drills (
    id INTEGER PRIMARY KEY,
    backup_id TEXT NOT NULL REFERENCES backups(id),
    instance TEXT NOT NULL,
    spaces TEXT,
    status TEXT NOT NULL CHECK (status IN ('running', 'passed', 'failed')),
    started_at TEXT NOT NULL,
    finished_at TEXT,
    restore_ms REAL,
    recover_ms REAL,
    check_ms REAL,
    checks TEXT,
    log_applied TEXT,
    restore_id INTEGER,
    scratch TEXT NOT NULL,
    server_pid INTEGER,
    runner_host TEXT NOT NULL,
    runner_pid INTEGER NOT NULL,
    runner_start TEXT NOT NULL,
    error TEXT
  );
  CREATE INDEX drills_by_instance ON drills(instance, started_at);
  CREATE INDEX drills_by_backup ON drills(backup_id, started_at);
  `,
  // 6: pins: a pinned backup is kept by retention whatever its rules say, and the logs it needs stay in the
  // log archive; a table of its own, so pinning never rewrites the backup's row.
  `
  CREATE TABLE pins (
    backup_id TEXT PRIMARY KEY REFERENCES backups(id),
    pinned_at TEXT NOT NULL,
    note TEXT
  );
  `,
  // 7: leases: a lock is held while its holder renews it (heartbeat_at) and is free to take over once
  // expires_at is past, by the database's clock, whichever host asks (a dead host's pid cannot be asked).
  `
  ALTER TABLE locks ADD COLUMN heartbeat_at TEXT;
  ALTER TABLE locks ADD COLUMN expires_at TEXT;
  `,
  // 8: incremental and differential backups: the type, and the backup whose blocks an incr (the one
  // before it) or a diff (the last full) was compared with. Retention keeps every backup a kept one
  // needs through this column; restore reads the chain the manifest names.
  `
  ALTER TABLE backups ADD COLUMN type TEXT;
  ALTER TABLE backups ADD COLUMN parent_id TEXT;
  `,
];
