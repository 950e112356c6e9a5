/**
 * The `db2:` key of an instance: which database of which instance, and where the Db2 tools are. ebr
 * drives Db2 only through its command line processor (`db2`) and `db2inidb`, as IBM's split-mirror
 * procedures do; it runs on the database host as the instance owner (or a SYSADM/SYSCTRL/SYSMAINT user).
 */
import { z } from 'zod';

export const db2ConfigSchema = z
  .object({
    /** The database alias (`CONNECT TO <database>`, `db2inidb <database> AS …`). */
    database: z.string().regex(/^[A-Za-z][A-Za-z0-9_@#$]{0,7}$/, 'a Db2 database alias: up to 8 letters, digits, _ @ # $'),
    /** DB2INSTANCE for every tool ebr runs: the instance that owns the database. */
    instance: z.string().min(1),
    /** The command line processor; default `db2` on PATH (`~<instance>/sqllib/bin/db2`). */
    db2: z.string().min(1).default('db2'),
    /** The split-mirror initializer; default `db2inidb` on PATH (`~<instance>/sqllib/bin/db2inidb`). */
    db2inidb: z.string().min(1).default('db2inidb'),
    /**
     * What an in-place restore makes of the files it put back (`db2inidb <db> AS …`): `mirror` (the
     * default) rolls the primary forward through its own logs (its log path is not overwritten);
     * `snapshot` makes the files a consistent clone as of the suspend (crash recovery, no roll-forward,
     * the backup's log path written back); `standby` leaves the database in roll-forward pending.
     */
    restoreAs: z.enum(['mirror', 'snapshot', 'standby']).default('mirror'),
    /** Bound on each tool run outside the window (ROLLFORWARD can be long). */
    commandTimeoutS: z.number().int().positive().max(86400).default(3600),
  })
  .strict();

export type Db2Settings = z.infer<typeof db2ConfigSchema>;
