/**
 * The `informix:` key of an instance: where the server's own tools are and which files describe it.
 * ebr drives Informix only through onstat, onmode and onbar, as the ON-Bar guide's external backup does;
 * it runs on the database host as informix (or a member of bargroup).
 */
import path from 'node:path';
import { z } from 'zod';

export const informixConfigSchema = z
  .object({
    /** INFORMIXSERVER: the server the tools talk to. */
    server: z.string().min(1),
    /**
     * INFORMIXDIR: set in the tools' environment, and where they are (`<informixDir>/bin/onstat` …).
     * Without it ebr's own INFORMIXDIR, else the tools are looked up on PATH.
     */
    informixDir: z.string().min(1).optional(),
    /** ONCONFIG (the file name under $INFORMIXDIR/etc, or a path): recorded with every backup. */
    onconfig: z.string().min(1),
    /** INFORMIXSQLHOSTS: recorded with every backup. */
    sqlhosts: z.string().min(1),
    /** The ON-Bar boot file (ixbar.<servernum>): recorded with every backup, restore needs it. */
    ixbar: z.string().min(1),
    /** Each tool's path, when it is not `<informixDir>/bin/<tool>`. */
    onstat: z.string().min(1).optional(),
    onmode: z.string().min(1).optional(),
    onbar: z.string().min(1).optional(),
    /**
     * What backs up the logical log current at block time once the server is unblocked; without it the
     * external backup "is not restorable". Default `onbar -b -l -c` (close the current log and back it up).
     */
    logBackup: z.array(z.string().min(1)).min(1).optional(),
    /**
     * Onstat shows chunk offsets in pages of the system's base page size (2 KiB on Linux, 4 KiB on AIX
     * and Windows): the byte offset of a chunk in its file or device is offset × basePageSize.
     */
    basePageSize: z.number().int().positive().default(2048),
    /** A full restore first saves the logs not yet backed up (`onbar -b -l -s`), while the old chunks still hold them. */
    salvageLogs: z.boolean().default(true),
    /** Full restore in two steps (`onbar -r -e -p`, then `onbar -r -l`) instead of one `onbar -r -e`. */
    physicalThenLogical: z.boolean().default(false),
    commandTimeoutS: z.number().int().positive().max(86400).default(3600),
  })
  .strict();

export type InformixSettings = z.infer<typeof informixConfigSchema>;

export type InformixTool = 'onstat' | 'onmode' | 'onbar';

/** Where a tool is: its own setting, else `<informixDir>/bin/<tool>` (INFORMIXDIR from ebr's environment), else PATH. */
export function toolPath(s: InformixSettings, tool: InformixTool): string {
  const own = s[tool];
  if (own) return own;
  const dir = s.informixDir ?? process.env.INFORMIXDIR;
  return dir ? `${dir.replace(/\/+$/, '')}/bin/${tool}` : tool;
}

/** Where onconfig lies: a bare name is a file under $INFORMIXDIR/etc, as the server reads $ONCONFIG. */
export function onconfigPath(s: InformixSettings, resolve: (p: string) => string): string {
  if (path.isAbsolute(s.onconfig) || !s.informixDir) return resolve(s.onconfig);
  return path.join(s.informixDir, 'etc', s.onconfig);
}
