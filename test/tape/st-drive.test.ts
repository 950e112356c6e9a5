/**
 * The tape target's st path without a drive: a stand-in `mt` on PATH records its argv and keeps a
 * head position over a directory of tape files, and the "device" is a symlink it points at the tape
 * file under the head (a regular file: each open reads or writes one tape file, as on st). Asserted:
 * the exact mt commands of a backup and of a partial restore, the block sizes written, and reading a
 * backup that spans two cartridges with changeCommand (and the error without one). Tested against the
 * commands only: no real drive was used.
 */
import { randomBytes } from 'node:crypto';
import { chmodSync, cpSync, mkdirSync, readFileSync, readdirSync, statSync, symlinkSync, writeFileSync, rmSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ArchiveTarget } from '../../src/archive/archive-target.js';
import type { Manifest } from '../../src/archive/manifest.js';
import { tapeTarget } from '../../src/archive/tape/st-target.js';
import type { TapePlacement } from '../../src/archive/tape/tape-format.js';
import { vtapeTarget } from '../../src/archive/tape/vtape-target.js';
import { tempDir } from '../helpers/env.js';
import { CountingDrive, expectedOf, manifestSha, readSpace, writeBackup, type FixtureSpace } from './tape-fixture.js';

const blockSize = 64 * 1024;
const t = tempDir('ebr-st-');
afterAll(() => t.cleanup());

/** mt-st's answers, as far as ebr reads them: status with the file and block number and the status bits. */
const fakeMt = `#!/bin/bash
# A stand-in for mt-st over a directory of tape files: records its argv, keeps the head's position in
# DEVICE.state/, and points DEVICE (a symlink) at the tape file under the head.
set -u
[ "\${1:-}" = "-f" ] || { echo "usage: mt -f DEVICE COMMAND [COUNT]" >&2; exit 1; }
dev=$2; shift 2
st="$dev.state"
echo "$*" >> "$st/log"
pos=$(cat "$st/pos")
f() { printf '%s/file-%04d' "$st/cart" "$1"; }
size() { stat -L -c %s "$1" 2>/dev/null || echo 0; }
# st writes a file mark when the device is closed after writing: a tape file that grew since the head
# came to it got one, and writing ended the tape there.
if [ "$(size "$(f "$pos")")" != "$(cat "$st/size")" ]; then
  n=$((pos + 1)); while [ -e "$(f $n)" ]; do rm -f "$(f $n)"; n=$((n + 1)); done
  pos=$((pos + 1))
fi
count() { n=0; while [ -s "$(f $n)" ]; do n=$((n + 1)); done; echo $n; }
case "$1" in
  rewind) pos=0 ;;
  fsf) if [ $((pos + $2)) -gt "$(count)" ]; then echo "$dev: Input/output error" >&2; exit 2; fi; pos=$((pos + $2)) ;;
  eod) pos=$(count) ;;
  status) ;;
  *) echo "mt: unknown command $1" >&2; exit 1 ;;
esac
echo "$pos" > "$st/pos"
t=$(f "$pos"); [ -e "$t" ] || : > "$t"
ln -sfn "$t" "$dev"
size "$t" > "$st/size"
if [ "$1" = status ]; then
  bits="ONLINE IM_REP_EN"; [ "$pos" = 0 ] && bits="BOT $bits"
  printf 'SCSI 2 tape drive:\\nFile number=%d, block number=0, partition=0.\\nTape block size 0 bytes. Density code 0x58 (LTO-5).\\nSoft error count since last status=0\\nGeneral status bits on (41010000):\\n %s\\n' "$pos" "$bits"
fi
`;

const bin = path.join(t.dir, 'bin');
const dev = path.join(t.dir, 'nst0');
const state = `${dev}.state`;
const tapes = path.join(t.dir, 'tapes');

/** Puts cartridge directory `cart` in the fake drive, head at BOT. */
function load(cart: string): void {
  mkdirSync(cart, { recursive: true });
  rmSync(path.join(state, 'cart'), { force: true });
  symlinkSync(cart, path.join(state, 'cart'));
  writeFileSync(path.join(state, 'pos'), '0\n');
  writeFileSync(path.join(cart, 'file-0000'), '', { flag: 'a' });
  rmSync(dev, { force: true });
  symlinkSync(path.join(state, 'cart', 'file-0000'), dev);
  writeFileSync(path.join(state, 'size'), `${statSync(path.join(cart, 'file-0000')).size}\n`);
}
const mtLog = () => readFileSync(path.join(state, 'log'), 'utf8').trim().split('\n').filter(Boolean);
const clearLog = () => writeFileSync(path.join(state, 'log'), '');

beforeAll(() => {
  mkdirSync(bin);
  writeFileSync(path.join(bin, 'mt'), fakeMt);
  chmodSync(path.join(bin, 'mt'), 0o755);
  process.env.PATH = `${bin}:${process.env.PATH}`;
  mkdirSync(state);
  clearLog();
  // Never a terminal here: the target must fail, not wait for an operator.
  Object.defineProperty(process.stdin, 'isTTY', { value: false, configurable: true });
});

describe('tape (st): the mt commands and blocks of a backup and of a partial restore', () => {
  const drives: CountingDrive[] = [];
  const target = (): ArchiveTarget =>
    tapeTarget(
      { type: 'tape', device: dev, blockSize: '64KiB' },
      {
        wrapDrive: (d) => {
          const c = new CountingDrive(d);
          drives.push(c);
          return c;
        },
      },
    );
  const ref = { instance: 'shop', backupId: '20260102T030405Z-00aa' };
  const spaces: FixtureSpace[] = [
    { name: 'a', members: [{ name: 'a/one', type: 'file', data: randomBytes(200_003) }, { name: 'a/d', type: 'directory' }] },
    { name: 'b', members: [{ name: 'b/two', type: 'file', data: randomBytes(3 * blockSize) }, { name: 'b/l', type: 'symlink', linkTarget: 'two' }] },
  ];
  let manifest: Manifest;

  it('writes label, spaces, meta and manifest as one tape file each, every write one block, checked by mt status after each file mark', async () => {
    load(path.join(tapes, 'one'));
    clearLog();
    manifest = await writeBackup(target(), ref, spaces, { backup_label: Buffer.from('label\n') });
    expect(mtLog()).toEqual([
      'status', // the cartridge in the drive is online and writable
      'rewind', // its label is looked at: a cartridge of this same backup is never overwritten
      'rewind', // label
      'status', // file 1 block 0: the file mark after the label is there
      'status', // after space a
      'status', // after space b
      'status', // after meta/backup_label
      'status', // after the manifest
      'rewind', // done: rewound
    ]);
    expect(drives[0]!.writes.length).toBeGreaterThan(5);
    for (const n of drives[0]!.writes) expect(n).toBe(blockSize);
    const files = readdirSync(path.join(tapes, 'one')).sort().filter((f) => statSync(path.join(tapes, 'one', f)).size > 0);
    expect(files).toEqual(['file-0000', 'file-0001', 'file-0002', 'file-0003', 'file-0004']);
    const sizes = files.map((f) => statSync(path.join(tapes, 'one', f)).size / blockSize);
    // label; header + 4 blocks of a (200003 bytes of data and tar headers); header + 4 of b; header + 1; header + 1.
    expect(sizes).toEqual([1, 5, 5, 2, 2]);
    expect(JSON.parse(readFileSync(path.join(tapes, 'one', 'file-0000')).subarray(0, 1000).toString().split('\n')[0]!)).toMatchObject({ format: 'ebr-tape/1', kind: 'label', backupId: ref.backupId, instance: 'shop', volume: 1 });
    const p = manifest.spaces.map((s) => (s.placement as unknown as TapePlacement).segments.map((g) => [g.volume, g.file]));
    expect(p).toEqual([[[1, 1]], [[1, 2]]]);
    expect(target().locationOf!(ref)).toBe(`tape:${dev}`);
  });

  it('a partial restore reads the label and the manifest, then seeks to its space with rewind and fsf N', async () => {
    clearLog();
    drives.length = 0;
    const r = await target().open(ref);
    expect((await r.readManifestFile()).sha256).toBe(manifestSha(manifest));
    expect(mtLog()).toEqual([
      'status', // where the head is: at BOT after the backup, so the label is read there
      'eod', // how many tape files there are: the manifest is the last one
      'status',
      'status', // at file 5, the end of data: back to file 4, whose header says manifest, and on to its end
      'rewind',
      'fsf 4',
    ]);
    clearLog();
    expect(await readSpace(r, manifest, 'b')).toEqual(expectedOf(spaces[1]!));
    expect(mtLog()).toEqual(['status', 'rewind', 'fsf 2']);
    // Space a's tape file (file 1) was never read.
    expect(drives[0]!.readsOf(dev, 1)).toBe(0);
    expect(drives[0]!.readsOf(dev, 2)).toBe(1 + 4);
    expect(await readSpace(r, manifest, 'a')).toEqual(expectedOf(spaces[0]!));
    expect((await r.readMeta('backup_label')).toString()).toBe('label\n');
  });

  it('refuses a cartridge of another backup when reading, and says what is loaded', async () => {
    const other = { instance: 'shop', backupId: '20260102T030405Z-00bb' };
    await expect((await target().open(other)).readManifestFile()).rejects.toThrow(/volume 1 of backup 20260102T030405Z-00bb is needed in .*nst0 \(the cartridge in the drive is volume 1 of backup 20260102T030405Z-00aa; .*no target.changeCommand is set/);
  });
});

describe('tape (st): reading a backup that spans two cartridges', () => {
  const ref = { instance: 'shop', backupId: '20260102T030405Z-00cc' };
  const space: FixtureSpace = { name: 'big', members: [{ name: 'big/f', type: 'file', data: randomBytes(6 * 1024 * 1024 + 11) }] };
  let manifest: Manifest;
  const changerLog = path.join(t.dir, 'changer.log');

  beforeAll(async () => {
    // The cartridges are made by the vtape target: its tape files are the st layout, one file of blocks per tape file.
    const lib = path.join(t.dir, 'vtapes');
    manifest = await writeBackup(vtapeTarget({ type: 'vtape', path: lib, capacity: '4MiB', blockSize: '64KiB' }), ref, [space]);
    expect(readdirSync(lib).sort()).toEqual(['cart-0001', 'cart-0002']);
    for (const [i, c] of ['cart-0001', 'cart-0002'].entries()) cpSync(path.join(lib, c), path.join(tapes, `vol-${i + 1}`), { recursive: true });
    const changer = path.join(bin, 'changer');
    writeFileSync(
      changer,
      `#!/bin/bash\necho "$EBR_VOLUME $EBR_PURPOSE $EBR_BACKUP_ID $EBR_DEVICE" >> ${changerLog}\nst=${state}\nrm -f $st/cart; ln -s ${tapes}/vol-$EBR_VOLUME $st/cart\necho 0 > $st/pos; ln -sfn $st/cart/file-0000 ${dev}; stat -L -c %s ${dev} > $st/size\n`,
    );
    chmodSync(changer, 0o755);
  });

  it('changeCommand loads each volume as the placement needs it (EBR_VOLUME), and the space reads back whole', async () => {
    load(path.join(tapes, 'vol-1'));
    writeFileSync(changerLog, '');
    const target = tapeTarget({ type: 'tape', device: dev, blockSize: 65536, changeCommand: `${path.join(bin, 'changer')} --slot-of-volume` });
    const r = await target.open(ref);
    // Volume 1 ends in a part of the space: the manifest is on volume 2.
    expect((await r.readManifestFile()).sha256).toBe(manifestSha(manifest));
    expect(await readSpace(r, manifest, 'big')).toEqual(expectedOf(space));
    expect(readFileSync(changerLog, 'utf8').trim().split('\n')).toEqual([`2 read ${ref.backupId} ${dev}`, `1 read ${ref.backupId} ${dev}`, `2 read ${ref.backupId} ${dev}`]);
  });

  it('without changeCommand and without a terminal the read fails, naming changeCommand', async () => {
    load(path.join(tapes, 'vol-1'));
    const r = await tapeTarget({ type: 'tape', device: dev, blockSize: 65536 }).open(ref);
    await expect(r.readManifestFile()).rejects.toThrow(/volume 2 of backup .* is needed in .*nst0.*but no target.changeCommand is set and there is no terminal to ask on/);
  });
});
