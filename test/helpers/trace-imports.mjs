// Loaded with `node --import`: records every module the process resolves, ESM imports and CommonJS
// requires alike (one path or URL per line), into $EBR_TRACE_IMPORTS, so a test can tell which
// packages a command loaded.
import Module, { register } from 'node:module';
import { MessageChannel } from 'node:worker_threads';
import { appendFileSync } from 'node:fs';

const out = process.env.EBR_TRACE_IMPORTS;
const { port1, port2 } = new MessageChannel();
port1.on('message', (url) => appendFileSync(out, `${url}\n`));
port1.unref();
register('./trace-imports-hooks.mjs', { parentURL: import.meta.url, data: { port: port2 }, transferList: [port2] });

// createRequire(...)('x') resolves through here, not through the ESM hooks.
const resolveFilename = Module._resolveFilename;
Module._resolveFilename = function (...args) {
  const resolved = resolveFilename.apply(this, args);
  appendFileSync(out, `${resolved}\n`);
  return resolved;
};
