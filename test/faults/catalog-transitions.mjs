// Drives the catalog through a backup's state changes, writing `MARK <step>` to stderr before each,
// so a syscall trace (strace) shows which fsyncs belong to which step. Args: <dist dir> <catalog file>.
import { writeSync } from 'node:fs';
import os from 'node:os';

const [dist, file] = process.argv.slice(2);
const { Catalog } = await import(`${dist}/src/catalog/catalog.js`);
const b = await import(`${dist}/src/catalog/backups.js`);
const { journalArchive } = await import(`${dist}/src/workflow/archive-journal.js`);
const { tarTarget } = await import(`${dist}/src/archive/tar-target.js`);
const { thisRunner } = await import(`${dist}/src/util/runner.js`);

const mark = (step) => writeSync(2, `MARK ${step}\n`);
const cat = Catalog.open(file);
const begin = (id, runner = thisRunner()) => b.beginBackup(cat, { id, instance: 't', vendor: 'sqlite', provider: 'copy', targetType: 'tar', runner });

mark('begin');
begin('20260101T000000Z-0001');
mark('phases');
for (const p of ['connect', 'discover', 'acquire', 'release', 'stream']) b.startPhase(cat, '20260101T000000Z-0001', p)('ok');
b.updateBackup(cat, '20260101T000000Z-0001', { location: '/x', block_window_ms: 3 });
mark('journal-archive');
journalArchive(cat, { type: 'tar', path: '/x' }, tarTarget({ path: '/x' }), { instance: 't', backupId: '20260101T000000Z-0001' });
mark('complete');
b.finishBackup(cat, '20260101T000000Z-0001', 'complete', { bytes: 1, members: 1, phase: 'complete' });
mark('begin');
begin('20260101T000000Z-0002');
mark('failed');
b.finishBackup(cat, '20260101T000000Z-0002', 'failed', { error: '{}' });
mark('removed');
b.markRemoved(cat, '20260101T000000Z-0001');
mark('begin');
// A runner that never lived on this host: its backup is abandoned.
begin('20260101T000000Z-0003', { host: os.hostname(), pid: 2 ** 22 + 7, start: '1' });
mark('died');
const died = b.failAbandonedBackups(cat);
mark('end');
cat.close();
writeSync(1, JSON.stringify({ died: died.map((d) => d.id) }));
