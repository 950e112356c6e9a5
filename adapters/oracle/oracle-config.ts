/**
 * The `oracle:` key of an instance: how to reach the database (oracledb thin mode, no Oracle client
 * needed), and how restore reaches SQL*Plus, which alone can start, mount and recover an instance.
 */
import { z } from 'zod';

export const oracleConfigSchema = z
  .object({
    /** Easy Connect (`dbhost:1521/ORCLPDB1`) or a TNS alias; the CDB root or a non-CDB, since backup mode is database-wide. */
    connectString: z.string().min(1),
    user: z.string().min(1),
    /** Write `${ORACLE_PASSWORD}` (or any variable), never the password itself. */
    password: z.string().min(1),
    /**
     * An administrative privilege for the session: SYSBACKUP is the one Oracle made for backups (needs a
     * password file entry). Leave out for a plain user granted ALTER DATABASE, ALTER SYSTEM and SELECT ANY DICTIONARY.
     */
    privilege: z.enum(['SYSBACKUP', 'SYSDBA']).optional(),
    /** The SQL*Plus binary restore runs (`sqlplus -S -L / as sysdba`); default `sqlplus` on PATH. */
    sqlplus: z.string().min(1).default('sqlplus'),
    /** ORACLE_SID (and ORACLE_HOME) for SQL*Plus, when the environment of ebr does not set them. */
    oracleSid: z.string().min(1).optional(),
    oracleHome: z.string().min(1).optional(),
    /**
     * Where the server writes the control-file backup at the end of the window, to be read back by ebr:
     * a directory both the oracle OS user and ebr can use, on the database host. Default: the system temp dir.
     */
    controlFileDir: z.string().min(1).optional(),
    /** Where restore puts the archived logs it fetches for recovery (readable by the oracle OS user). Default: the system temp dir. */
    scratchDir: z.string().min(1).optional(),
    /**
     * The snapshot is crash-consistent across every datafile, control file and online redo log, with
     * write order kept (one atomic snapshot of one volume group): the backup then takes no backup mode,
     * and restore recovers with `SNAPSHOT TIME`. Only declare it when the storage guarantees it.
     */
    crashConsistentSnapshot: z.boolean().default(false),
    connectTimeoutS: z.number().int().positive().max(600).default(20),
  })
  .strict();

export type OracleSettings = z.infer<typeof oracleConfigSchema>;
