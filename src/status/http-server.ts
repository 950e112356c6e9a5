/**
 * `ebr daemon --listen`: `/metrics` (Prometheus exposition, as exporters serve it), `/status.json` and
 * the status page at `/`. Read-only, no authentication: it binds to 127.0.0.1 unless told otherwise.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Catalog } from '../catalog/catalog.js';
import type { Config } from '../config/load.js';
import { EbrError } from '../errors.js';
import { metricsContentType, metricsText } from './metrics.js';
import { statusPage } from './page.js';
import { collectStatus } from './status.js';

/** `127.0.0.1:9187`, `[::1]:9187`, `:9187` or `9187` (the last two on 127.0.0.1). */
export function parseListen(spec: string): { host: string; port: number } {
  const m = /^(?:(?:\[([^\]]+)\]|([^:[\]]*)):)?(\d+)$/.exec(spec.trim());
  const port = m ? Number(m[3]) : NaN;
  if (!m || !Number.isInteger(port) || port < 0 || port > 65535) {
    throw new EbrError('usage', `--listen ${JSON.stringify(spec)} is not HOST:PORT`, { hint: 'e.g. --listen 127.0.0.1:9187 (the default host is 127.0.0.1; give 0.0.0.0 only behind a firewall)' });
  }
  return { host: m[1] ?? (m[2] || '127.0.0.1'), port };
}

export async function serveStatus(o: { config: Config; catalog: Catalog; listen: string }): Promise<{ url: string; close(): Promise<void> }> {
  const { host, port } = parseListen(o.listen);
  const server = http.createServer((req, res) => {
    void (async () => {
      const url = new URL(req.url ?? '/', 'http://localhost');
      try {
        if (req.method !== 'GET' && req.method !== 'HEAD') {
          res.writeHead(405, { allow: 'GET, HEAD' }).end();
          return;
        }
        if (url.pathname === '/metrics') {
          res.writeHead(200, { 'content-type': metricsContentType }).end(await metricsText(await collectStatus(o.config, o.catalog, { recent: 1 })));
        } else if (url.pathname === '/status.json') {
          res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(await collectStatus(o.config, o.catalog)));
        } else if (url.pathname === '/') {
          res.writeHead(200, { 'content-type': 'text/html; charset=utf-8', 'content-security-policy': "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; connect-src 'self'" }).end(statusPage(await collectStatus(o.config, o.catalog)));
        } else {
          res.writeHead(404, { 'content-type': 'text/plain' }).end('not found: try / or /metrics\n');
        }
      } catch (err) {
        res.writeHead(500, { 'content-type': 'text/plain' }).end(`${(err as Error).message}\n`);
      }
    })();
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', (err) => reject(new EbrError('usage', `cannot listen on ${host}:${port}: ${err.message}`, { hint: 'pick a free port with --listen HOST:PORT', cause: err })));
    server.listen(port, host, () => resolve());
  });
  const a = server.address() as AddressInfo;
  return {
    url: `http://${a.family === 'IPv6' ? `[${a.address}]` : a.address}:${a.port}/`,
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
}
