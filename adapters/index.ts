/** Every adapter ebr ships; a new vendor is one folder under adapters/ and one line here. */
import type { DbmsAdapter } from '../src/adapter-api.js';
import { db2Adapter } from './db2/index.js';
import { informixAdapter } from './informix/index.js';
import { mariadbAdapter } from './mariadb/index.js';
import { mssqlAdapter } from './mssql/index.js';
import { oracleAdapter } from './oracle/index.js';
import { postgresAdapter } from './postgres/index.js';
import { sqliteAdapter } from './sqlite/index.js';

export const adapters: ReadonlyArray<DbmsAdapter<never>> = [
  sqliteAdapter as DbmsAdapter<never>,
  postgresAdapter as DbmsAdapter<never>,
  mariadbAdapter as DbmsAdapter<never>,
  mssqlAdapter as DbmsAdapter<never>,
  oracleAdapter as DbmsAdapter<never>,
  informixAdapter as DbmsAdapter<never>,
  db2Adapter as DbmsAdapter<never>,
];
