import type { Command } from 'commander';
import pino from 'pino';
import { runDaemon, type DaemonEvent } from '../../schedule/daemon.js';
import { cliOf } from '../context.js';

/** Events that a log shipper should raise; the rest are info. */
const errors = new Set<DaemonEvent['event']>(['backup-failed', 'logs-failed', 'drill-failed', 'status-failed']);

export function register(program: Command): void {
  program
    .command('daemon')
    .description('run the backups, log syncs and drills on the schedules in the config, with retention; one JSON line per event; stops on SIGINT/SIGTERM')
    .option('--listen <host:port>', 'serve /metrics (Prometheus) and a status page at / on this address (host default 127.0.0.1, e.g. 127.0.0.1:9187)')
    .action(async (opts: { listen?: string }, cmd: Command) => {
      const cli = cliOf(cmd);
      const catalog = await cli.catalog();
      // pino: one JSON line per event on stdout, written synchronously so no line is lost when the daemon stops.
      const logger = pino({ base: { pid: process.pid }, timestamp: pino.stdTimeFunctions.isoTime, messageKey: 'msg' }, pino.destination({ dest: 1, sync: true }));
      await runDaemon({
        config: cli.config(),
        catalog,
        signal: cli.signal,
        ...(opts.listen ? { listen: opts.listen } : {}),
        log: (e) => (errors.has(e.event) ? logger.error(e, e.event) : logger.info(e, e.event)),
      });
      logger.flush();
    });
}
