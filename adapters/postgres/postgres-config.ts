/** The `postgres:` key of an instance: how to reach the server. The data directory is asked of the server. */
import { z } from 'zod';

export const postgresConfigSchema = z
  .object({
    /** A host name, or the directory of the server's unix socket (`/var/run/postgresql`). */
    host: z.string().min(1).default('/var/run/postgresql'),
    port: z.number().int().min(1).max(65535).default(5432),
    /** A superuser, or a role with pg_read_all_settings and EXECUTE on pg_backup_start/pg_backup_stop. */
    user: z.string().min(1).default('postgres'),
    database: z.string().min(1).default('postgres'),
    /** Write `${PGPASSWORD}` (or any variable), never the password itself. */
    password: z.string().optional(),
    connectTimeoutMs: z.number().int().positive().default(10_000),
    /** How long a backup waits after the window for the last WAL segment to reach the log archive. */
    archiveWaitMs: z.number().int().positive().default(120_000),
  })
  .strict();

export type PostgresSettings = z.infer<typeof postgresConfigSchema>;
