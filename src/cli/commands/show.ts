import type { Command } from 'commander';
import type { StoredCodec } from '../../archive/codec.js';
import { findBackup, phasesOf } from '../../catalog/backups.js';
import { discoveryOf, membersOf } from '../../catalog/discovery.js';
import { listRestores } from '../../catalog/restores.js';
import { describeCodec, streamsOf } from '../../catalog/streams.js';
import { cliOf } from '../context.js';
import { bytes, ms, table } from '../format.js';

export function register(program: Command): void {
  program
    .command('show')
    .description('one backup in detail: phases, block window, log positions, spaces')
    .argument('[backup-id]', 'backup id, or latest', 'latest')
    .option('-i, --instance <name>', 'instance, for latest')
    .action(async (id: string, opts: { instance?: string }, cmd: Command) => {
      const cli = cliOf(cmd);
      const cat = await cli.catalog();
      const b = findBackup(cat, id, opts.instance);
      const phases = phasesOf(cat, b.id);
      const discovery = discoveryOf(cat, b.id);
      const members = new Map(membersOf(cat, b.id).map((m) => [m.name, m]));
      const spaces = new Map<string, { name: string; kind: string; critical: boolean; chunks: number; bytes: number; storedBytes?: number; placement?: unknown }>();
      for (const d of discovery) {
        const s = spaces.get(d.space) ?? { name: d.space, kind: d.space_kind, critical: d.critical === 1, chunks: 0, bytes: 0 };
        s.chunks++;
        s.bytes += members.get(d.chunk)?.size ?? d.size;
        spaces.set(d.space, s);
      }
      const restores = listRestores(cat, { backupId: b.id });
      const codec = b.codec ? (JSON.parse(b.codec) as StoredCodec) : null;
      const streams = new Map(streamsOf(cat, b.id).map((r) => [r.space, r]));
      const steps = b.window_steps ? (JSON.parse(b.window_steps) as Record<string, number>) : {};
      const details = b.meta ? (JSON.parse(b.meta) as Record<string, unknown>) : {};
      // A split mirror's figures (adapters' afterRelease): how long the replica was split and caught up.
      const group = details.group as { id: string; name: string; members: string[]; instant?: string } | undefined;
      const mirror = details.mirror as { replica?: string; splitMs?: number; resyncMs?: number; backlogBytes?: number; resync?: string } | undefined;
      const doc = {
        id: b.id,
        instance: b.instance,
        vendor: b.vendor,
        status: b.status,
        removedAt: b.removed_at,
        phase: b.phase,
        startedAt: b.started_at,
        finishedAt: b.finished_at,
        blockWindowMs: b.block_window_ms,
        windowSteps: steps,
        log: { start: b.log_start, end: b.log_end, timeline: b.timeline },
        snapshotProvider: b.snapshot_provider,
        ...(mirror ? { mirror } : {}),
        ...(group ? { group } : {}),
        target: b.target_type,
        location: b.location,
        bytes: b.bytes,
        storedBytes: b.stored_bytes,
        codec,
        members: b.members,
        runner: { host: b.runner_host, pid: b.runner_pid },
        rebuiltAt: b.rebuilt_at,
        server: b.server ? JSON.parse(b.server) : null,
        error: b.error ? JSON.parse(b.error) : null,
        phases: phases.map((p) => ({ phase: p.phase, startedAt: p.started_at, endedAt: p.ended_at, outcome: p.outcome, durationMs: p.duration_ms })),
        spaces: [...spaces.values()].map((s) => {
          const st = streams.get(s.name);
          return { ...s, ...(st?.stored_bytes != null ? { storedBytes: st.stored_bytes } : {}), ...(st?.placement ? { placement: JSON.parse(st.placement) as unknown } : {}) };
        }),
        restores: restores.map((r) => ({ id: r.id, mode: r.mode, targetDir: r.target_dir, startedAt: r.started_at, finishedAt: r.finished_at, status: r.status, step: r.step, outcome: r.outcome })),
      };
      cli.print(doc, () => {
        const err = doc.error as { message?: string; hint?: string } | null;
        return [
          `backup ${b.id}  ${b.status}${b.status !== 'complete' ? ` (phase ${b.phase})` : ''}${b.rebuilt_at ? ' (rebuilt from archive)' : ''}${b.removed_at ? `, archive removed by retention ${b.removed_at}` : ''}`,
          `instance ${b.instance} (${b.vendor}), snapshot ${b.snapshot_provider}, target ${b.target_type}${b.location ? ` at ${b.location}` : ''}`,
          // A rebuilt row was made from the manifest: no runner, no phases; its times are the manifest's.
          b.rebuilt_at
            ? `started ${b.started_at}, finished ${b.finished_at ?? '-'}; recorded from its archive's manifest by \`ebr catalog rebuild\` at ${b.rebuilt_at}`
            : `started ${b.started_at}, finished ${b.finished_at ?? '-'}, runner pid ${b.runner_pid} on ${b.runner_host}`,
          `block window ${ms(b.block_window_ms)}${Object.keys(steps).length ? `: ${Object.entries(steps).map(([k, v]) => `${k} ${ms(v)}`).join(', ')}` : ''}`,
          ...(group ? [`group ${group.name} backup ${group.id} (${group.members.join(', ')}), all blocked at ${group.instant ?? '-'}`] : []),
          ...(mirror
            ? [`split mirror ${mirror.replica}: split ${ms(mirror.splitMs ?? null)}, ${bytes(mirror.backlogBytes ?? 0)} of log written meanwhile, ${mirror.resyncMs !== undefined ? `caught up ${ms(mirror.resyncMs)} after the resume` : `resync in the background`}`]
            : []),
          ...(b.log_start || b.log_end ? [`log from ${b.log_start ?? '-'} to ${b.log_end ?? '-'}${b.timeline ? ` (timeline ${b.timeline})` : ''}`] : []),
          ...(err ? [`error: ${err.message}`, ...(err.hint ? [`hint: ${err.hint}`] : [])] : []),
          '',
          phases.length || !b.rebuilt_at
            ? table(['PHASE', 'STARTED', 'TOOK', 'OUTCOME'], phases.map((p) => [p.phase, p.started_at.slice(11, 23), ms(p.duration_ms), p.outcome ?? 'unfinished']))
            : 'phases: not in the archive (the catalog that journaled them was rebuilt)',
          '',
          table(['SPACE', 'KIND', 'CRITICAL', 'CHUNKS', 'SIZE', 'STORED'], doc.spaces.map((s) => [s.name, s.kind, s.critical ? 'yes' : '', s.chunks, bytes(s.bytes), s.storedBytes !== undefined ? bytes(s.storedBytes) : '-'])),
          ...(b.bytes !== null ? [`\n${b.members} members, ${bytes(b.bytes)}${b.stored_bytes !== null ? `, stored as ${bytes(b.stored_bytes)}` : ''} (${describeCodec(codec)})`] : []),
          ...(restores.length
            ? ['', table(['RESTORE', 'MODE', 'INTO', 'STARTED', 'STATUS', 'OUTCOME'], restores.map((r) => [r.id, r.mode, r.target_dir ?? '(in place)', r.started_at.replace('T', ' ').slice(0, 19), r.status, (r.outcome ?? '').slice(0, 90)]))]
            : []),
        ].join('\n');
      });
    });
}
