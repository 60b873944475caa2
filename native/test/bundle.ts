// Builds throwaway OCI bundles for native tests: a busybox rootfs (busybox-static with one
// relative symlink per applet) and a config.json the runtime can run as it is.
import { execFileSync } from 'node:child_process';
import { copyFile, mkdir, mkdtemp, rm, symlink, writeFile, access } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export const BUSYBOX = '/bin/busybox';

export interface BundleOptions {
  args: string[];
  terminal?: boolean;
  env?: string[];
  cwd?: string;
  /** Namespaces to create; default pid, mount, ipc, uts, network. */
  namespaces?: string[];
  /** linux.cgroupsPath, e.g. "/berth-test/<id>" (runc: a path under each controller). */
  cgroupsPath?: string;
  /** linux.resources.memory.limit in bytes. */
  memoryLimit?: number;
}

export interface Bundle {
  /** Temp dir holding everything; bundle dir = `${dir}/bundle`. */
  dir: string;
  bundle: string;
  rootfs: string;
  cleanup(): Promise<void>;
}

/** Whether busybox-static is installed (tests skip visibly when it is not). */
export async function haveBusybox(): Promise<boolean> {
  try { await access(BUSYBOX); return true; } catch { return false; }
}

/** Writes a busybox rootfs into `rootfs` (created). */
export async function makeBusyboxRootfs(rootfs: string): Promise<void> {
  for (const d of ['bin', 'proc', 'sys', 'dev', 'tmp', 'etc', 'root']) await mkdir(join(rootfs, d), { recursive: true });
  await copyFile(BUSYBOX, join(rootfs, 'bin/busybox'));
  // `busybox --install -s` would write absolute host paths; relative links work in any root.
  const applets = execFileSync(BUSYBOX, ['--list'], { encoding: 'utf8' }).split('\n').filter((a) => a && a !== 'busybox');
  await Promise.all(applets.map((a) => symlink('busybox', join(rootfs, 'bin', a))));
  await writeFile(join(rootfs, 'etc/passwd'), 'root:x:0:0:root:/root:/bin/sh\n');
  await writeFile(join(rootfs, 'etc/group'), 'root:x:0:\n');
}

const CAPS = ['CAP_CHOWN', 'CAP_DAC_OVERRIDE', 'CAP_FSETID', 'CAP_FOWNER', 'CAP_MKNOD', 'CAP_NET_RAW', 'CAP_SETGID',
  'CAP_SETUID', 'CAP_SETFCAP', 'CAP_SETPCAP', 'CAP_NET_BIND_SERVICE', 'CAP_SYS_CHROOT', 'CAP_KILL', 'CAP_AUDIT_WRITE'];

/** The process part of a config (also what `runtime exec --process` reads). */
export function processSpec(args: string[], o: { terminal?: boolean; env?: string[]; cwd?: string } = {}): object {
  return {
    terminal: !!o.terminal,
    user: { uid: 0, gid: 0 },
    args,
    env: o.env ?? ['PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin', 'HOME=/root'],
    cwd: o.cwd ?? '/',
    capabilities: { bounding: CAPS, effective: CAPS, permitted: CAPS },
    rlimits: [{ type: 'RLIMIT_NOFILE', hard: 1024, soft: 1024 }],
    noNewPrivileges: true,
  };
}

export function bundleConfig(o: BundleOptions): object {
  const namespaces = o.namespaces ?? ['pid', 'mount', 'ipc', 'uts', 'network'];
  return {
    ociVersion: '1.0.2',
    process: processSpec(o.args, o),
    root: { path: 'rootfs', readonly: false },
    hostname: 'berth-test',
    mounts: [
      { destination: '/proc', type: 'proc', source: 'proc' },
      { destination: '/dev', type: 'tmpfs', source: 'tmpfs', options: ['nosuid', 'strictatime', 'mode=755', 'size=65536k'] },
      { destination: '/dev/pts', type: 'devpts', source: 'devpts', options: ['nosuid', 'noexec', 'newinstance', 'ptmxmode=0666', 'mode=0620'] },
      { destination: '/dev/shm', type: 'tmpfs', source: 'shm', options: ['nosuid', 'noexec', 'nodev', 'mode=1777', 'size=65536k'] },
      { destination: '/sys', type: 'sysfs', source: 'sysfs', options: ['nosuid', 'noexec', 'nodev', 'ro'] },
    ],
    linux: {
      namespaces: namespaces.map((type) => ({ type })),
      ...(o.cgroupsPath ? { cgroupsPath: o.cgroupsPath } : {}),
      resources: {
        devices: [{ allow: false, access: 'rwm' }],
        ...(o.memoryLimit ? { memory: { limit: o.memoryLimit, swap: o.memoryLimit } } : {}),
      },
      maskedPaths: ['/proc/kcore', '/proc/keys', '/proc/timer_list', '/sys/firmware'],
      readonlyPaths: ['/proc/bus', '/proc/fs', '/proc/irq', '/proc/sys', '/proc/sysrq-trigger'],
    },
  };
}

/** A fresh bundle in a new temp dir. */
export async function makeBundle(o: BundleOptions): Promise<Bundle> {
  const dir = await mkdtemp(join(tmpdir(), 'berth-bundle-'));
  const bundle = join(dir, 'bundle');
  const rootfs = join(bundle, 'rootfs');
  await makeBusyboxRootfs(rootfs);
  await writeFile(join(bundle, 'config.json'), JSON.stringify(bundleConfig(o), null, 2));
  return { dir, bundle, rootfs, cleanup: () => rm(dir, { recursive: true, force: true }) };
}
