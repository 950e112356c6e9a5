/**
 * The status page `ebr daemon --listen` serves at `/`: per instance the recent backups (failed ones
 * red, with their error), the block window and the backup duration plotted over time, the last drill
 * and the log archive. The status document is embedded in the page, so it shows at once and with no
 * request of its own; the script then refreshes it from /status.json every 30 s. Everything is drawn
 * with textContent and SVG elements: a message from the catalog is never parsed as HTML.
 */
import type { StatusDocument } from './status.js';

export function statusPage(doc: StatusDocument): string {
  const data = JSON.stringify(doc).replace(/</g, '\\u003c');
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>ebr status</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>
body{font:14px/1.4 system-ui,sans-serif;margin:1.5em;color:#222}
h1{font-size:1.3em} h2{font-size:1.1em;margin:.2em 0}
section{border:1px solid #ccc;border-radius:6px;padding:.8em 1em;margin:0 0 1.2em}
.bad{color:#b00020;font-weight:600} .ok{color:#0a7d32} .warn{color:#a86b00}
table{border-collapse:collapse;margin-top:.5em} td,th{padding:.15em .6em;text-align:left;border-bottom:1px solid #eee}
tr.failed td{background:#fdecee} svg{background:#fafafa;border:1px solid #eee;margin:.4em 1em .4em 0}
.facts span{margin-right:1.5em}
</style></head>
<body><h1>ebr status <small id="at"></small></h1><div id="instances"></div>
<script id="status-data" type="application/json">${data}</script>
<script>
'use strict';
const el = (tag, attrs = {}, text) => { const e = document.createElement(tag); for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v); if (text !== undefined) e.textContent = text; return e; };
const svgEl = (tag, attrs = {}) => { const e = document.createElementNS('http://www.w3.org/2000/svg', tag); for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, String(v)); return e; };
const age = (s) => s == null ? '-' : s < 120 ? s + ' s' : s < 7200 ? Math.round(s / 60) + ' min' : s < 172800 ? (s / 3600).toFixed(1) + ' h' : (s / 86400).toFixed(1) + ' d';
const ms = (v) => v == null ? '-' : v < 1000 ? v.toFixed(1) + ' ms' : (v / 1000).toFixed(2) + ' s';
function plot(title, points, unit) {
  const w = 360, h = 120, pad = 28;
  const svg = svgEl('svg', { width: w, height: h, role: 'img', 'aria-label': title, 'data-plot': title });
  const t = svgEl('text', { x: pad, y: 14, 'font-size': 12 }); t.textContent = title; svg.appendChild(t);
  const pts = points.filter((p) => p.v != null);
  if (pts.length === 0) { const n = svgEl('text', { x: pad, y: h / 2, 'font-size': 11 }); n.textContent = 'no data yet'; svg.appendChild(n); return svg; }
  const t0 = Math.min(...pts.map((p) => p.t)), t1 = Math.max(...pts.map((p) => p.t)), vmax = Math.max(...pts.map((p) => p.v)) || 1;
  const x = (tt) => pad + (t1 === t0 ? (w - 2 * pad) / 2 : ((tt - t0) / (t1 - t0)) * (w - 2 * pad));
  const y = (v) => h - pad + 8 - (v / vmax) * (h - pad - 24);
  const m = svgEl('text', { x: 2, y: 28, 'font-size': 10 }); m.textContent = unit(vmax); svg.appendChild(m);
  svg.appendChild(svgEl('polyline', { fill: 'none', stroke: '#3366cc', 'stroke-width': 1.5, points: pts.map((p) => x(p.t) + ',' + y(p.v)).join(' ') }));
  for (const p of pts) { const c = svgEl('circle', { cx: x(p.t), cy: y(p.v), r: 3, fill: '#3366cc' }); const tt = svgEl('title'); tt.textContent = p.id + ': ' + unit(p.v); c.appendChild(tt); svg.appendChild(c); }
  return svg;
}
function render(doc) {
  document.getElementById('at').textContent = 'at ' + doc.at.replace('T', ' ').slice(0, 19) + ' UTC';
  const root = document.getElementById('instances');
  root.replaceChildren();
  for (const s of doc.instances) {
    const sec = el('section', { 'data-instance': s.instance });
    sec.appendChild(el('h2', {}, s.instance + ' (' + s.adapter + ')'));
    const facts = el('div', { class: 'facts' });
    const last = s.lastBackup;
    facts.appendChild(el('span', { class: s.overdue ? 'bad' : 'ok', 'data-fact': 'last-backup' }, last ? 'last backup ' + last.id + ', ' + age(last.ageS) + ' ago' + (s.overdue ? ' — OVERDUE' : '') : 'no complete backup' + (s.overdue ? ' — OVERDUE' : '')));
    facts.appendChild(el('span', { class: s.failures.length ? 'bad' : 'ok', 'data-fact': 'failures' }, s.failures.length ? s.failures.length + ' failed backup(s) since: ' + (s.failures[0].error || '') : 'no failures since'));
    const d = s.lastDrill;
    facts.appendChild(el('span', { class: !d ? 'warn' : d.status === 'passed' ? 'ok' : 'bad', 'data-fact': 'drill' }, d ? 'last drill ' + d.status.toUpperCase() + ' ' + age(d.ageS) + ' ago (backup ' + d.backupId + ')' + (d.error ? ': ' + d.error : '') : 'never drilled'));
    if (s.log) {
      const lag = s.log.lag;
      const bad = Boolean(s.log.error || (lag && (lag.failing || lag.behind > 1)));
      facts.appendChild(el('span', { class: bad ? 'bad' : 'ok', 'data-fact': 'log' }, s.log.kind + ' archive: ' + s.log.archived + ' logs, newest ' + (s.log.newest || '-') + (lag ? ', server at ' + lag.current + (lag.behind != null ? ', lag ' + lag.behind + ' log(s)' : '') + (lag.failing ? ', archiving FAILS since ' + lag.failing.at : '') : '') + (s.log.error ? ' — ' + s.log.error : '')));
    }
    sec.appendChild(facts);
    const chron = s.recent.slice().reverse();
    const ok = chron.filter((b) => b.status !== 'failed');
    sec.appendChild(plot('block window', ok.map((b) => ({ id: b.id, t: Date.parse(b.startedAt), v: b.blockWindowMs })), ms));
    sec.appendChild(plot('backup duration', ok.map((b) => ({ id: b.id, t: Date.parse(b.startedAt), v: b.durationMs })), ms));
    const tbl = el('table');
    const head = el('tr'); for (const c of ['backup', 'status', 'started', 'window', 'duration', 'error']) head.appendChild(el('th', {}, c)); tbl.appendChild(head);
    for (const b of s.recent) {
      const tr = el('tr', { class: b.status, 'data-backup': b.id });
      for (const c of [b.id, b.status === 'failed' ? 'FAILED' : b.status, b.startedAt.replace('T', ' ').slice(0, 19), ms(b.blockWindowMs), ms(b.durationMs), b.error || '']) tr.appendChild(el('td', {}, c));
      tbl.appendChild(tr);
    }
    sec.appendChild(tbl);
    root.appendChild(sec);
  }
}
render(JSON.parse(document.getElementById('status-data').textContent));
setInterval(() => fetch('status.json').then((r) => r.json()).then(render).catch(() => undefined), 30000);
</script></body></html>
`;
}
