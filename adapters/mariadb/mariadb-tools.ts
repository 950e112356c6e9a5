/**
 * The server and client programs restore runs: the server binary for temporary servers, the binlog
 * reader and the command-line client for replay. Looked up once; a missing one names its package.
 */
import { accessSync, constants } from 'node:fs';
import path from 'node:path';
import { EbrError } from '../../src/errors.js';
import type { Flavor } from './mariadb-queries.js';

export interface Tools {
  server: string;
  binlog: string;
  client: string;
}

const names: Record<Flavor, { server: string[]; binlog: string[]; client: string[]; pkg: string }> = {
  mariadb: { server: ['mariadbd', 'mysqld'], binlog: ['mariadb-binlog', 'mysqlbinlog'], client: ['mariadb', 'mysql'], pkg: 'mariadb-server and mariadb-client' },
  mysql: { server: ['mysqld'], binlog: ['mysqlbinlog'], client: ['mysql'], pkg: 'the MySQL server and client packages of the same version as the backed-up server' },
};

export function findTools(flavor: Flavor, o: { serverBinDir?: string; clientBinDir?: string }, instance: string): Tools {
  const n = names[flavor];
  const pathDirs = (process.env.PATH ?? '').split(path.delimiter).filter(Boolean);
  const find = (candidates: string[], dirs: string[], what: string, key: string) => {
    for (const dir of dirs) {
      for (const c of candidates) {
        const p = path.join(dir, c);
        try {
          accessSync(p, constants.X_OK);
          return p;
        } catch {
          // try the next one
        }
      }
    }
    throw new EbrError('restore', `cannot find the ${what} (${candidates.join(' or ')}) in ${dirs.join(', ')}`, {
      hint: `install ${n.pkg} (Debian: apt-get install ${flavor === 'mariadb' ? 'mariadb-server mariadb-client' : 'mysql-server mysql-client'}), or set mariadb.${key} in the config`,
      context: { instance, phase: 'restore' },
    });
  };
  return {
    server: find(n.server, o.serverBinDir ? [o.serverBinDir] : ['/usr/sbin', '/usr/local/sbin', ...pathDirs], 'database server program', 'serverBinDir'),
    binlog: find(n.binlog, o.clientBinDir ? [o.clientBinDir] : pathDirs, 'binlog reader', 'clientBinDir'),
    client: find(n.client, o.clientBinDir ? [o.clientBinDir] : pathDirs, 'command-line client', 'clientBinDir'),
  };
}
