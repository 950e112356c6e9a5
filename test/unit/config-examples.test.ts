/** Every example in config/ and the starter that `ebr init` writes validate against the real schema. */
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import YAML from 'yaml';
import { describe, expect, it } from 'vitest';
import { parseConfig } from '../../src/config/load.js';
import { starterConfig } from '../../src/config/starter.js';
import { repoRoot } from '../helpers/env.js';

const dir = path.join(repoRoot, 'config');
const env = { PGPASSWORD: 'x', MARIADB_PASSWORD: 'x', MYSQL_PWD: 'x', EBR_PASSWORD: 'x' };

describe('example configs', () => {
  const files = readdirSync(dir).filter((f) => f.endsWith('.yaml'));
  it('exist for sqlite at least', () => expect(files).toContain('sqlite.yaml'));
  it.each(files)('%s validates', (f) => {
    const file = path.join(dir, f);
    const config = parseConfig(YAML.parse(readFileSync(file, 'utf8')), file, env);
    expect(Object.keys(config.instances).length).toBeGreaterThan(0);
  });
  it('the starter config validates', () => {
    const config = parseConfig(YAML.parse(starterConfig), '/etc/ebr/ebr.yaml', env);
    expect(config.instances.shop?.adapter).toBe('sqlite');
    expect(config.catalog).toBe('/etc/ebr/var/catalog.db');
  });
});
