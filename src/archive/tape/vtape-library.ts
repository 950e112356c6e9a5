/**
 * A vtape library: a directory of cartridges, one directory each (`cart-0001/`), each holding numbered
 * tape files (`file-0000` is the label). Cartridges are taken in order, as a library with enough slots
 * would hand out scratch tapes: the first empty one, else a new one. A cartridge that holds data is
 * never written again; freeing one empties it, and it becomes scratch.
 */
import { randomBytes } from 'node:crypto';
import { closeSync, openSync, readSync, readdirSync } from 'node:fs';
import { mkdir, open, readdir, rename, rm } from 'node:fs/promises';
import path from 'node:path';
import { EbrError } from '../../errors.js';
import type { BackupRef } from '../archive-target.js';
import { TargetWriteError } from '../file-sink.js';
import { parseLabel, type TapeLabel } from './tape-format.js';

const cartridgeName = /^cart-(\d{4,})$/;
/** A label is one JSON line at the start of its block; this much of the block is read to find it. */
const labelHead = 64 << 10;

export function tapeFileName(n: number): string {
  return `file-${String(n).padStart(4, '0')}`;
}

export interface LabelledCartridge {
  cartridge: string;
  label: TapeLabel;
}

export class VtapeLibrary {
  constructor(readonly root: string) {}

  dirOf(cartridge: string): string {
    return path.join(this.root, cartridge);
  }

  /** Cartridge names in slot order. */
  async cartridges(): Promise<string[]> {
    let names: string[];
    try {
      names = await readdir(this.root);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
      throw new EbrError('archive', `cannot list the cartridges in ${this.root}: ${(err as Error).message}`, { hint: 'check that target.path exists and is readable', context: { path: this.root }, cause: err });
    }
    return sortCartridges(names);
  }

  /** The labels of every labelled cartridge (blank and foreign ones are left out). */
  async labels(): Promise<LabelledCartridge[]> {
    const out: LabelledCartridge[] = [];
    for (const cartridge of await this.cartridges()) {
      const label = await this.labelOf(cartridge);
      if (label) out.push({ cartridge, label });
    }
    return out;
  }

  /** The cartridges whose labels name the backup, by volume. */
  async cartridgesOf(ref: BackupRef): Promise<LabelledCartridge[]> {
    return (await this.labels()).filter((c) => isOf(c.label, ref)).sort((a, b) => a.label.volume - b.label.volume);
  }

  /** The same, without waiting (locationOf must answer at once); only the head of each label is read. */
  cartridgesOfSync(ref: BackupRef): LabelledCartridge[] {
    let names: string[];
    try {
      names = sortCartridges(readdirSync(this.root));
    } catch {
      return [];
    }
    const out: LabelledCartridge[] = [];
    for (const cartridge of names) {
      const label = readLabelSync(path.join(this.dirOf(cartridge), tapeFileName(0)));
      if (label && isOf(label, ref)) out.push({ cartridge, label });
    }
    return out.sort((a, b) => a.label.volume - b.label.volume);
  }

  /**
   * Takes the next scratch cartridge: the first empty one, else a new one after the last. Taking it is
   * creating its label file exclusively, so two backups writing to one library never share a cartridge.
   */
  async claim(): Promise<string> {
    try {
      await mkdir(this.root, { recursive: true, mode: 0o750 });
      for (;;) {
        const names = await this.cartridges();
        for (const cartridge of names) {
          const inside = await readdir(this.dirOf(cartridge)).catch(() => ['?']);
          if (inside.length === 0 && (await createLabelFile(this.dirOf(cartridge)))) return cartridge;
        }
        const last = names.length ? Number(cartridgeName.exec(names.at(-1)!)![1]) : 0;
        const cartridge = `cart-${String(last + 1).padStart(4, '0')}`;
        try {
          await mkdir(this.dirOf(cartridge), { mode: 0o750 });
        } catch (err) {
          if ((err as NodeJS.ErrnoException).code === 'EEXIST') continue; // another backup took that slot first
          throw err;
        }
        if (await createLabelFile(this.dirOf(cartridge))) return cartridge;
      }
    } catch (err) {
      if (err instanceof EbrError) throw err;
      throw TargetWriteError.of(this.root, err);
    }
  }

  /** Empties a cartridge: it becomes scratch. Moved aside first, so no one can take it while it is half-emptied. */
  async free(cartridge: string): Promise<void> {
    const dir = this.dirOf(cartridge);
    const aside = path.join(this.root, `.freeing-${cartridge}-${randomBytes(4).toString('hex')}`);
    try {
      await rename(dir, aside);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return;
      throw err;
    }
    await rm(aside, { recursive: true, force: true });
    await mkdir(dir, { mode: 0o750 }).catch((err: NodeJS.ErrnoException) => {
      if (err.code !== 'EEXIST') throw err;
    });
  }

  /** Frees every cartridge labelled with the backup; returns their names. */
  async freeBackup(ref: BackupRef): Promise<string[]> {
    const carts = (await this.cartridgesOf(ref)).map((c) => c.cartridge);
    for (const c of carts) await this.free(c);
    return carts;
  }

  async labelOf(cartridge: string): Promise<TapeLabel | undefined> {
    let fh;
    try {
      fh = await open(path.join(this.dirOf(cartridge), tapeFileName(0)), 'r');
    } catch {
      return undefined;
    }
    try {
      const buf = Buffer.alloc(labelHead);
      const { bytesRead } = await fh.read(buf, 0, labelHead, 0);
      return parseLabel(buf.subarray(0, bytesRead));
    } finally {
      await fh.close();
    }
  }
}

function isOf(label: TapeLabel, ref: BackupRef): boolean {
  return label.backupId === ref.backupId && label.instance === ref.instance;
}

function sortCartridges(names: string[]): string[] {
  return names.filter((n) => cartridgeName.test(n)).sort((a, b) => Number(cartridgeName.exec(a)![1]) - Number(cartridgeName.exec(b)![1]));
}

async function createLabelFile(dir: string): Promise<boolean> {
  try {
    await (await open(path.join(dir, tapeFileName(0)), 'wx', 0o640)).close();
    return true;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') return false;
    throw err;
  }
}

function readLabelSync(file: string): TapeLabel | undefined {
  let fd;
  try {
    fd = openSync(file, 'r');
  } catch {
    return undefined;
  }
  try {
    const buf = Buffer.alloc(labelHead);
    const n = readSync(fd, buf, 0, labelHead, 0);
    return parseLabel(buf.subarray(0, n));
  } catch {
    return undefined;
  } finally {
    closeSync(fd);
  }
}
