/** ioLimitMBps and ioPriority in ebr.yaml: the defaults, what is accepted, and bad values named with the fix. */
import { describe, expect, it } from 'vitest';
import { parseConfig } from '../../src/config/load.js';
import { EbrError } from '../../src/errors.js';

const file = '/etc/ebr/ebr.yaml';

const configWith = (extra: Record<string, unknown>) => ({
  instances: { demo: { adapter: 'sqlite', sqlite: { main: './shop.db' }, target: { type: 'tar', path: './backups' }, ...extra } },
});

function refusal(extra: Record<string, unknown>): EbrError {
  try {
    parseConfig(configWith(extra), file, {});
  } catch (err) {
    expect(err).toBeInstanceOf(EbrError);
    return err as EbrError;
  }
  throw new Error('the config was accepted');
}

describe('config: the I/O policy', () => {
  it('defaults to the idle class and no rate limit', () => {
    const inst = parseConfig(configWith({}), file, {}).instances.demo!;
    expect(inst.ioPriority).toBe('idle');
    expect(inst.ioLimitMBps).toBeUndefined();
  });

  it('takes a rate limit in MB/s (fractions too) and each priority', () => {
    for (const ioPriority of ['idle', 'best-effort', 'normal']) {
      const inst = parseConfig(configWith({ ioLimitMBps: 12.5, ioPriority }), file, {}).instances.demo!;
      expect(inst).toMatchObject({ ioLimitMBps: 12.5, ioPriority });
    }
  });

  it.each([
    [{ ioLimitMBps: 0 }, 'instances.demo.ioLimitMBps is 0, which is not allowed', /positive number of MB per second, e\.g\. 50; leave it out for no limit/],
    [{ ioLimitMBps: -5 }, 'instances.demo.ioLimitMBps is -5, which is not allowed', /positive number of MB per second/],
    [{ ioLimitMBps: '50MB' }, 'instances.demo.ioLimitMBps is "50MB", which is not allowed', /a number of MB per second, e\.g\. 50/],
    [{ ioLimitMBps: 5e6 }, 'instances.demo.ioLimitMBps is 5000000, which is not allowed', /at most 1000000/],
    [{ ioPriority: 'low' }, 'instances.demo.ioPriority is "low", which is not allowed', /one of idle, best-effort, normal/],
    [{ ioPriority: 3 }, 'instances.demo.ioPriority is 3, which is not allowed', /idle.*best-effort.*normal/],
  ])('refuses %j, naming the key and the fix', (extra, message, hint) => {
    const err = refusal(extra);
    expect(err.code).toBe('config');
    expect(err.exitCode).toBe(2);
    expect(err.message).toBe(`${file}: ${message}`);
    expect(err.hint).toMatch(hint);
    expect(err.context.key).toBe(`instances.demo.${Object.keys(extra)[0]}`);
  });

  it('refuses a misspelt key, listing the I/O keys among those an instance takes', () => {
    const err = refusal({ ioLimitMbps: 50 });
    expect(err.message).toBe(`${file}: unknown key instances.demo.ioLimitMbps`);
    expect(err.hint).toMatch(/ioLimitMBps, ioPriority/);
    expect(err.exitCode).toBe(2);
  });
});
