/**
 * Knowing it works: `ebr status` shows each instance's last backup with its age against the schedule,
 * the failures since and the last drill, and rewrites the Prometheus textfile; `ebr daemon --listen`
 * serves /metrics with the same gauges and a status page that, in a real headless Chromium, shows a
 * failed backup as failed with its error. The daemon logs one pino JSON line per event.
 */
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort, runEbr, spawnEbr, tempDir, waitFor } from '../helpers/env.js';
import { makeInstance, type TestInstance } from '../sqlite/sqlite-instance.js';

const chromium = '/usr/bin/chromium';
const t = tempDir('ebr-status-');
let inst: TestInstance;
let good: string;
const ebr = (...args: string[]) => runEbr(['--config', inst.config, ...args]);

interface Status {
  instances: Array<{
    instance: string;
    schedule: string;
    scheduleEveryS: number;
    overdue: boolean;
    lastBackup: { id: string; ageS: number } | null;
    failures: Array<{ id: string; error: string }>;
    lastDrill: { status: string; backupId: string } | null;
    lastPassedDrillAt: string | null;
  }>;
}

beforeAll(async () => {
  inst = makeInstance(t.dir, { maxBlockMs: 300 });
  writeFileSync(inst.config, `${readFileSync(inst.config, 'utf8')}    schedule: "0 2 * * *"\nstatus: { textfile: ./var/metrics/ebr.prom }\n`);
  const b = await ebr('--json', 'backup');
  expect(b.code, b.stderr).toBe(0);
  good = (JSON.parse(b.stdout) as { backupId: string }).backupId;
  const d = await ebr('drill', '--quiet');
  expect(d.code, d.stderr).toBe(0);
  // A backup that fails after the good one: its window is held past maxBlockMs.
  const f = await runEbr(['--config', inst.config, 'backup'], { env: { EBR_FAULT_HOLD_WINDOW_MS: '3000' } });
  expect(f.code).toBe(1);
});

afterAll(() => t.cleanup());

describe('ebr status', () => {
  it('shows the last backup and its age against the schedule, the failure since, and the last drill', async () => {
    const r = await ebr('--json', 'status');
    expect(r.code, r.stderr).toBe(0);
    const s = (JSON.parse(r.stdout) as Status).instances[0]!;
    expect(s.instance).toBe('t');
    expect(s.lastBackup?.id).toBe(good);
    expect(s.lastBackup!.ageS).toBeGreaterThanOrEqual(0);
    expect(s.scheduleEveryS).toBe(86400);
    expect(s.overdue).toBe(false);
    expect(s.failures).toHaveLength(1);
    expect(s.failures[0]!.error).toMatch(/maxBlockMs/);
    expect(s.lastDrill).toMatchObject({ status: 'passed', backupId: good });
    expect(s.lastPassedDrillAt).toBeTruthy();
    const text = await ebr('status');
    expect(text.stdout).toMatch(/LAST DRILL/);
    expect(text.stdout).toMatch(new RegExp(`t\\s+${good}`));
    expect(text.stdout).toMatch(/passed .* ago/);
    expect(text.stdout).toMatch(/1, last \S+: .*maxBlockMs/);
  });

  it('rewrites the Prometheus textfile with the gauges', () => {
    const prom = readFileSync(path.join(t.dir, 'var/metrics/ebr.prom'), 'utf8');
    expect(prom).toMatch(/^# TYPE ebr_last_backup_age_seconds gauge$/m);
    expect(prom).toMatch(/^ebr_backup_failures_since_success\{instance="t"\} 1$/m);
    expect(prom).toMatch(/^ebr_last_drill_success\{instance="t"\} 1$/m);
    expect(prom).toMatch(/^ebr_backup_overdue\{instance="t"\} 0$/m);
    expect(prom).toMatch(/^ebr_last_backup_timestamp_seconds\{instance="t"\} \d+(\.\d+)?$/m);
  });

  it('says a backup is overdue when none ended within two schedule intervals', async () => {
    const other = makeInstance(path.join(t.dir, 'never'));
    writeFileSync(other.config, `${readFileSync(other.config, 'utf8')}    schedule: "*/5 * * * *"\n`);
    const s = (JSON.parse((await runEbr(['--config', other.config, '--json', 'status'])).stdout) as Status).instances[0]!;
    expect(s.lastBackup).toBeNull();
    expect(s.overdue).toBe(true);
    expect(s.lastDrill).toBeNull();
  });

  it('judges overdue by the most frequent of schedule, incrSchedule and diffSchedule', async () => {
    const other = makeInstance(path.join(t.dir, 'incr-only'));
    writeFileSync(other.config, `${readFileSync(other.config, 'utf8')}    schedule: "0 2 * * 0"\n    incrSchedule: "*/5 * * * *"\n`);
    const s = (JSON.parse((await runEbr(['--config', other.config, '--json', 'status'])).stdout) as Status & { instances: Array<{ scheduleEveryS: number; schedule: string }> }).instances[0]!;
    expect(s.schedule).toBe('*/5 * * * *');
    expect(s.scheduleEveryS).toBe(300);
    expect(s.overdue).toBe(true);
  });
});

describe('ebr daemon --listen', () => {
  let port: number;
  let daemon: ReturnType<typeof spawnEbr>;
  let out = '';
  let exited: Promise<number | null>;

  beforeAll(async () => {
    port = await freePort();
    // Only the port: the host defaults to 127.0.0.1.
    daemon = spawnEbr(['--config', inst.config, 'daemon', '--listen', String(port)]);
    daemon.stdout!.on('data', (b) => (out += b));
    exited = new Promise((r) => daemon.on('exit', (c) => r(c)));
    // Both lines: pino writes them asynchronously, so "scheduled" may come after "listening".
    await waitFor('the daemon to listen and schedule', () => (/"event":"listening"/.test(out) && /"event":"scheduled"/.test(out) ? true : undefined), 20_000, 100);
  });

  afterAll(async () => {
    daemon.kill('SIGTERM');
    await exited;
  });

  it('logs one pino JSON line per event, with the instance', () => {
    const lines = out.split('\n').filter(Boolean).map((l) => JSON.parse(l) as { level: number; time: string; event: string; instance: string; url?: string });
    const listening = lines.find((l) => l.event === 'listening')!;
    expect(listening.url).toBe(`http://127.0.0.1:${port}/`);
    expect(listening.level).toBe(30);
    expect(lines.find((l) => l.event === 'scheduled')).toMatchObject({ instance: 't', schedule: '0 2 * * *' });
  });

  it('serves /metrics with the gauges, in the Prometheus text format', async () => {
    const r = await fetch(`http://127.0.0.1:${port}/metrics`);
    expect(r.status).toBe(200);
    expect(r.headers.get('content-type')).toMatch(/^text\/plain; version=0\.0\.4/);
    const body = await r.text();
    for (const g of ['ebr_last_backup_age_seconds', 'ebr_last_backup_block_window_seconds', 'ebr_last_drill_success', 'ebr_backup_failures_since_success', 'ebr_backup_overdue']) {
      expect(body).toMatch(new RegExp(`^${g}\\{instance="t"\\} `, 'm'));
    }
  });

  it('shows the failed backup on the status page, in headless Chromium', async () => {
    expect(existsSync(chromium), 'chromium is missing: apt-get install chromium (bash test/provision.sh does)').toBe(true);
    const profile = mkdtempSync(path.join(os.tmpdir(), 'ebr-chromium-'));
    try {
      const dom = await new Promise<string>((resolve, reject) =>
        execFile(
          chromium,
          ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run', `--user-data-dir=${profile}`, '--dump-dom', `http://127.0.0.1:${port}/`],
          { timeout: 90_000, maxBuffer: 16 << 20 },
          (err, stdout, stderr) => (err ? reject(new Error(`chromium failed: ${err.message}\n${stderr}`)) : resolve(stdout)),
        ),
      );
      // What the page's script drew, not the embedded data: the rows exist only once it ran.
      const failedRow = /<tr class="failed" data-backup="([^"]+)">(.*?)<\/tr>/s.exec(dom);
      expect(failedRow, dom.slice(0, 2000)).not.toBeNull();
      expect(failedRow![2]).toMatch(/<td>FAILED<\/td>/);
      expect(failedRow![2]).toMatch(/maxBlockMs/);
      expect(dom).toMatch(new RegExp(`<tr class="complete" data-backup="${good}">`));
      expect(dom).toMatch(/data-fact="failures">1 failed backup\(s\) since/);
      expect(dom).toMatch(/data-fact="drill">last drill PASSED/);
      expect(dom).toMatch(/<svg[^>]*data-plot="block window"/);
      expect(dom).toMatch(/<svg[^>]*data-plot="backup duration"/);
      expect(dom).toMatch(/<polyline/);
    } finally {
      rmSync(profile, { recursive: true, force: true });
    }
  });
});
