/** An ebr.yaml with one instance, its catalog, copy snapshots and archive all under `dir`. */
import { writeFileSync } from 'node:fs';
import path from 'node:path';

export function writeInstanceConfig(dir: string, instance: string, adapterLines: string | string[], o: { target?: 'dir' | 'tar'; maxBlockMs?: number } = {}): string {
  const file = path.join(dir, 'ebr.yaml');
  writeFileSync(
    file,
    [
      `catalog: ${path.join(dir, 'catalog.db')}`,
      'instances:',
      `  ${instance}:`,
      ...(Array.isArray(adapterLines) ? adapterLines : [adapterLines]),
      `    snapshot: { provider: copy, staging: ${path.join(dir, 'staging')} }`,
      `    target: { type: ${o.target ?? 'dir'}, path: ${path.join(dir, 'backups')} }`,
      ...(o.maxBlockMs !== undefined ? [`    maxBlockMs: ${o.maxBlockMs}`] : []),
      '',
    ].join('\n'),
  );
  return file;
}
