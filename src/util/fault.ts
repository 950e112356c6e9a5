/**
 * Fault injection for the tests that stop or kill ebr at exact moments of a restore:
 * EBR_FAULT_KILL_AT=NAME:N makes the process SIGKILL itself the N-th time it passes the point NAME
 * (N defaults to 1); EBR_FAULT_STOP_AT=NAME:N makes it SIGSTOP itself there (the test holds a live
 * runner, then sends SIGCONT). Unset, a point costs one comparison. Documented in the README next to
 * EBR_FAULT_HOLD_WINDOW_MS.
 */
interface Trap {
  name: string;
  nth: number;
  hits: number;
  signal: NodeJS.Signals;
}

const traps: Trap[] = [
  ['EBR_FAULT_KILL_AT', 'SIGKILL'],
  ['EBR_FAULT_STOP_AT', 'SIGSTOP'],
].flatMap(([env, signal]) => {
  const spec = process.env[env!];
  if (!spec) return [];
  const [name, nth] = spec.split(':');
  return [{ name: name!, nth: Number(nth ?? 1), hits: 0, signal: signal as NodeJS.Signals }];
});

export function faultPoint(name: string): void {
  for (const t of traps) if (t.name === name && ++t.hits === t.nth) process.kill(process.pid, t.signal);
}
