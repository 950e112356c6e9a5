/** target: and snapshot: take only the keys their target type or snapshot provider declares. */
import { describe, expect, it } from 'vitest';
import { parseConfig } from '../../src/config/load.js';
import { EbrError } from '../../src/errors.js';

const file = '/etc/ebr/ebr.yaml';

function configWith(section: { snapshot?: Record<string, unknown>; target?: Record<string, unknown> }) {
  return {
    instances: {
      demo: {
        adapter: 'sqlite',
        sqlite: { main: './shop.db' },
        ...(section.snapshot ? { snapshot: section.snapshot } : {}),
        target: section.target ?? { type: 'tar', path: './backups' },
      },
    },
  };
}

function refusal(doc: unknown): EbrError {
  try {
    parseConfig(doc, file, {});
  } catch (err) {
    expect(err).toBeInstanceOf(EbrError);
    return err as EbrError;
  }
  throw new Error('the config was accepted');
}

describe('config: target and snapshot keys', () => {
  it('refuses an unknown target key, naming it and the keys the target type takes', () => {
    const err = refusal(configWith({ target: { type: 'tar', path: './backups', compresion: 'zstd' } }));
    expect(err.code).toBe('config');
    expect(err.exitCode).toBe(2);
    expect(err.message).toBe(`${file}: unknown key instances.demo.target.compresion; a tar target takes: type, path`);
    expect(err.hint).toMatch(/remove compresion/);
    expect(err.context.key).toBe('instances.demo.target.compresion');
    expect(refusal(configWith({ target: { type: 'dir', path: './b', pth: './c' } })).message).toMatch(/unknown key instances\.demo\.target\.pth; a dir target takes: type, path$/);
  });

  it('refuses an unknown snapshot key, naming the keys of that provider and the one a typo meant', () => {
    const err = refusal(configWith({ snapshot: { provider: 'copy', stagin: './var/staging' } }));
    expect(err.message).toBe(`${file}: unknown key instances.demo.snapshot.stagin; a copy snapshot takes: provider, staging`);
    expect(err.hint).toMatch(/did you mean staging\?/);
    expect(err.exitCode).toBe(2);
    expect(refusal(configWith({ snapshot: { provider: 'lvm', mountdir: '/run/x' } })).hint).toMatch(/did you mean mountDir\?/);
    expect(refusal(configWith({ snapshot: { provider: 'btrfs', size: '4G' } })).message).toMatch(/unknown key instances\.demo\.snapshot\.size; a btrfs snapshot takes: provider, dir, staging, copyFallback$/);
    expect(refusal(configWith({ snapshot: { provider: 'zfs', mountDir: '/x' } })).message).toMatch(/a zfs snapshot takes: provider, staging, copyFallback$/);
    // reflink clones every file and has no byte-copy fallback: the key would do nothing, so it is refused.
    expect(refusal(configWith({ snapshot: { provider: 'reflink', copyFallback: ['space:audit'] } })).message).toMatch(/a reflink snapshot takes: provider, staging$/);
  });

  it('accepts every key each provider and target documents', () => {
    const ok = (section: Parameters<typeof configWith>[0]) => expect(() => parseConfig(configWith(section), file, {})).not.toThrow();
    ok({ snapshot: { provider: 'copy', staging: './s' } });
    ok({ snapshot: { provider: 'reflink', staging: './s' } });
    ok({ snapshot: { provider: 'btrfs', dir: '/srv/.snapshots', staging: './s', copyFallback: ['/srv/ext4/**', 'space:audit'] } });
    ok({ snapshot: { provider: 'lvm', size: '10%ORIGIN', mountDir: '/run/ebr-lvm', staging: './s', copyFallback: ['space:audit'] } });
    ok({ snapshot: { provider: 'zfs', staging: './s', copyFallback: 'space:audit' } });
    ok({ target: { type: 'dir', path: './b' } });
    const c = parseConfig(configWith({}), file, {});
    expect(c.instances.demo!.snapshot.provider).toBe('copy');
  });

  it('checks the values too, at load, naming the key', () => {
    const err = refusal(configWith({ snapshot: { provider: 'btrfs', dir: 'relative/dir' } }));
    expect(err.message).toMatch(/instances\.demo\.snapshot\.dir is "relative\/dir", which is not allowed/);
    expect(err.hint).toMatch(/absolute path/);
    expect(refusal(configWith({ snapshot: { provider: 'lvm', size: 'lots' } })).message).toMatch(/instances\.demo\.snapshot\.size is "lots"/);
    expect(refusal(configWith({ target: { type: 'tar', path: 7 } })).message).toMatch(/instances\.demo\.target\.path is 7/);
  });

  it('an unknown provider or target type is still named as such', () => {
    expect(refusal(configWith({ snapshot: { provider: 'floppy', staging: './s' } })).message).toMatch(/snapshot\.provider is "floppy"/);
    expect(refusal(configWith({ target: { type: 'floppy', path: '/dev/fd0' } })).message).toMatch(/target\.type is "floppy"/);
    expect(refusal(configWith({ target: { type: 'constructor', path: '/x' } })).message).toMatch(/target\.type is "constructor"/);
  });
});

describe('config: compression and encryption', () => {
  const withKeys = (extra: Record<string, unknown>) => {
    const doc = configWith({});
    Object.assign(doc.instances.demo, extra);
    return doc;
  };
  it('refuses a level the compression does not take, naming the key, for every command (at load)', () => {
    const lz4 = refusal(withKeys({ compression: { type: 'lz4', level: 1 } }));
    expect(lz4.code).toBe('config');
    expect(lz4.message).toMatch(/instances\.demo\.compression\.level is set, but lz4 has no levels/);
    const zstd = refusal(withKeys({ compression: { type: 'zstd', level: 40 } }));
    expect(zstd.message).toMatch(/instances\.demo\.compression\.level is 40; zstd takes -?\d+ to \d+/);
    expect(refusal(withKeys({ compression: { type: 'brotli' } })).context.key).toBe('instances.demo.compression.type');
  });
  it('takes exactly one of keyFile and key, and never shows the key in the refusal', () => {
    const both = refusal(withKeys({ encryption: { keyFile: './k', key: 'secret-key-value-123' } }));
    expect(both.hint).toMatch(/exactly one of keyFile and key/);
    expect(`${both.message} ${both.hint}`).not.toContain('secret-key-value-123');
    expect(refusal(withKeys({ encryption: {} })).hint).toMatch(/exactly one of keyFile and key/);
    expect(refusal(withKeys({ encryption: { keyfile: './k' } })).message).toMatch(/keyfile/);
    const password = refusal({ instances: { demo: { adapter: 'postgres', postgres: { host: '/run/postgresql', password: 12345678 }, target: { type: 'tar', path: './b' } } } });
    expect(`${password.message} ${password.hint}`).not.toContain('12345678');
  });
});
