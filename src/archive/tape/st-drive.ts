/**
 * A real drive through the Linux st driver: blocks are write(2)s and read(2)s of exactly blockSize on
 * the non-rewinding device, and positioning is mt-st (`mt -f DEV rewind|fsf N|eod|status|weof`).
 *
 * The st driver lets one process open the device at a time, so mt cannot run while ebr holds it: a
 * tape file is one open of the device, and its file mark is the one st writes when a device that was
 * written is closed (`mt weof` would add a second, an empty tape file). After each file mark `mt
 * status` must show the head at the next file, block 0. Positions are always taken from `mt status`,
 * never assumed: where st leaves the head on close after a read differs between fixed and variable
 * block mode.
 */
import { constants } from 'node:fs';
import { open, type FileHandle } from 'node:fs/promises';
import { createInterface } from 'node:readline/promises';
import { loadExeca } from '../../util/execa.js';
import { EbrError, throwIfAborted } from '../../errors.js';
import { lastLines } from '../../snapshot/command-runner.js';
import { TargetWriteError } from '../file-sink.js';
import { EndOfMedium, type TapeDrive, type VolumeRequest } from './tape-drive.js';

export interface StDriveOptions {
  device: string;
  blockSize: number;
  /** A shell command line that loads the next cartridge (an mtx call); EBR_VOLUME names the volume wanted. */
  changeCommand?: string;
  /** The mt program (mt-st); `mt` from PATH unless given. */
  mt?: string;
}

export interface DriveStatus {
  /** -1 when the driver lost count. */
  file: number;
  block: number;
  flags: Set<string>;
}

/** How long a cartridge may take to come online after a change (a changer's robot, a load and thread). */
const readyTimeoutMs = 5 * 60_000;
const readyPollMs = 2000;

export class StDrive implements TapeDrive {
  readonly blockSize: number;
  readonly loaded: string;
  private fh: FileHandle | undefined;
  private mode: 'read' | 'write' | undefined;
  /** The file number the head is at as far as ebr knows (from the last status, plus the file marks since). */
  private file = -1;

  constructor(private readonly o: StDriveOptions) {
    this.blockSize = o.blockSize;
    this.loaded = o.device;
  }

  async writeBlock(block: Buffer): Promise<void> {
    if (this.mode === 'read') await this.close();
    if (!this.fh) await this.openDevice('write');
    let n: number;
    try {
      n = (await this.fh!.write(block, 0, block.length, null)).bytesWritten;
    } catch (err) {
      // st: past the early warning a write fails with ENOSPC and writes nothing; the file mark still fits.
      if ((err as NodeJS.ErrnoException).code === 'ENOSPC') throw new EndOfMedium(this.o.device);
      throw TargetWriteError.of(this.o.device, err);
    }
    if (n === 0) throw new EndOfMedium(this.o.device);
    if (n !== block.length) {
      throw new EbrError('archive', `${this.o.device} took ${n} of the ${block.length} bytes of a block`, {
        hint: `put the drive in variable block mode (mt -f ${this.o.device} setblk 0) or set its block size to target.blockSize`,
        context: { path: this.o.device },
      });
    }
  }

  async writeFileMark(): Promise<void> {
    if (this.mode === 'write') await this.close(); // st writes the file mark on close
    else await this.mt(['weof']); // nothing written since the last mark: an empty tape file
    const expected = this.file >= 0 ? this.file + 1 : -1;
    const s = await this.status();
    if (s.file >= 0 && expected >= 0 && (s.file !== expected || s.block !== 0)) {
      throw new EbrError('archive', `after a file mark ${this.o.device} is at file ${s.file} block ${s.block}, not at the start of file ${expected}`, {
        hint: 'the drive or the st driver did not write the file mark where ebr expected; check `mt status` and the drive',
        context: { path: this.o.device },
      });
    }
    this.file = s.file;
  }

  async seekFile(n: number, signal?: AbortSignal): Promise<void> {
    await this.close();
    const s = await this.status(signal);
    if (s.file === n && s.block === 0) return;
    if (s.file >= 0 && s.file < n) {
      await this.mt(['fsf', String(n - s.file)], signal);
    } else {
      await this.mt(['rewind'], signal);
      if (n > 0) await this.mt(['fsf', String(n)], signal);
    }
    this.file = n;
  }

  async readBlock(signal?: AbortSignal): Promise<Buffer | undefined> {
    throwIfAborted(signal, { path: this.o.device });
    if (this.mode === 'write') throw new Error('readBlock while a tape file is being written');
    if (!this.fh) await this.openDevice('read');
    const block = Buffer.allocUnsafe(this.blockSize);
    let n: number;
    try {
      n = (await this.fh!.read(block, 0, this.blockSize, null)).bytesRead;
    } catch (err) {
      throw new EbrError('archive', `reading ${this.o.device} failed: ${(err as Error).message}`, {
        hint: 'a blank or damaged tape, or a block larger than target.blockSize; check `mt status` and dmesg',
        context: { path: this.o.device },
        cause: err,
      });
    }
    if (n === 0) {
      // The file mark: st has moved past it.
      await this.close();
      this.file = this.file >= 0 ? this.file + 1 : -1;
      return undefined;
    }
    if (n !== this.blockSize) {
      throw new EbrError('archive', `${this.o.device} gave a block of ${n} bytes, not ${this.blockSize}`, {
        hint: 'the tape was written with another block size; set target.blockSize to what it was written with',
        context: { path: this.o.device },
      });
    }
    return block;
  }

  async fileCount(signal?: AbortSignal): Promise<number> {
    await this.close();
    await this.mt(['eod'], signal);
    const s = await this.status(signal);
    if (s.file < 0) throw new EbrError('archive', `${this.o.device} cannot tell its file number at the end of data`, { hint: 'rewind the tape (mt rewind) and try again', context: { path: this.o.device } });
    this.file = s.file;
    return s.file;
  }

  async rewind(signal?: AbortSignal): Promise<void> {
    await this.close();
    await this.mt(['rewind'], signal);
    this.file = 0;
  }

  async change(request: VolumeRequest, signal?: AbortSignal): Promise<void> {
    await this.close();
    // The first volume of a backup is the cartridge the operator (or the library's schedule) put in the drive.
    if (!(request.purpose === 'write' && request.volume === 1)) await this.askForVolume(request, signal);
    await this.waitReady(request, signal);
  }

  async release(): Promise<void> {
    await this.close();
  }

  /** `mt status`, parsed; the drive is not touched otherwise. */
  async status(signal?: AbortSignal): Promise<DriveStatus> {
    const out = await this.mt(['status'], signal);
    const pos = /File number=(-?\d+), block number=(-?\d+)/.exec(out);
    const bits = /General status bits on \([0-9a-fA-F]+\):\s*\n\s*(.*)/.exec(out);
    return { file: pos ? Number(pos[1]) : -1, block: pos ? Number(pos[2]) : -1, flags: new Set((bits?.[1] ?? '').trim().split(/\s+/).filter(Boolean)) };
  }

  private async askForVolume(request: VolumeRequest, signal?: AbortSignal): Promise<void> {
    const { ref, volume } = request;
    const why = request.reason ? `${request.reason}; ` : '';
    if (this.o.changeCommand) {
      const execa = await loadExeca();
      const r = await execa(this.o.changeCommand, {
        shell: true,
        reject: false,
        stdin: 'ignore',
        all: true,
        cleanup: true,
        forceKillAfterDelay: 5000,
        env: { EBR_VOLUME: String(volume), EBR_BACKUP_ID: ref.backupId, EBR_INSTANCE: ref.instance, EBR_DEVICE: this.o.device, EBR_PURPOSE: request.purpose },
        ...(signal ? { cancelSignal: signal } : {}),
      });
      throwIfAborted(signal, { path: this.o.device });
      if (r.exitCode !== 0) {
        throw new EbrError('archive', `target.changeCommand failed loading volume ${volume} of backup ${ref.backupId} (exit ${r.exitCode ?? 'none'}): ${lastLines(String(r.all ?? r.message ?? ''))}`, {
          hint: 'run the command by hand with EBR_VOLUME set to see why; check the changer (mtx status)',
          context: { ...ref, path: this.o.device, command: this.o.changeCommand },
        });
      }
      return;
    }
    if (!process.stdin.isTTY) {
      throw new EbrError('archive', `volume ${volume} of backup ${ref.backupId} is needed in ${this.o.device} (${why}for ${request.purpose === 'write' ? 'writing' : 'reading'}), but no target.changeCommand is set and there is no terminal to ask on`, {
        hint: 'set target.changeCommand to a command that loads a cartridge (it gets the volume in EBR_VOLUME, e.g. an mtx load), or run ebr on a terminal and change the cartridge when asked',
        context: { ...ref, path: this.o.device },
      });
    }
    const rl = createInterface({ input: process.stdin, output: process.stderr });
    try {
      const what = request.purpose === 'write' ? `a scratch cartridge for volume ${volume}` : `volume ${volume}`;
      await rl.question(`\nebr: ${why}load ${what} of backup ${ref.backupId} (instance ${ref.instance}) into ${this.o.device}, then press Enter: `, signal ? { signal } : {});
    } catch (err) {
      throwIfAborted(signal, { path: this.o.device });
      throw err;
    } finally {
      rl.close();
    }
  }

  /** Waits for the cartridge to come online after a change; a write-protected one is refused for writing. */
  private async waitReady(request: VolumeRequest, signal?: AbortSignal): Promise<void> {
    const deadline = Date.now() + readyTimeoutMs;
    for (;;) {
      const s = await this.status(signal);
      if (s.flags.has('ONLINE')) {
        if (request.purpose === 'write' && s.flags.has('WR_PROT')) {
          throw new EbrError('archive', `the cartridge in ${this.o.device} for volume ${request.volume} is write-protected`, { hint: 'load a writable scratch cartridge', context: { ...request.ref, path: this.o.device } });
        }
        this.file = s.file;
        return;
      }
      if (Date.now() > deadline) {
        throw new EbrError('archive', `${this.o.device} has no cartridge online for volume ${request.volume} (status: ${[...s.flags].join(' ') || 'none'})`, {
          hint: 'load a cartridge; check the changer and target.changeCommand',
          context: { ...request.ref, path: this.o.device },
        });
      }
      await new Promise((r) => setTimeout(r, readyPollMs));
      throwIfAborted(signal, { path: this.o.device });
    }
  }

  private async openDevice(mode: 'read' | 'write'): Promise<void> {
    try {
      this.fh = await open(this.o.device, mode === 'write' ? constants.O_WRONLY : constants.O_RDONLY);
    } catch (err) {
      const e = err as NodeJS.ErrnoException;
      throw new EbrError('archive', `cannot open ${this.o.device} for ${mode === 'write' ? 'writing' : 'reading'}: ${e.message}`, {
        hint: e.code === 'EBUSY' ? 'another program has the drive open; only one may use it at a time' : 'check target.device (a non-rewinding st device such as /dev/nst0) and that the user running ebr may open it (group tape)',
        context: { path: this.o.device },
        cause: err,
      });
    }
    this.mode = mode;
  }

  private async close(): Promise<void> {
    const fh = this.fh;
    const wrote = this.mode === 'write';
    this.fh = undefined;
    this.mode = undefined;
    if (!fh) return;
    try {
      await fh.close();
    } catch (err) {
      // After writing, close is where st writes the file mark: its failure loses the tape file's end.
      if (wrote) throw TargetWriteError.of(this.o.device, err);
    }
  }

  private async mt(args: string[], signal?: AbortSignal): Promise<string> {
    throwIfAborted(signal, { path: this.o.device });
    const mt = this.o.mt ?? 'mt';
    const argv = ['-f', this.o.device, ...args];
    const execa = await loadExeca();
    const r = await execa(mt, argv, { reject: false, stdin: 'ignore', cleanup: true, forceKillAfterDelay: 5000, env: { LC_ALL: 'C' }, ...(signal ? { cancelSignal: signal } : {}) });
    throwIfAborted(signal, { path: this.o.device });
    if (r.exitCode === undefined && (r.cause as NodeJS.ErrnoException | undefined)?.code === 'ENOENT') {
      throw new EbrError('archive', `the tape target needs the command ${mt}, which is not installed`, { hint: 'install it: apt-get install -y mt-st', context: { path: this.o.device } });
    }
    if (r.exitCode !== 0) {
      throw new EbrError('archive', `${mt} ${argv.join(' ')} failed (exit ${r.exitCode ?? 'none'}): ${lastLines(String(r.stderr || r.stdout || r.message || ''))}`, {
        hint: args[0] === 'fsf' ? 'the tape has fewer files than the backup recorded: another cartridge is loaded, or the tape was rewritten' : 'check the drive with `mt status` and dmesg',
        context: { path: this.o.device, command: `${mt} ${argv.join(' ')}` },
      });
    }
    return String(r.stdout ?? '');
  }
}
