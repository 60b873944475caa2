// Capability sets: the Engine's CapAdd/CapDrop/Privileged rules over the kernel's known capabilities.
import { readFileSync } from 'node:fs';
import { InvalidParameterError } from '../errors.js';

/** Every capability Linux defines, in number order (0..40). */
export const ALL_CAPABILITIES: readonly string[] = [
  'CAP_CHOWN', 'CAP_DAC_OVERRIDE', 'CAP_DAC_READ_SEARCH', 'CAP_FOWNER', 'CAP_FSETID', 'CAP_KILL',
  'CAP_SETGID', 'CAP_SETUID', 'CAP_SETPCAP', 'CAP_LINUX_IMMUTABLE', 'CAP_NET_BIND_SERVICE',
  'CAP_NET_BROADCAST', 'CAP_NET_ADMIN', 'CAP_NET_RAW', 'CAP_IPC_LOCK', 'CAP_IPC_OWNER', 'CAP_SYS_MODULE',
  'CAP_SYS_RAWIO', 'CAP_SYS_CHROOT', 'CAP_SYS_PTRACE', 'CAP_SYS_PACCT', 'CAP_SYS_ADMIN', 'CAP_SYS_BOOT',
  'CAP_SYS_NICE', 'CAP_SYS_RESOURCE', 'CAP_SYS_TIME', 'CAP_SYS_TTY_CONFIG', 'CAP_MKNOD', 'CAP_LEASE',
  'CAP_AUDIT_WRITE', 'CAP_AUDIT_CONTROL', 'CAP_SETFCAP', 'CAP_MAC_OVERRIDE', 'CAP_MAC_ADMIN', 'CAP_SYSLOG',
  'CAP_WAKE_ALARM', 'CAP_BLOCK_SUSPEND', 'CAP_AUDIT_READ', 'CAP_PERFMON', 'CAP_BPF', 'CAP_CHECKPOINT_RESTORE',
];

let kernelCaps: string[] | undefined;

/** The capabilities this kernel supports (up to /proc/sys/kernel/cap_last_cap). */
export function kernelCapabilities(): string[] {
  if (!kernelCaps) {
    let last = ALL_CAPABILITIES.length - 1;
    try {
      const n = Number(readFileSync('/proc/sys/kernel/cap_last_cap', 'utf8').trim());
      if (Number.isInteger(n) && n >= 0) last = Math.min(n, last);
    } catch { /* not Linux or /proc missing: assume all known */ }
    kernelCaps = ALL_CAPABILITIES.slice(0, last + 1);
  }
  return [...kernelCaps];
}

/** "net_admin", "CAP_NET_ADMIN", "all" -> canonical names; unknown names are a 400 like the Engine's. */
export function normalizeCapabilities(names: readonly string[]): string[] {
  const known = new Set(kernelCapabilities());
  return names.map((raw) => {
    let n = raw.toUpperCase();
    if (n === 'ALL') return n;
    if (!n.startsWith('CAP_')) n = `CAP_${n}`;
    if (!ALL_CAPABILITIES.includes(n)) throw new InvalidParameterError(`unknown capability: "${n}"`);
    if (!known.has(n)) throw new InvalidParameterError(`capability not supported by your kernel or not available in the current environment: "${n}"`);
    return n;
  });
}

/** The container's capability set from the defaults, CapAdd, CapDrop and Privileged, as the Engine computes it. */
export function tweakCapabilities(base: readonly string[], add: readonly string[] = [], drop: readonly string[] = [], privileged = false): string[] {
  if (privileged) return kernelCapabilities();
  if (add.length === 0 && drop.length === 0) return [...base];
  const dropN = normalizeCapabilities(drop);
  const addN = normalizeCapabilities(add);
  let caps: string[];
  if (addN.includes('ALL')) caps = kernelCapabilities().filter((cap) => !dropN.includes(cap));
  else if (dropN.includes('ALL')) caps = addN;
  else caps = [...base.filter((cap) => !dropN.includes(cap)), ...addN];
  return [...new Set(caps)];
}
