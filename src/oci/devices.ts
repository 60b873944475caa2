// Host device nodes for a container: `--device` mappings and, for --privileged, every device
// under the host's /dev. Reads the host (stat), like the Engine does at spec time.
import { lstatSync, readdirSync, realpathSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { InvalidParameterError } from '../errors.js';
import type { OciDevice, OciDeviceRule } from './runtime-spec.js';

/** Linux's dev_t split (glibc major()/minor()). */
function splitDev(rdev: bigint): { major: number; minor: number } {
  const major = Number(((rdev >> 8n) & 0xfffn) | ((rdev >> 32n) & ~0xfffn));
  const minor = Number((rdev & 0xffn) | ((rdev >> 12n) & ~0xffn));
  return { major, minor };
}

/** The device node at `hostPath` (not following a final symlink), or undefined if it is not one. */
export function deviceFromPath(hostPath: string, containerPath = hostPath): OciDevice | undefined {
  let st;
  try { st = lstatSync(hostPath, { bigint: true }); } catch { return undefined; }
  const type = st.isCharacterDevice() ? 'c' : st.isBlockDevice() ? 'b' : undefined;
  if (!type) return undefined;
  return { type, path: containerPath, ...splitDev(st.rdev), fileMode: Number(st.mode & 0o7777n), uid: Number(st.uid), gid: Number(st.gid) };
}

/** Directories of /dev the runtime sets up itself or that hold no real devices. */
const SKIP_DIRS = new Set(['pts', 'shm', 'fd', 'mqueue', '.lxc', '.lxd-mounts', '.udev']);

/** Every char/block device under the host's /dev (what --privileged gives a container). */
export function hostDevices(dir = '/dev'): OciDevice[] {
  const out: OciDevice[] = [];
  let entries;
  try { entries = readdirSync(dir, { withFileTypes: true }); } catch { return out; }
  for (const e of entries) {
    const p = join(dir, e.name);
    if (e.isDirectory()) {
      if (!SKIP_DIRS.has(e.name)) out.push(...hostDevices(p));
      continue;
    }
    if (e.name === 'console') continue;
    const d = deviceFromPath(p);
    if (d) out.push(d);
  }
  return out;
}

export interface DeviceMappingInput { PathOnHost?: string; PathInContainer?: string; CgroupPermissions?: string }

/**
 * A `--device` mapping: one device, or all devices under a host directory, plus the cgroup rules
 * that allow them with the given permissions (default "rwm").
 */
export function devicesFromMapping(m: DeviceMappingInput): { devices: OciDevice[]; rules: OciDeviceRule[] } {
  const hostPath = m.PathOnHost ?? '';
  const inContainer = m.PathInContainer || hostPath;
  const access = m.CgroupPermissions || 'rwm';
  if (!/^[rwm]+$/.test(access)) throw new InvalidParameterError(`invalid device cgroup permissions: ${access}`);
  let resolved = hostPath;
  try { if (lstatSync(hostPath).isSymbolicLink()) resolved = realpathSync(hostPath); } catch { /* reported below */ }
  const devices: OciDevice[] = [];
  const one = deviceFromPath(resolved, inContainer);
  if (one) devices.push(one);
  else {
    let isDir = false;
    try { isDir = statSync(resolved).isDirectory(); } catch { /* not there */ }
    if (isDir) {
      for (const d of hostDevices(resolved)) devices.push({ ...d, path: inContainer + d.path.slice(resolved.length) });
    }
  }
  if (devices.length === 0) {
    throw new InvalidParameterError(`error gathering device information while adding custom device "${hostPath}": not a device node`);
  }
  const rules = devices.map((d): OciDeviceRule => ({ allow: true, type: d.type as 'c' | 'b', major: d.major, minor: d.minor, access }));
  return { devices, rules };
}

/** `--device-cgroup-rule "c 1:3 mr"`, "a *:* rwm", "b 8:* r". */
export function parseDeviceCgroupRule(rule: string): OciDeviceRule {
  const m = /^([acb]) ([0-9]+|\*):([0-9]+|\*) ([rwm]{1,3})$/.exec(rule.trim());
  if (!m) throw new InvalidParameterError(`invalid device cgroup format '${rule}'`);
  const r: OciDeviceRule = { allow: true, type: m[1] as 'a' | 'c' | 'b', access: m[4] };
  if (m[2] !== '*') r.major = Number(m[2]);
  if (m[3] !== '*') r.minor = Number(m[3]);
  return r;
}
