import type { PlanStep } from '../adapter-api.js';
/** Plain-text formatting for the terminal: sizes, durations, aligned tables. */

export function bytes(n: number | null | undefined): string {
  if (n === null || n === undefined) return '-';
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let v = n;
  let i = 0;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return i === 0 ? `${v} B` : `${v.toFixed(v < 10 ? 2 : 1)} ${units[i]}`;
}

export function ms(n: number | null | undefined): string {
  if (n === null || n === undefined) return '-';
  if (n < 1000) return `${n.toFixed(n < 10 ? 1 : 0)} ms`;
  return `${(n / 1000).toFixed(2)} s`;
}

export function table(headers: string[], rows: Array<Array<string | number>>): string {
  const cells = [headers, ...rows.map((r) => r.map(String))];
  const widths = headers.map((_, i) => Math.max(...cells.map((r) => (r[i] ?? '').length)));
  return cells.map((r) => r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i]!))).join('  ').trimEnd()).join('\n');
}

/** The plan as text: one line per step, numbered, with its phase and kind. */
export function planText(title: string, steps: PlanStep[]): string {
  const lines = [title];
  steps.forEach((s, i) => {
    const [first, ...rest] = s.text.split('\n');
    lines.push(`${String(i + 1).padStart(3)}. [${s.phase}] ${s.kind.toUpperCase().padEnd(7)} ${first}`);
    for (const r of rest) lines.push(`${' '.repeat(24)}${r}`);
  });
  return lines.join('\n');
}
