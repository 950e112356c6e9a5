/** Every example in config/, every YAML example in README.md and docs/, and the starter that `ebr init` writes validate against the real schema. */
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import YAML from 'yaml';
import { describe, expect, it } from 'vitest';
import { parseConfig } from '../../src/config/load.js';
import { starterConfig } from '../../src/config/starter.js';
import { adapterNames } from '../../src/registry.js';
import { repoRoot } from '../helpers/env.js';
import { configSchema } from '../../src/config/schema.js';

const dir = path.join(repoRoot, 'config');
const env = { PGPASSWORD: 'x', MARIADB_PASSWORD: 'x', MYSQL_PWD: 'x', EBR_PASSWORD: 'x', MSSQL_PASSWORD: 'x', ORACLE_EBR_PASSWORD: 'x', EBR_CATALOG_PASSWORD: 'x' };

describe('example configs', () => {
  const files = readdirSync(dir).filter((f) => f.endsWith('.yaml'));
  it('exist for sqlite at least', () => expect(files).toContain('sqlite.yaml'));
  it.each(files)('%s validates', (f) => {
    const file = path.join(dir, f);
    const config = parseConfig(YAML.parse(readFileSync(file, 'utf8')), file, env);
    expect(Object.keys(config.instances).length).toBeGreaterThan(0);
  });
  it('the starter config validates', () => {
    const config = parseConfig(YAML.parse(starterConfig(adapterNames())), '/etc/ebr/ebr.yaml', env);
    expect(config.instances.shop?.adapter).toBe('sqlite');
    expect(config.catalog).toBe('/etc/ebr/var/catalog.db');
  });

  // The YAML blocks of docs/ (and the README's whole configs): fragments get what they leave out
  // (instances:, adapter, target) from a stub, so their snapshot: and target: sections are checked
  // against the providers' and targets' own keys.
  const docs = readdirSync(path.join(repoRoot, 'docs')).filter((f) => f.endsWith('.md')).map((f) => `docs/${f}`);
  const blocks = [
    ...docs.flatMap((doc) => yamlBlocks(readFileSync(path.join(repoRoot, doc), 'utf8')).map((text, i) => ({ name: `${doc} block ${i + 1}`, text }))),
    ...yamlBlocks(readFileSync(path.join(repoRoot, 'README.md'), 'utf8'))
      .map((text, i) => ({ name: `README.md block ${i + 1}`, text }))
      .filter((b) => /^instances:/m.test(b.text)),
  ];
  it('the docs hold YAML examples of snapshot: and target:', () => {
    expect(blocks.filter((b) => /snapshot:/.test(b.text)).length).toBeGreaterThan(3);
  });
  it.each(blocks)('$name validates', ({ name, text }) => {
    const parsed = YAML.parse(text) as Record<string, unknown>;
    // A fragment of the top level (catalog:, groups:, …) gets a stub instance; any other is instances.
    const topLevel = Object.keys(parsed).some((k) => k in configSchema.shape);
    const doc = (topLevel ? { instances: { stub: {} }, ...parsed } : { instances: parsed }) as { instances: Record<string, Record<string, unknown>> };
    for (const inst of Object.values(doc.instances)) {
      if (!inst.adapter) Object.assign(inst, { adapter: 'sqlite', sqlite: { main: './x.db' } });
      inst.target ??= { type: 'tar', path: '/backup' };
    }
    expect(() => parseConfig(doc, path.join(repoRoot, name.replace(/ block \d+$/, '')), env)).not.toThrow();
  });
});

/** The ```yaml blocks of a markdown file, dedented (blocks inside list items are indented). */
function yamlBlocks(md: string): string[] {
  const out: string[] = [];
  for (const m of md.matchAll(/^( *)```yaml\n([\s\S]*?)^ *```$/gm)) {
    const indent = m[1]!.length;
    out.push(m[2]!.split('\n').map((l) => l.slice(Math.min(indent, l.length - l.trimStart().length))).join('\n'));
  }
  return out;
}
