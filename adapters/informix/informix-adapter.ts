/**
 * The Informix adapter: dbspaces as spaces, their chunks (byte ranges of files or raw devices) as
 * chunks, `onmode -c block` … `onmode -c unblock` as the window, the logical log backed up by ON-Bar,
 * and ON-Bar's external restore. Everything goes through the server's own tools (onstat, onmode,
 * onbar); nothing is loaded until a command needs it.
 */
import type { DbmsAdapter } from '../../src/adapter-api.js';
import { argv, commandStep, runTool } from './informix-commands.js';
import { informixConfigSchema, onconfigPath, type InformixSettings } from './informix-config.js';

export const informixAdapter: DbmsAdapter<InformixSettings> = {
  vendor: 'informix',
  capabilities: { blockSurvivesSession: true, onlinePartialRestore: true, logArchive: 'onbar', pointInTimeRestore: true },
  configSchema: informixConfigSchema as unknown as DbmsAdapter<InformixSettings>['configSchema'],

  async connect(instance, signal) {
    const { informixSession, serverStatus } = await import('./informix-session.js');
    return informixSession(instance, await serverStatus(instance.settings, { instance: instance.name, phase: 'connect' }, signal));
  },

  planBackup(instance) {
    const s = instance.settings;
    return [
      commandStep('connect', argv.status(s)),
      commandStep('discover', argv.dbspaces(s)),
      commandStep('discover', argv.logs(s)),
      commandStep('checkpoint', argv.checkpoint(s)),
      commandStep('acquire', argv.block(s)),
      commandStep('acquire', argv.logs(s)),
      commandStep('release', argv.unblock(s)),
      { phase: 'release', kind: 'read', text: `${onconfigPath(s, instance.resolvePath)}, ${instance.resolvePath(s.sqlhosts)}, ${instance.resolvePath(s.ixbar)} (into the backup's meta/)` },
      commandStep('after-release', argv.logBackup(s)),
    ];
  },

  async endBlock(instance, signal) {
    const { serverStatus } = await import('./informix-session.js');
    const ctx = { instance: instance.name, phase: 'release', host: instance.settings.server };
    const st = await serverStatus(instance.settings, ctx, signal);
    if (!st.up || !st.blocked) return 'none';
    await runTool(instance.settings, argv.unblock(instance.settings), { code: 'block', what: 'cannot unblock the server', context: ctx, signal });
    return 'ended';
  },

  logs: {
    summary: 'Informix logical logs, backed up by ON-Bar to its storage manager (`onbar -b -l`) after every backup and by `ebr log sync`; ebr keeps no copy of its own',
    async sync(instance, signal) {
      const s = instance.settings;
      await runTool(s, argv.logSync(s), { code: 'logArchive', what: 'ON-Bar could not back up the logical logs', context: { instance: instance.name, phase: 'log-sync', host: s.server }, signal });
      return { stored: [], present: [], gaps: [] };
    },
  },

  async restorer(instance, plan) {
    const { informixRestorer } = await import('./informix-restorer.js');
    return informixRestorer(instance, plan);
  },
};
