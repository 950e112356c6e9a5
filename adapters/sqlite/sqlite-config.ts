/** The `sqlite:` key of an instance: the main database file and the databases attached to it. */
import { z } from 'zod';

export const sqliteConfigSchema = z
  .object({
    main: z.string().min(1),
    attach: z.record(z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/, 'a schema name: letters, digits and _'), z.string().min(1)).default({}),
    /** How long block waits for a running writer to finish, in ms. */
    busyTimeoutMs: z.number().int().nonnegative().default(5000),
  })
  .strict()
  .refine((s) => !('main' in s.attach) && !('temp' in s.attach), { message: 'attach may not use the names main or temp', path: ['attach'] });

export type SqliteSettings = z.infer<typeof sqliteConfigSchema>;
