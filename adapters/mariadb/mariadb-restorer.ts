/**
 * Chooses the restore: the whole server (into its own directories or --to DIR, rolled forward through
 * the binlog archive), some schemas into a directory of their own (--partial … --to DIR), or some
 * schemas into the running server (--partial without --to: online import).
 */
import type { InstanceContext, RestorePlan, Restorer } from '../../src/adapter-api.js';
import { EbrError } from '../../src/errors.js';
import type { MariadbSettings } from './mariadb-config.js';
import { serverSpace, systemSchemas } from './mariadb-discovery.js';
import { fullRestorer } from './mariadb-full-restore.js';
import { onlinePartialRestorer } from './mariadb-partial-restore.js';

export async function mariadbRestorer(instance: InstanceContext<MariadbSettings>, plan: RestorePlan): Promise<Restorer> {
  if (plan.mode === 'partial') {
    const refused = plan.requested.filter((r) => r === serverSpace || systemSchemas.includes(r) || plan.spaces.find((s) => s.name === r)?.critical);
    if (refused.length > 0) {
      throw new EbrError('criticalSpace', `${refused.join(', ')} ${refused.length > 1 ? 'belong' : 'belongs'} to the server itself and ${refused.length > 1 ? 'are' : 'is'} never restored on its own`, {
        hint: `restore the whole server, or name schemas: ${plan.spaces.filter((s) => !s.critical).map((s) => s.name).join(', ') || '(none)'}`,
        context: { instance: instance.name, backupId: plan.backupId, space: refused[0] },
      });
    }
    if (!plan.targetDir) return onlinePartialRestorer(instance, plan);
  }
  return fullRestorer(instance, plan, instance.logStore?.('binlog'));
}
