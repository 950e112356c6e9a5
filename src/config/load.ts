/** Finds, reads and validates ebr.yaml into one typed Config. Every error names the key and the fix. */
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import cron from 'node-cron';
import YAML from 'yaml';
import type { z } from 'zod';
import type { SnapshotSettings } from '../snapshot/snapshot-provider.js';
import { freezeSettingsOf } from '../snapshot/replica-settings.js';
import type { DbmsAdapter, MirrorContext } from '../adapter-api.js';
import type { TargetSettings } from '../archive/archive-target.js';
import type { CompressionSettings, EncryptionSettings } from '../archive/codec.js';
import { checkCompression } from '../archive/codec/index.js';
import { EbrError } from '../errors.js';
import { expandEnv } from './env.js';
import { configSchema } from './schema.js';
import type { IoPriority } from '../util/io-priority.js';
import type { RetentionRules } from '../schedule/retention-policy.js';
import { adapterNames, findAdapter, providerNames, snapshotSettingsOf, targetNames, targetSettingsOf } from '../registry.js';

export interface InstanceConfig {
  name: string;
  adapter: string;
  /** The adapter's own slice (`sqlite: {…}`), validated by the adapter's schema. */
  settings: unknown;
  snapshot: SnapshotSettings;
  target: TargetSettings;
  maxBlockMs: number;
  parallelStreams: number;
  /** Bytes per block of the block digests (incremental backups, delta restore); 0: none recorded. */
  blockSize: number;
  schedule?: string;
  incrSchedule?: string;
  diffSchedule?: string;
  logSchedule?: string;
  drillSchedule?: string;
  /** Which backups and logs retention keeps (src/schedule/retention-policy.ts). */
  retention?: RetentionRules;
  /** How streams are stored; absent: as they are. */
  compression?: CompressionSettings;
  /** The user's key for AES-256-GCM; absent: in clear. keyFile is resolved against the config's directory. */
  encryption?: EncryptionSettings;
  /** The stream phase's I/O policy (docs/io-policy.md): a rate limit in MB/s, and the I/O class. */
  ioLimitMBps?: number;
  ioPriority: IoPriority;
  /** `ebr log agent` settings (spool resolved); absent: the defaults, used only when the agent runs. */
  logAgent?: import('./schema.js').LogAgentSettings;
  /** `snapshot.provider: replica`: the replica to split, with the adapter's settings for it. */
  mirror?: MirrorContext;
  resolvePath(p: string): string;
}

export interface Config {
  file: string;
  catalog: string;
  instances: Record<string, InstanceConfig>;
  /** drill.scratch, resolved. */
  drill?: { scratch?: string };
  /** status.textfile, resolved. */
  status?: { textfile?: string };
  /** Consistency groups across instances, by name. */
  groups: Record<string, GroupConfig>;
}

export interface GroupConfig {
  name: string;
  instances: string[];
  maxBlockMs: number;
  schedule?: string;
}

/** --config, else $EBR_CONFIG, else ./ebr.yaml. */
export function configPath(explicit: string | undefined, env: NodeJS.ProcessEnv = process.env): string {
  return path.resolve(explicit ?? env.EBR_CONFIG ?? 'ebr.yaml');
}

export function loadConfig(file: string, env: NodeJS.ProcessEnv = process.env): Config {
  if (!existsSync(file)) {
    throw new EbrError('config', `no config file at ${file}`, {
      hint: 'run `ebr init` to write a starter ebr.yaml, or pass --config FILE (or set EBR_CONFIG)',
      context: { path: file },
    });
  }
  let doc: unknown;
  try {
    doc = YAML.parse(readFileSync(file, 'utf8'));
  } catch (err) {
    throw new EbrError('config', `${file} is not valid YAML: ${(err as Error).message}`, { hint: 'fix the YAML syntax at the line shown', context: { path: file } });
  }
  return parseConfig(doc, file, env);
}

export function parseConfig(doc: unknown, file: string, env: NodeJS.ProcessEnv = process.env): Config {
  const dir = path.dirname(file);
  const resolvePath = (p: string) => path.resolve(dir, p);
  const raw = check(configSchema, expandEnv(doc ?? {}, env), '', file);
  const instances: Record<string, InstanceConfig> = {};
  for (const [name, inst] of Object.entries(raw.instances)) {
    const at = `instances.${name}`;
    const adapter = findAdapter(inst.adapter);
    if (!adapter) {
      throw configError(file, `${at}.adapter`, inst.adapter, `one of ${adapterNames().join(', ')}`);
    }
    const snapshotKeys = snapshotSettingsOf(inst.snapshot.provider);
    if (!snapshotKeys) {
      throw configError(file, `${at}.snapshot.provider`, inst.snapshot.provider, `one of ${providerNames().join(', ')}`);
    }
    const targetKeys = targetSettingsOf(inst.target.type);
    if (!targetKeys) {
      throw configError(file, `${at}.target.type`, inst.target.type, `one of ${targetNames().join(', ')}`);
    }
    // Each provider and target declares its own keys: a typo is refused, not silently ignored.
    checkSection(targetKeys, inst.target, `${at}.target`, `a ${inst.target.type} target`, file);
    checkSection(snapshotKeys, inst.snapshot, `${at}.snapshot`, `a ${inst.snapshot.provider} snapshot`, file);
    const known = new Set(['adapter', 'snapshot', 'target', 'maxBlockMs', 'parallelStreams', 'schedule', 'logSchedule', 'drillSchedule', 'retention', 'compression', 'encryption', 'ioLimitMBps', 'ioPriority', 'logAgent', 'blockSize', 'incrSchedule', 'diffSchedule', adapter.vendor]);
    for (const key of Object.keys(inst)) {
      if (!known.has(key)) {
        throw new EbrError('config', `${file}: unknown key ${at}.${key}`, {
          hint: `an instance of adapter ${adapter.vendor} takes: ${[...known].join(', ')}`,
          context: { key: `${at}.${key}` },
        });
      }
    }
    for (const key of ['schedule', 'incrSchedule', 'diffSchedule', 'logSchedule', 'drillSchedule'] as const) {
      const expr = inst[key];
      if (expr !== undefined && !cron.validate(expr)) {
        throw new EbrError('config', `${file}: ${at}.${key} is ${JSON.stringify(expr)}, which is not a cron expression`, {
          hint: 'use five fields (minute hour day-of-month month day-of-week), e.g. "0 2 * * *" for 02:00 every day, or six with seconds first',
          context: { key: `${at}.${key}` },
        });
      }
    }
    if (inst.logSchedule !== undefined && !adapter.logs?.sync) {
      throw new EbrError('config', `${file}: ${at}.logSchedule is set, but the ${adapter.vendor} adapter has no log archive that ebr copies on a schedule`, {
        hint: adapter.capabilities.logArchive ? `the ${adapter.vendor} server pushes its logs itself (e.g. archive_command); remove logSchedule` : 'remove logSchedule',
        context: { key: `${at}.logSchedule` },
      });
    }
    const slice = (inst as Record<string, unknown>)[adapter.vendor];
    if (slice === undefined) {
      throw new EbrError('config', `${file}: ${at}.${adapter.vendor} is missing`, {
        hint: `an instance with adapter: ${adapter.vendor} needs its connection settings under the key ${adapter.vendor}; see config/${adapter.vendor}.yaml`,
        context: { key: `${at}.${adapter.vendor}` },
      });
    }
    const settings = check(adapter.configSchema, slice, `${at}.${adapter.vendor}`, file);
    const mirror = inst.snapshot.provider === 'replica' ? mirrorOf(adapter, inst.snapshot, slice, `${at}.snapshot`, file) : undefined;
    // A level the compression does not take is refused here, by every command, not first by a WAL push.
    checkCompression({ name, ...(inst.compression ? { compression: inst.compression } : {}) });
    instances[name] = {
      name,
      adapter: adapter.vendor,
      settings,
      snapshot: { ...inst.snapshot, ...(inst.snapshot.staging ? { staging: resolvePath(inst.snapshot.staging) } : {}) },
      target: { ...inst.target, ...(inst.target.path !== undefined ? { path: isUrl(inst.target.path) ? inst.target.path : resolvePath(inst.target.path) } : {}) },
      ...(mirror ? { mirror } : {}),
      maxBlockMs: inst.maxBlockMs,
      parallelStreams: inst.parallelStreams,
      blockSize: inst.blockSize,
      ...(inst.schedule ? { schedule: inst.schedule } : {}),
      ...(inst.incrSchedule ? { incrSchedule: inst.incrSchedule } : {}),
      ...(inst.diffSchedule ? { diffSchedule: inst.diffSchedule } : {}),
      ...(inst.logSchedule ? { logSchedule: inst.logSchedule } : {}),
      ...(inst.drillSchedule ? { drillSchedule: inst.drillSchedule } : {}),
      ...(inst.retention ? { retention: inst.retention } : {}),
      ...(inst.compression ? { compression: inst.compression } : {}),
      ...(inst.ioLimitMBps !== undefined ? { ioLimitMBps: inst.ioLimitMBps } : {}),
      ioPriority: inst.ioPriority,
      ...(inst.logAgent ? { logAgent: { ...inst.logAgent, ...(inst.logAgent.spool ? { spool: resolvePath(inst.logAgent.spool) } : {}) } } : {}),
      ...(inst.encryption ? { encryption: inst.encryption.keyFile !== undefined ? { keyFile: resolvePath(inst.encryption.keyFile) } : { key: inst.encryption.key! } } : {}),
      resolvePath,
    };
  }
  const groups: Record<string, GroupConfig> = {};
  for (const [name, g] of Object.entries(raw.groups ?? {})) {
    const at = `groups.${name}`;
    for (const i of g.instances) {
      if (!instances[i]) throw configError(file, `${at}.instances`, i, `one of the instances: ${Object.keys(instances).join(', ')}`);
    }
    if (new Set(g.instances).size !== g.instances.length) {
      throw new EbrError('config', `${file}: ${at}.instances names an instance twice`, { hint: 'list each member once', context: { key: `${at}.instances` } });
    }
    if (g.schedule !== undefined && !cron.validate(g.schedule)) {
      throw new EbrError('config', `${file}: ${at}.schedule is ${JSON.stringify(g.schedule)}, which is not a cron expression`, { hint: 'use five fields, e.g. "0 2 * * *"', context: { key: `${at}.schedule` } });
    }
    // Without its own bound the group's window may be as long as its tightest member allows.
    groups[name] = { name, instances: g.instances, maxBlockMs: g.maxBlockMs ?? Math.min(...g.instances.map((i) => instances[i]!.maxBlockMs)), ...(g.schedule ? { schedule: g.schedule } : {}) };
  }
  return {
    file,
    catalog: isUrl(raw.catalog) ? raw.catalog : resolvePath(raw.catalog),
    instances,
    groups,
    ...(raw.drill ? { drill: raw.drill.scratch !== undefined ? { scratch: resolvePath(raw.drill.scratch) } : {} } : {}),
    ...(raw.status ? { status: raw.status.textfile !== undefined ? { textfile: resolvePath(raw.status.textfile) } : {} } : {}),
  };
}

/** The one instance named, or the only one when none is named. */
export function pickInstance(config: Config, name: string | undefined): InstanceConfig {
  const names = Object.keys(config.instances);
  if (name === undefined) {
    if (names.length === 1) return config.instances[names[0]!]!;
    throw new EbrError('usage', `${config.file} has ${names.length} instances; say which one with --instance`, {
      hint: `known instances: ${names.join(', ')}`,
    });
  }
  const inst = config.instances[name];
  if (!inst) {
    throw new EbrError('unknownInstance', `no instance named ${name} in ${config.file}`, { hint: `known instances: ${names.join(', ')}` });
  }
  return inst;
}

/** A value as an error may show it: never one under a key that can hold a secret (a password, an encryption key). */
function shownValue(key: string, value: unknown): string {
  return /(^|\.)(encryption|password|secret|key|token)(\.|$)/i.test(key) ? '(a value not shown here: it may hold a secret)' : JSON.stringify(value);
}

function isUrl(p: string): boolean {
  return /^[a-z][a-z0-9+.-]*:\/\//i.test(p);
}

function configError(file: string, key: string, value: unknown, allowed: string): EbrError {
  return new EbrError('config', `${file}: ${key} is ${JSON.stringify(value)}, which is not allowed`, {
    hint: `${key} must be ${allowed}`,
    context: { key },
  });
}

/**
 * `snapshot.provider: replica`: the adapter must be able to split a mirror; the freeze provider's
 * section is checked like any snapshot section; the replica's connection is the adapter's own keys
 * over the instance's (a replica on the same host differs in port or socket only).
 */
function mirrorOf(adapter: DbmsAdapter, snapshot: SnapshotSettings, slice: unknown, at: string, file: string): MirrorContext {
  if (!adapter.mirror) {
    throw new EbrError('config', `${file}: ${at}.provider is replica, but the ${adapter.vendor} adapter cannot back up from a replica`, {
      hint: `use a provider that freezes the instance's own storage (${providerNames().filter((p) => p !== 'replica').join(', ')})`,
      context: { key: `${at}.provider` },
    });
  }
  const freeze = freezeSettingsOf(snapshot);
  const freezeKeys = freeze.provider === 'replica' ? undefined : snapshotSettingsOf(freeze.provider);
  if (!freezeKeys) throw configError(file, `${at}.freeze`, freeze.provider, `one of ${providerNames().filter((p) => p !== 'replica').join(', ')}`);
  checkSection(freezeKeys, freeze, `${at}.freeze`, `a ${freeze.provider} snapshot`, file);
  const replica = (snapshot.replica ?? {}) as Record<string, unknown>;
  const settings = check(adapter.configSchema, { ...(slice as Record<string, unknown>), ...replica }, `${at}.replica`, file);
  return { settings, resync: (snapshot.resync as MirrorContext['resync'] | undefined) ?? 'wait', maxLagMs: Number(snapshot.maxLagMs ?? 30_000) };
}

/**
 * A `target:` or `snapshot:` section against the schema its type registered: an unknown key is named
 * with the keys allowed (and the nearest one, for a typo); then the values are checked.
 */
function checkSection(schema: z.AnyZodObject, section: Record<string, unknown>, at: string, what: string, file: string): void {
  const allowed = Object.keys(schema.shape as Record<string, unknown>);
  for (const key of Object.keys(section)) {
    if (allowed.includes(key)) continue;
    const near = nearestKey(key, allowed);
    throw new EbrError('config', `${file}: unknown key ${at}.${key}; ${what} takes: ${allowed.join(', ')}`, {
      hint: near ? `did you mean ${near}? Otherwise remove ${key}` : `remove ${key}, or check its spelling against the keys above`,
      context: { key: `${at}.${key}` },
    });
  }
  check(schema, section, at, file);
}

/** The allowed key a typo most likely meant: at most two edits away, or differing only in case. */
function nearestKey(key: string, allowed: string[]): string | undefined {
  let best: { key: string; d: number } | undefined;
  for (const a of allowed) {
    const d = a.toLowerCase() === key.toLowerCase() ? 0 : editDistance(key.toLowerCase(), a.toLowerCase());
    if (d <= 2 && (!best || d < best.d)) best = { key: a, d };
  }
  return best?.key;
}

function editDistance(a: string, b: string): number {
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const cur = [i];
    for (let j = 1; j <= b.length; j++) cur[j] = Math.min(prev[j]! + 1, cur[j - 1]! + 1, prev[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1));
    prev = cur;
  }
  return prev[b.length]!;
}

function check<S extends z.ZodTypeAny>(schema: S, value: unknown, prefix: string, file: string): z.output<S> {
  const result = schema.safeParse(value);
  if (result.success) return result.data;
  const issue = result.error.issues[0]!;
  const key = [prefix, ...issue.path.map(String)].filter(Boolean).join('.');
  const got = issue.path.reduce<unknown>((v, k) => (v && typeof v === 'object' ? (v as Record<string, unknown>)[k as string] : undefined), value);
  let allowed = issue.message;
  if (issue.code === 'unrecognized_keys') {
    return fail(`unknown key ${[key, issue.keys[0]].filter(Boolean).join('.')}`, `remove it, or check its spelling; see \`ebr init\` for the keys ebr knows`);
  }
  if (issue.code === 'invalid_enum_value') allowed = `one of ${issue.options.join(', ')}`;
  if (issue.code === 'invalid_type' && issue.received === 'undefined') return fail(`${key} is missing`, `${key} is required (${issue.expected})`);
  return fail(`${key || '(root)'} is ${shownValue(key, got)}, which is not allowed`, `${key || 'the config'}: ${allowed}`);

  function fail(message: string, hint: string): never {
    throw new EbrError('config', `${file}: ${message}`, { hint, context: { key } });
  }
}
