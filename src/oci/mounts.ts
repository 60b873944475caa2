// User mounts of a container (HostConfig.Binds, Mounts of type bind/tmpfs, Tmpfs) as OCI mounts,
// with the Engine's validation messages, option defaults and merge rules.
import { existsSync, mkdirSync } from 'node:fs';
import { posix } from 'node:path';
import { InvalidParameterError } from '../errors.js';
import type { MountSpec } from './docker-types.js';
import type { OciMount } from './runtime-spec.js';

const PROPAGATIONS = new Set(['shared', 'rshared', 'slave', 'rslave', 'private', 'rprivate']);
export const DEFAULT_PROPAGATION = 'rprivate';

/** A user mount before it is placed among the default mounts. */
export interface UserMount extends OciMount { destination: string; propagation?: string }

function checkDestination(kind: string, dst: string): string {
  if (!dst.startsWith('/')) throw new InvalidParameterError(`invalid mount config for type "${kind}": invalid mount path: '${dst}' mount path must be absolute`);
  const clean = posix.normalize(dst).replace(/(.)\/$/, '$1');
  if (clean === '/') throw new InvalidParameterError(`invalid specification: destination can't be '/'`);
  return clean;
}

function bindMount(source: string, destination: string, readOnly: boolean, propagation: string | undefined, recursive = true): UserMount {
  const prop = propagation || DEFAULT_PROPAGATION;
  const options = [recursive ? 'rbind' : 'bind'];
  if (readOnly) options.push('ro');
  options.push(prop);
  return { destination, type: 'bind', source, options, propagation: prop };
}

/**
 * A `-v src:dst[:mode]` bind. Only host paths are supported so far; a missing host directory
 * is created, as the Engine does for Binds (not for Mounts).
 */
export function parseBind(spec: string): UserMount {
  const parts = spec.split(':');
  if (parts.length > 3 || parts.some((p) => p === '')) throw new InvalidParameterError(`invalid volume specification: '${spec}'`);
  if (parts.length === 1) throw new InvalidParameterError(`named volumes are not supported yet (anonymous volume '${spec}')`);
  const [src, dstRaw, mode = ''] = parts;
  if (!src.startsWith('/')) throw new InvalidParameterError(`named volumes are not supported yet (volume "${src}" in '${spec}')`);
  const dst = checkDestination('bind', dstRaw);
  let readOnly = false;
  let propagation: string | undefined;
  let rw = 0;
  for (const m of mode ? mode.split(',') : []) {
    if (m === 'ro' || m === 'rw') { readOnly = m === 'ro'; rw++; } else if (PROPAGATIONS.has(m)) {
      if (propagation) throw new InvalidParameterError(`invalid mode: ${mode}`);
      propagation = m;
    } else if (m === 'z' || m === 'Z' || m === 'nocopy') {
      // SELinux relabel: no SELinux here. nocopy only concerns volumes.
    } else throw new InvalidParameterError(`invalid mode: ${mode}`);
  }
  if (rw > 1) throw new InvalidParameterError(`invalid mode: ${mode}`);
  const source = posix.normalize(src);
  if (!existsSync(source)) mkdirSync(source, { recursive: true, mode: 0o755 });
  return bindMount(source, dst, readOnly, propagation);
}

/** One entry of HostConfig.Mounts. */
export function parseMountSpec(m: MountSpec): UserMount {
  const type = m.Type ?? '';
  const target = m.Target ?? '';
  if (!target) throw new InvalidParameterError(`invalid mount config for type "${type}": field Target must not be empty`);
  switch (type) {
    case 'bind': {
      const dst = checkDestination('bind', target);
      const src = m.Source ?? '';
      if (!src) throw new InvalidParameterError('invalid mount config for type "bind": field Source must not be empty');
      if (!src.startsWith('/')) throw new InvalidParameterError(`invalid mount config for type "bind": invalid mount path: '${src}' mount path must be absolute`);
      const bo = m.BindOptions ?? {};
      if (bo.Propagation && !PROPAGATIONS.has(bo.Propagation)) throw new InvalidParameterError(`invalid mount config for type "bind": invalid propagation mode: ${bo.Propagation}`);
      if (!existsSync(src)) {
        if (!bo.CreateMountpoint) throw new InvalidParameterError(`invalid mount config for type "bind": bind source path does not exist: ${src}`);
        mkdirSync(src, { recursive: true, mode: 0o755 });
      }
      return bindMount(posix.normalize(src), dst, !!m.ReadOnly, bo.Propagation, !bo.NonRecursive);
    }
    case 'tmpfs': {
      const dst = checkDestination('tmpfs', target);
      if (m.Source) throw new InvalidParameterError('invalid mount config for type "tmpfs": field Source must not be specified');
      return tmpfsMount(dst, tmpfsOptionsData(m));
    }
    case 'volume':
      throw new InvalidParameterError('named volumes are not supported yet');
    default:
      throw new InvalidParameterError(`mount type ${JSON.stringify(type)} is not supported`);
  }
}

/** TmpfsOptions as the tmpfs data string: size with the largest exact unit, mode in octal. */
function tmpfsOptionsData(m: MountSpec): string {
  const raw: string[] = [];
  if (m.ReadOnly) raw.push('ro');
  const o = m.TmpfsOptions ?? {};
  if (o.SizeBytes) {
    if (o.SizeBytes < 0) throw new InvalidParameterError('invalid mount config for type "tmpfs": invalid tmpfs size');
    let size = o.SizeBytes, suffix = '';
    for (const [s, d] of [['g', 2 ** 30], ['m', 2 ** 20], ['k', 2 ** 10]] as const) {
      if (size % d === 0) { size /= d; suffix = s; break; }
    }
    raw.push(`size=${size}${suffix}`);
  }
  if (o.Mode) raw.push(`mode=${o.Mode.toString(8)}`);
  for (const opt of o.Options ?? []) raw.push(opt.length > 1 ? `${opt[0]}=${opt[1]}` : opt[0]);
  return raw.join(',');
}

/** A tmpfs at `destination` with the Engine's defaults (noexec,nosuid,nodev,rprivate) under `data`. */
export function tmpfsMount(destination: string, data: string): UserMount {
  const options = mergeTmpfsOptions(['noexec', 'nosuid', 'nodev', DEFAULT_PROPAGATION, ...(data ? data.split(',') : [])]);
  return { destination, type: 'tmpfs', source: 'tmpfs', options };
}

/** Flag options and their opposites, for "the later one wins". */
const FLAG_PAIRS: Record<string, string> = {
  ro: 'rw', exec: 'noexec', suid: 'nosuid', dev: 'nodev', sync: 'async', atime: 'noatime',
  diratime: 'nodiratime', relatime: 'norelatime', strictatime: 'nostrictatime', mand: 'nomand',
  dirsync: '', remount: '', bind: '', rbind: '',
};
const FLAG_OPPOSITE = new Map<string, string>();
for (const [a, b] of Object.entries(FLAG_PAIRS)) {
  FLAG_OPPOSITE.set(a, b);
  if (b) FLAG_OPPOSITE.set(b, a);
}
for (const p of PROPAGATIONS) FLAG_OPPOSITE.set(p, '');
const TMPFS_DATA_KEYS = new Set(['size', 'mode', 'uid', 'gid', 'nr_inodes', 'nr_blocks', 'mpol']);

/** Merge tmpfs options right to left: the last flag of a pair and the last key=value win. */
export function mergeTmpfsOptions(options: string[]): string[] {
  const out: string[] = [];
  const seenFlags = new Set<string>();
  const seenKeys = new Set<string>();
  let propagationSeen = false;
  for (let i = options.length - 1; i >= 0; i--) {
    const opt = options[i].trim();
    if (opt === '' || opt === 'defaults') continue;
    if (FLAG_OPPOSITE.has(opt)) {
      if (PROPAGATIONS.has(opt)) {
        if (propagationSeen) continue;
        propagationSeen = true;
      } else {
        const opposite = FLAG_OPPOSITE.get(opt)!;
        if (seenFlags.has(opt) || (opposite && seenFlags.has(opposite))) continue;
        seenFlags.add(opt);
      }
      out.unshift(opt);
      continue;
    }
    const eq = opt.indexOf('=');
    const key = eq < 0 ? opt : opt.slice(0, eq);
    if (eq < 0 || !TMPFS_DATA_KEYS.has(key)) throw new InvalidParameterError(`invalid tmpfs option ["${opt}"]`);
    if (seenKeys.has(key)) continue;
    seenKeys.add(key);
    out.unshift(opt);
  }
  return out;
}

/** All user mounts of a HostConfig, checked for duplicate destinations ("Duplicate mount point"). */
export function userMounts(h: { Binds?: string[] | null; Mounts?: MountSpec[] | null; Tmpfs?: Record<string, string> | null }): UserMount[] {
  const out: UserMount[] = [];
  const seen = new Set<string>();
  const add = (m: UserMount): void => {
    if (seen.has(m.destination)) throw new InvalidParameterError(`Duplicate mount point: ${m.destination}`);
    seen.add(m.destination);
    out.push(m);
  };
  for (const b of h.Binds ?? []) add(parseBind(b));
  for (const m of h.Mounts ?? []) add(parseMountSpec(m));
  for (const [dst, data] of Object.entries(h.Tmpfs ?? {})) add(tmpfsMount(checkDestination('tmpfs', dst), data ?? ''));
  return out;
}

/** Parents before children: sort by path depth, stable (the Engine's sortMounts). */
export function sortByDepth<T extends { destination: string }>(mounts: T[]): T[] {
  const depth = (p: string): number => posix.normalize(p).split('/').filter(Boolean).length;
  return mounts.map((m, i) => ({ m, i })).sort((a, b) => depth(a.m.destination) - depth(b.m.destination) || a.i - b.i).map((x) => x.m);
}
