/**
 * The `mariadb:` key of an instance: how to reach the server, and the few knobs restore needs when
 * no server is running (the binaries to start a temporary one, where it may put its scratch files).
 */
import { z } from 'zod';

export const mariadbConfigSchema = z
  .object({
    /** Unix socket of the server; preferred over host/port on the same machine. */
    socket: z.string().min(1).optional(),
    host: z.string().min(1).optional(),
    port: z.number().int().positive().max(65535).default(3306),
    user: z.string().min(1),
    /** Use `${ENV}` in the config file; never written to logs or the catalog. */
    password: z.string().optional(),
    database: z.string().optional(),
    /** Bounds every metadata-lock wait of the backup stages, in seconds (lock_wait_timeout on the session). */
    lockWaitTimeoutS: z.number().int().positive().max(31_536_000).default(30),
    /**
     * Longest wait for BACKUP STAGE BLOCK_COMMIT (it waits for running commits, and new commits queue
     * behind it meanwhile): past it the backup fails instead of holding writers.
     */
    blockTimeoutMs: z.number().int().positive().max(600_000).default(5000),
    /** Refuse to back up when the binary log is off: without it no point-in-time restore is possible. */
    requireBinlog: z.boolean().default(true),
    /** Directory for the temporary servers of point-in-time and partial restores (default: the system temp dir). */
    scratchDir: z.string().min(1).optional(),
    /** Directory holding mariadbd / mysqld; default: /usr/sbin, then PATH. */
    serverBinDir: z.string().min(1).optional(),
    /** Directory holding the mariadb / mariadb-binlog clients; default: PATH. */
    clientBinDir: z.string().min(1).optional(),
    /** Extra options for the temporary servers (encryption plugins, a --defaults-extra-file, …). */
    tempServerOptions: z.array(z.string()).default([]),
    /** Buffer pool of the temporary servers; the replay speed of a point-in-time restore depends on it. */
    tempServerBufferPool: z.string().regex(/^\d+[KMG]?$/, 'a size such as 256M').default('256M'),
  })
  .strict()
  .refine((s) => s.socket !== undefined || s.host !== undefined, { message: 'give socket (a Unix socket path) or host', path: ['socket'] });

export type MariadbSettings = z.infer<typeof mariadbConfigSchema>;
