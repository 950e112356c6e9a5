/**
 * Fault injection for the tests that kill ebr at exact moments of a restore: EBR_FAULT_KILL_AT=NAME:N
 * makes the process SIGKILL itself the N-th time it passes the point NAME (N defaults to 1). Unset, a
 * point costs one map lookup. Documented in the README next to EBR_FAULT_HOLD_WINDOW_MS.
 */
const spec = process.env.EBR_FAULT_KILL_AT;
const [target, nth] = spec ? [spec.split(':')[0], Number(spec.split(':')[1] ?? 1)] : [undefined, 0];
let hits = 0;

export function faultPoint(name: string): void {
  if (name !== target) return;
  if (++hits === nth) process.kill(process.pid, 'SIGKILL');
}
