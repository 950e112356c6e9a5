import { Option, type Command } from 'commander';
import type { DbmsAdapter, LogCommands } from '../../adapter-api.js';
import type { InstanceConfig } from '../../config/load.js';
import { EbrError } from '../../errors.js';
import { adapters } from '../../registry.js';
import { adapterOf, instanceContext } from '../../workflow/context.js';
import { cliOf, type Cli } from '../context.js';
import { table } from '../format.js';
import { purgeLogArchive } from '../../schedule/retention.js';
import { purgeLines } from './retention.js';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { logAgentSchema } from '../../config/schema.js';
import { shellQuote } from '../../util/ebr-self.js';
import { logStoreOf } from '../../workflow/context.js';

type Verb = keyof Omit<LogCommands, 'aliases' | 'summary'>;

/**
 * `ebr log push|get|sync|list`: the instance's log archive, whatever its kind. What each verb does is
 * the adapter's (logs in adapter-api.ts); the names users already put into a server's configuration
 * (`ebr wal push` in archive_command, `ebr binlog sync` in cron) stay as aliases of the same verbs,
 * restricted to instances whose adapter declares that alias.
 */
export function register(program: Command): void {
  addVerbs(program.command('log').description("the instance's log archive, which roll-forward and point-in-time restores read"));
  const seen = new Set<string>(['log']);
  for (const adapter of adapters()) {
    for (const alias of adapter.logs?.aliases ?? []) {
      if (seen.has(alias)) continue;
      seen.add(alias);
      addVerbs(program.command(alias).description(`${adapter.logs!.summary} (the same as \`ebr log\`)`), alias);
    }
  }
}

function addVerbs(group: Command, alias?: string): void {
  const instanceOption = ['-i, --instance <name>', 'instance from the config (optional when there is one)'] as const;
  group
    .command('push')
    .description("store a finished log the server hands over (archive_command); quiet on success, non-zero exit when it is not stored")
    .option(...instanceOption)
    .argument('<path>', 'the log file (PostgreSQL: %p)')
    .action(async (file: string, opts: { instance?: string }, cmd: Command) => {
      const { cli, instance, logs } = resolve(cmd, opts, 'push', alias);
      const outcome = await logs.push!(instanceContext(cli.config(), instance), file, cli.signal);
      if (cli.opts.json) cli.print({ pushed: file, outcome }, () => '');
    });
  group
    .command('get')
    .description('fetch one log by name, digest checked, into a path (restore_command); exit 1 when the archive does not have it')
    .option(...instanceOption)
    .argument('<name>', 'the log name (PostgreSQL: %f)')
    .argument('<dest>', 'where to put it (PostgreSQL: %p)')
    .action(async (name: string, dest: string, opts: { instance?: string }, cmd: Command) => {
      const { cli, instance, logs } = resolve(cmd, opts, 'get', alias);
      const found = await logs.get!(instanceContext(cli.config(), instance), name, dest, cli.signal);
      if (cli.opts.json) cli.print({ name, found }, () => '');
      // Not found is how recovery learns it reached the end of the archive: a plain non-zero exit, no message.
      if (!found) process.exitCode = 1;
    });
  group
    .command('sync')
    .description('copy every log the server has finished and the archive lacks (run from cron or logSchedule between backups)')
    .option(...instanceOption)
    .action(async (opts: { instance?: string }, cmd: Command) => {
      const { cli, instance, adapter, logs } = resolve(cmd, opts, 'sync', alias);
      const r = await logs.sync!(instanceContext(cli.config(), instance), cli.signal);
      const kind = adapter.capabilities.logArchive!;
      cli.print({ instance: instance.name, kind, ...r }, () =>
        [
          `archived ${r.stored.length} ${kind} log(s)${r.stored.length ? `: ${r.stored.join(', ')}` : ''}; ${r.present.length} already archived; ${r.current ?? '(none)'} is being written`,
          ...(r.gaps.length ? [`warning: the server removed ${r.gaps.join(', ')} before they were archived; --until cannot cross that gap`] : []),
        ].join('\n'),
      );
    });
  group
    .command('purge')
    .description('remove every archived log no retained backup needs (retention does this after each backup); refused for adapters that cannot tell')
    .option(...instanceOption)
    .option('--dry-run', 'change nothing; list what would be removed and why')
    .action(async (opts: { instance?: string; dryRun?: boolean }, cmd: Command) => {
      const cli = cliOf(cmd);
      const instance = cli.instance(opts.instance);
      if (alias && !(adapterOf(instance).logs?.aliases ?? []).includes(alias)) {
        throw new EbrError('usage', `instance ${instance.name} (adapter ${instance.adapter}) does not keep what \`ebr ${alias}\` handles`, {
          hint: `use \`ebr log purge --instance ${instance.name}\``,
          context: { instance: instance.name },
        });
      }
      const catalog = await cli.catalog();
      const r = await purgeLogArchive(catalog, instance, { dryRun: opts.dryRun === true, signal: cli.signal });
      cli.print(r, () => [...(opts.dryRun ? r.removed.map((x) => `would remove ${x.name}: ${x.why}`) : []), ...purgeLines(r)].join('\n'));
    });
  group
    .command('agent')
    .description('store what archive_command spooled, resident, in parallel (docs/log-agent.md); archive_command starts one when none runs')
    .option(...instanceOption)
    .option('--once', 'store what is spooled now, then exit')
    .option('--idle-exit <ms>', 'exit after this long with nothing spooled (default: run until stopped)')
    .option('--status', 'say whether an agent runs, what is spooled and what it could not store')
    .option('--print-command', 'print the archive_command that spools for this agent')
    .addOption(new Option('--started-by-push', 'started by archive_command: exit after logAgent.idleExitMs idle').hideHelp())
    .action(async (opts: { instance?: string; once?: boolean; idleExit?: string; status?: boolean; printCommand?: boolean; startedByPush?: boolean }, cmd: Command) => {
      await agentCommand(cmd, opts, alias);
    });
  group
    .command('list')
    .description('what the log archive holds, which is what --until can reach')
    .option(...instanceOption)
    .action(async (opts: { instance?: string }, cmd: Command) => {
      const { cli, instance, adapter, logs } = resolve(cmd, opts, 'list', alias);
      const listing = await logs.list!(instanceContext(cli.config(), instance), cli.signal);
      cli.print({ instance: instance.name, kind: adapter.capabilities.logArchive, logs: listing.json }, () => table(listing.columns, listing.rows));
    });
}

function resolve(cmd: Command, opts: { instance?: string }, verb: Verb, alias: string | undefined): { cli: Cli; instance: InstanceConfig; adapter: DbmsAdapter; logs: LogCommands } {
  const cli = cliOf(cmd);
  const instance = cli.instance(opts.instance);
  const adapter = adapterOf(instance);
  const logs = adapter.logs;
  const command = `ebr ${alias ?? 'log'} ${verb}`;
  if (!adapter.capabilities.logArchive || !logs) {
    throw new EbrError('usage', `instance ${instance.name} (adapter ${instance.adapter}) keeps no log archive`, {
      hint: `name an instance whose adapter archives logs with --instance (${withLogs()})`,
      context: { instance: instance.name },
    });
  }
  if (alias && !(logs.aliases ?? []).includes(alias)) {
    throw new EbrError('usage', `instance ${instance.name} (adapter ${instance.adapter}) keeps ${adapter.capabilities.logArchive} logs, not what \`ebr ${alias}\` handles`, {
      hint: `use \`ebr log ${verb} --instance ${instance.name}\`, or name an instance whose adapter has \`ebr ${alias}\` (${withAlias(alias)})`,
      context: { instance: instance.name },
    });
  }
  if (!logs[verb]) {
    const verbs = (['push', 'get', 'sync', 'list'] as const).filter((v) => logs[v]);
    throw new EbrError('usage', `${command}: the ${instance.adapter} adapter's ${adapter.capabilities.logArchive} archive has no ${verb}`, {
      hint: `its verbs are ${verbs.join(', ')}; ${logs.summary}`,
      context: { instance: instance.name },
    });
  }
  return { cli, instance, adapter, logs };
}

function withLogs(): string {
  return adapters().filter((a) => a.logs).map((a) => `${a.vendor}: ${a.capabilities.logArchive}`).join(', ');
}
function withAlias(alias: string): string {
  return adapters().filter((a) => a.logs?.aliases?.includes(alias)).map((a) => a.vendor).join(', ');
}

/** `ebr log agent`: the spool's settings from the instance's logAgent, the store its adapter's push (or the log store) and get. */
async function agentCommand(cmd: Command, opts: { instance?: string; once?: boolean; idleExit?: string; status?: boolean; printCommand?: boolean; startedByPush?: boolean }, alias: string | undefined): Promise<void> {
  const cli = cliOf(cmd);
  const instance = cli.instance(opts.instance);
  const adapter = adapterOf(instance);
  const logs = adapter.logs;
  const kind = adapter.capabilities.logArchive;
  if (!kind || !logs) {
    throw new EbrError('usage', `instance ${instance.name} (adapter ${instance.adapter}) keeps no log archive`, {
      hint: `name an instance whose adapter archives logs with --instance (${withLogs()})`,
      context: { instance: instance.name },
    });
  }
  if (alias && !(logs.aliases ?? []).includes(alias)) {
    throw new EbrError('usage', `instance ${instance.name} (adapter ${instance.adapter}) keeps ${kind} logs, not what \`ebr ${alias}\` handles`, {
      hint: `use \`ebr log agent --instance ${instance.name}\``,
      context: { instance: instance.name },
    });
  }
  const config = cli.config();
  const settings = instance.logAgent ?? logAgentSchema.parse({});
  const spool = settings.spool ?? path.join(path.dirname(config.catalog), 'log-spool', instance.name);
  if (opts.printCommand) {
    const entry = fileURLToPath(new URL('../../logs/agent-push.js', import.meta.url));
    const line = [process.execPath, entry, '--config', config.file, '--spool', spool, logs.aliases?.[0] ?? 'log', 'push', '--instance', instance.name].map(shellQuote).join(' ') + ' %p';
    cli.print({ instance: instance.name, spool, archiveCommand: line }, () => line);
    return;
  }
  const { agentStatus, runLogAgent } = await import('../../logs/agent.js');
  if (opts.status) {
    const st = agentStatus(spool);
    cli.print(st, () =>
      [
        `${st.agent ? `a log agent runs (pid ${st.agent})` : 'no log agent runs'} for ${spool}; ${st.queued.length} log(s) spooled${st.queued.length ? `: ${st.queued.slice(0, 5).join(', ')}${st.queued.length > 5 ? ' …' : ''}` : ''}`,
        ...st.errors.map((e) => `cannot store ${e.name}: ${e.message}`),
      ].join('\n'),
    );
    if (st.errors.length) process.exitCode = 1;
    return;
  }
  const idleExit = opts.idleExit !== undefined ? Number(opts.idleExit) : opts.startedByPush ? settings.idleExitMs : 0;
  if (!Number.isInteger(idleExit) || idleExit < 0) {
    throw new EbrError('usage', `--idle-exit ${opts.idleExit} is not a number of milliseconds`, { hint: 'give a whole number, e.g. --idle-exit 60000', context: { instance: instance.name } });
  }
  const ctx = instanceContext(config, instance);
  const store = logStoreOf(instance, kind);
  const stamp = () => new Date().toISOString();
  const r = await runLogAgent({
    spool,
    store: {
      put: logs.push ? (_name, file, signal) => logs.push!(ctx, file, signal) : (name, file, signal) => store.put(name, file, signal),
      get: (name, dest, signal) => store.get(name, dest, signal),
    },
    parallel: settings.parallel,
    pollMs: settings.pollMs,
    idleExitMs: idleExit,
    once: opts.once === true,
    ...(logs.sync && settings.syncEveryMs > 0
      ? {
          sync: {
            everyMs: settings.syncEveryMs,
            run: async (signal: AbortSignal) => {
              const s = await logs.sync!(ctx, signal);
              return `synced ${s.stored.length} ${kind} log(s)${s.stored.length ? `: ${s.stored.join(', ')}` : ''}`;
            },
          },
        }
      : {}),
    signal: cli.signal,
    log: (line) => process.stderr.write(`${stamp()} ebr: log agent ${instance.name}: ${line}\n`),
  });
  if (r.alreadyRunning !== undefined) {
    if (!opts.startedByPush) cli.print({ instance: instance.name, spool, alreadyRunning: r.alreadyRunning }, () => `a log agent already runs for ${spool} (pid ${r.alreadyRunning}); nothing to do`);
    return;
  }
  cli.print({ instance: instance.name, spool, ...r }, () => `stored ${r.stored.length} ${kind} log(s), ${r.identical.length} already archived${r.conflicts.length ? `; could not store ${r.conflicts.join(', ')} (see ebr log agent --status)` : ''}`);
  if (r.conflicts.length) process.exitCode = 1;
}
