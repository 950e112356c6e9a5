/**
 * The `mssql:` key of an instance. The connection keys are the mssql driver's own (server, port,
 * database, user, password, options, connectionTimeout, requestTimeout) so a DBA can copy them from an
 * application's config; `databases` names what is backed up.
 */
import { z } from 'zod';

/** SUSPEND_FOR_SNAPSHOT_BACKUP refuses the system databases; tempdb is rebuilt at every start anyway. */
export const systemDatabases = ['master', 'model', 'msdb', 'tempdb'];

export const mssqlConfigSchema = z
  .object({
    /** Host name or address of the SQL Server; ebr itself must run on that host (it reads the data files). */
    server: z.string().min(1),
    port: z.number().int().min(1).max(65535).default(1433),
    /** The database the session connects to; the backup never runs in it. */
    database: z.string().min(1).default('master'),
    /** A login with sysadmin, or db_backupoperator in each database plus ALTER ANY DATABASE. */
    user: z.string().min(1),
    /** Write `${MSSQL_PASSWORD}` (or any variable), never the password itself. */
    password: z.string().optional(),
    /**
     * The databases to back up: one is suspended with ALTER DATABASE, several together with the
     * server-level group form. The server refuses more than 64 in one group (Msg 925).
     */
    databases: z
      .array(z.string().min(1).max(128))
      .min(1)
      .max(64)
      .refine((dbs) => new Set(dbs.map((d) => d.toLowerCase())).size === dbs.length, { message: 'a database is named twice' })
      .refine((dbs) => !dbs.some((d) => systemDatabases.includes(d.toLowerCase())), {
        message: `${systemDatabases.join(', ')} cannot be suspended for a snapshot backup; back them up with a streaming BACKUP DATABASE`,
      }),
    options: z
      .object({
        encrypt: z.boolean().default(true),
        trustServerCertificate: z.boolean().default(false),
        instanceName: z.string().min(1).optional(),
      })
      .strict()
      .default({}),
    connectionTimeout: z.number().int().positive().default(15_000),
    /** Bound of every statement of a backup; restores use restoreRequestTimeout. */
    requestTimeout: z.number().int().positive().default(30_000),
    /** RESTORE with many log backups takes long; 0 waits for ever. */
    restoreRequestTimeout: z.number().int().min(0).default(3_600_000),
    /**
     * A directory on this host that the SQL Server service account may write and ebr may read and
     * remove from: the server writes the .bkm metadata file and the log backups (.trn) there.
     */
    backupDir: z.string().min(1).default('/var/opt/mssql/ebr'),
    /** Refuse databases not in the FULL recovery model: without log backups there is no --until. */
    requireFullRecovery: z.boolean().default(true),
  })
  .strict();

export type MssqlSettings = z.infer<typeof mssqlConfigSchema>;
