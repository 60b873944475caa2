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

let availableCaps: string[] | undefined;

/**
 * The capabilities the daemon itself holds (CapEff of /proc/self/status), which is what the
 * Engine offers as "ALL": a runtime cannot grant more. Falls back to the kernel's cap_last_cap.
 */
export function availableCapabilities(): string[] {
  if (!availableCaps) {
    try {
      const status = readFileSync('/proc/self/status', 'utf8');
      const hex = /^CapEff:\s*([0-9a-f]+)$/m.exec(status)?.[1];
      if (hex) {
        const mask = BigInt(`0x${hex}`);
        availableCaps = ALL_CAPABILITIES.filter((_, bit) => (mask >> BigInt(bit)) & 1n);
      }
    } catch { /* not Linux */ }
    if (!availableCaps) {
      let last = ALL_CAPABILITIES.length - 1;
      try {
        const n = Number(readFileSync('/proc/sys/kernel/cap_last_cap', 'utf8').trim());
        if (Number.isInteger(n) && n >= 0) last = Math.min(n, last);
      } catch { /* assume all known */ }
      availableCaps = ALL_CAPABILITIES.slice(0, last + 1);
    }
  }
  return [...availableCaps];
}

/** "net_admin", "CAP_NET_ADMIN", "all" -> canonical names; unknown names are a 400 like the Engine's. */
export function normalizeCapabilities(names: readonly string[]): string[] {
  const known = new Set(availableCapabilities());
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
  if (privileged) return availableCapabilities();
  if (add.length === 0 && drop.length === 0) return [...base];
  const dropN = normalizeCapabilities(drop);
  const addN = normalizeCapabilities(add);
  let caps: string[];
  if (addN.includes('ALL')) caps = availableCapabilities().filter((cap) => !dropN.includes(cap));
  else if (dropN.includes('ALL')) caps = addN;
  else caps = [...base.filter((cap) => !dropN.includes(cap)), ...addN];
  return [...new Set(caps)];
}
