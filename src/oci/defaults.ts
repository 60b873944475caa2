// The Engine's default container security profile and filesystem layout (see WIRE-FACTS.md),
// as data. Functions return fresh copies so callers may mutate what they get.
import type { OciDeviceRule, OciMount } from './runtime-spec.js';

export const OCI_VERSION = '1.1.0';

export const DEFAULT_PATH_ENV = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

/** Docker's default /dev/shm size when HostConfig.ShmSize is 0: 64 MiB. */
export const DEFAULT_SHM_SIZE = 64 * 1024 * 1024;

export const DEFAULT_CGROUP_PARENT = '/berth';

export const DEFAULT_CAPABILITIES: readonly string[] = [
  'CAP_CHOWN', 'CAP_DAC_OVERRIDE', 'CAP_FSETID', 'CAP_FOWNER', 'CAP_MKNOD', 'CAP_NET_RAW',
  'CAP_SETGID', 'CAP_SETUID', 'CAP_SETFCAP', 'CAP_SETPCAP', 'CAP_NET_BIND_SERVICE',
  'CAP_SYS_CHROOT', 'CAP_KILL', 'CAP_AUDIT_WRITE',
];

export function defaultMounts(): OciMount[] {
  return [
    { destination: '/proc', type: 'proc', source: 'proc', options: ['nosuid', 'noexec', 'nodev'] },
    { destination: '/dev', type: 'tmpfs', source: 'tmpfs', options: ['nosuid', 'strictatime', 'mode=755', 'size=65536k'] },
    { destination: '/dev/pts', type: 'devpts', source: 'devpts', options: ['nosuid', 'noexec', 'newinstance', 'ptmxmode=0666', 'mode=0620', 'gid=5'] },
    { destination: '/sys', type: 'sysfs', source: 'sysfs', options: ['nosuid', 'noexec', 'nodev', 'ro'] },
    { destination: '/sys/fs/cgroup', type: 'cgroup', source: 'cgroup', options: ['ro', 'nosuid', 'noexec', 'nodev'] },
    { destination: '/dev/mqueue', type: 'mqueue', source: 'mqueue', options: ['nosuid', 'noexec', 'nodev'] },
    { destination: '/dev/shm', type: 'tmpfs', source: 'shm', options: ['nosuid', 'noexec', 'nodev', 'mode=1777'] },
  ];
}

const BASE_MASKED_PATHS = [
  '/proc/acpi', '/proc/asound', '/proc/interrupts', '/proc/kcore', '/proc/keys', '/proc/latency_stats',
  '/proc/sched_debug', '/proc/scsi', '/proc/timer_list', '/proc/timer_stats',
  '/sys/devices/virtual/powercap', '/sys/firmware',
];

/** Masked paths; `thermalThrottleDirs` are the host's existing per-cpu thermal_throttle dirs. */
export function defaultMaskedPaths(thermalThrottleDirs: string[] = []): string[] {
  return [...BASE_MASKED_PATHS, ...thermalThrottleDirs];
}

export function defaultReadonlyPaths(): string[] {
  return ['/proc/bus', '/proc/fs', '/proc/irq', '/proc/sys', '/proc/sysrq-trigger'];
}

const c = (major: number, minor: number | undefined, access = 'rwm', allow = true): OciDeviceRule =>
  minor === undefined ? { allow, type: 'c', major, access } : { allow, type: 'c', major, minor, access };

/**
 * Device cgroup rules: deny everything, then the Engine's allow list (null, zero, random, urandom,
 * tty, console; fuse denied), then what runc/crun add for the OCI default devices (full, ptmx,
 * the pty slaves) and mknod of any node, so the result does not depend on the runtime.
 */
export function defaultDeviceRules(): OciDeviceRule[] {
  return [
    { allow: false, access: 'rwm' },
    c(1, 5), c(1, 3), c(1, 9), c(1, 8), c(5, 0), c(5, 1), c(10, 229, 'rwm', false),
    c(1, 7), c(5, 2), c(136, undefined),
    { allow: true, type: 'c', access: 'm' }, { allow: true, type: 'b', access: 'm' },
  ];
}

/** Sysctls the Engine sets when the container gets its own network namespace. */
export function defaultNetworkSysctls(): Record<string, string> {
  return { 'net.ipv4.ping_group_range': '0 2147483647', 'net.ipv4.ip_unprivileged_port_start': '0' };
}

/** Namespaced sysctls a container may set (the Engine/runc allow list), by the namespace they need. */
export const IPC_SYSCTLS: readonly string[] = [
  'kernel.msgmax', 'kernel.msgmnb', 'kernel.msgmni', 'kernel.sem', 'kernel.shmall', 'kernel.shmmax',
  'kernel.shmmni', 'kernel.shm_rmid_forced',
];
export const IPC_SYSCTL_PREFIXES: readonly string[] = ['fs.mqueue.'];
export const NET_SYSCTL_PREFIXES: readonly string[] = ['net.'];
export const UTS_SYSCTLS: readonly string[] = ['kernel.domainname', 'kernel.hostname'];
