/** Which spaces of a backup a restore or an export takes: every one, or the ones named with --partial. */
import type { Manifest } from '../archive/manifest.js';
import { EbrError } from '../errors.js';

/**
 * Every space, or the named ones (each once, in the order given). An unknown name is refused with the
 * known ones; with `refuseCritical` (a restore: the server cannot start on a critical space alone), so
 * is a critical one. An export replaces nothing, so it may take any space.
 */
export function chooseSpaces(manifest: Manifest, partial: string[] | undefined, ctx: Record<string, unknown>, o: { refuseCritical: boolean }): string[] {
  const all = manifest.spaces.map((s) => s.name);
  if (!partial?.length) return all;
  const unknown = partial.filter((p) => !all.includes(p));
  if (unknown.length) {
    throw new EbrError('unknownSpace', `backup ${manifest.backupId} has no space named ${unknown.join(', ')}`, {
      hint: `known spaces: ${all.join(', ')}`,
      context: { ...ctx, space: unknown[0] },
    });
  }
  const critical = o.refuseCritical ? manifest.spaces.filter((s) => s.critical && partial.includes(s.name)).map((s) => s.name) : [];
  if (critical.length) {
    throw new EbrError('criticalSpace', `space ${critical.join(', ')} is critical: the server cannot start without it, so it is never restored on its own`, {
      hint: `restore the whole instance (leave out --partial), or name only non-critical spaces: ${manifest.spaces.filter((s) => !s.critical).map((s) => s.name).join(', ') || '(none)'}`,
      context: { ...ctx, space: critical[0] },
    });
  }
  return [...new Set(partial)];
}
