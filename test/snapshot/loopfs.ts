/**
 * Real filesystems for the tests: an image file, a loop device, mkfs, a mount in a temp dir — and all
 * of it torn down again (call teardown from afterAll; it is safe after a half-made setup). Needs root.
 * A missing tool fails the test with the Debian package to install.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, openSync, closeSync, ftruncateSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

export type LoopFsType = 'btrfs' | 'xfs' | 'ext4';

export interface LoopFs {
  fsType: LoopFsType;
  image: string;
  device: string;
  mountPoint: string;
  teardown(): void;
}

const packages: Record<string, string> = {
  'mkfs.btrfs': 'btrfs-progs',
  btrfs: 'btrfs-progs',
  'mkfs.xfs': 'xfsprogs',
  'mkfs.ext4': 'e2fsprogs',
  losetup: 'mount',
  mount: 'mount',
  umount: 'mount',
};

/** Fails, naming the package, when a tool the tests need is not installed. */
export function requireTools(...tools: string[]): void {
  for (const tool of tools) {
    const found = ['/usr/sbin', '/usr/bin', '/sbin', '/bin', ...(process.env.PATH ?? '').split(':')].some((d) => d && existsSync(path.join(d, tool)));
    if (!found) throw new Error(`${tool} is not installed: apt-get install -y ${packages[tool] ?? tool} (or run test/provision.sh)`);
  }
  if (process.getuid?.() !== 0) throw new Error('the filesystem tests make loop devices and mount them: run them as root');
}

export function sh(file: string, args: string[], options: { allowFail?: boolean } = {}): string {
  try {
    return execFileSync(file, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  } catch (err) {
    if (options.allowFail) return '';
    const e = err as { stderr?: string; message: string };
    throw new Error(`${file} ${args.join(' ')} failed: ${e.stderr?.trim() || e.message}`);
  }
}

export function makeLoopFs(fsType: LoopFsType, sizeMiB: number): LoopFs {
  requireTools(`mkfs.${fsType}`, 'losetup', 'mount', 'umount');
  const dir = mkdtempSync(path.join(os.tmpdir(), `ebr-loop-${fsType}-`));
  const image = path.join(dir, 'image');
  const mountPoint = path.join(dir, 'mnt');
  mkdirSync(mountPoint);
  let device = '';
  let mounted = false;
  const teardown = () => {
    if (mounted || isMounted(mountPoint)) {
      // A lazy unmount as a last resort, so a process still in there never leaks the loop device.
      if (!sh('umount', [mountPoint], { allowFail: true }) && isMounted(mountPoint)) sh('umount', ['-l', mountPoint], { allowFail: true });
      mounted = false;
    }
    for (const d of loopDevicesOf(image)) sh('losetup', ['-d', d], { allowFail: true });
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    const fd = openSync(image, 'w');
    ftruncateSync(fd, sizeMiB * 1024 * 1024); // sparse: only what the filesystem writes takes disk space
    closeSync(fd);
    device = sh('losetup', ['--find', '--show', image]).trim();
    if (fsType === 'btrfs') sh('mkfs.btrfs', ['-q', '-f', device]);
    else if (fsType === 'xfs') sh('mkfs.xfs', ['-q', '-f', '-m', 'reflink=1', device]);
    else sh('mkfs.ext4', ['-q', '-F', device]);
    sh('mount', [device, mountPoint]);
    mounted = true;
    return { fsType, image, device, mountPoint, teardown };
  } catch (err) {
    teardown();
    throw err;
  }
}

export function isMounted(mountPoint: string): boolean {
  return readFileSync('/proc/self/mountinfo', 'utf8')
    .split('\n')
    .some((l) => l.split(' ')[4] === mountPoint);
}

function loopDevicesOf(image: string): string[] {
  return sh('losetup', ['-j', image], { allowFail: true })
    .split('\n')
    .filter(Boolean)
    .map((l) => l.slice(0, l.indexOf(':')));
}

/** Subvolumes below a btrfs mount, as `btrfs subvolume list -o`-style relative paths. */
export function subvolumes(mountPoint: string): string[] {
  return sh('btrfs', ['subvolume', 'list', mountPoint])
    .split('\n')
    .filter(Boolean)
    .map((l) => l.slice(l.indexOf(' path ') + ' path '.length));
}
