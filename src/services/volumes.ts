// VolumeService: named and anonymous volumes of the local driver (plain directories, or a mount
// made from the type/device/o options while a container uses it), and the resolution of a
// container's -v / --mount / image VOLUME / --volumes-from into mount points.
import { randomBytes } from 'node:crypto';
import { execFile } from 'node:child_process';
import { readdir, realpath } from 'node:fs/promises';
import { posix } from 'node:path';
import { promisify } from 'node:util';
import { ConflictError, InvalidParameterError, NotFoundError, SystemError } from '../errors.js';
import { VolumeStore, type VolumeRecord } from '../store/volumes.js';
import type { MountPoint } from '../store/containers.js';
import { parseBind, parseMountSpec } from '../oci/mounts.js';
import type { MountSpec } from '../oci/docker-types.js';
import { treeSize } from './container-size.js';
import type { EventPublisher } from './containers.js';

const run = promisify(execFile);

const NAME_RE = /^[a-zA-Z0-9][a-zA-Z0-9_.-]+$/;
const DRIVER_OPTS = new Set(['type', 'device', 'o', 'size']);
export const ANONYMOUS_LABEL = 'com.docker.volume.anonymous';

export type { MountPoint };

export interface VolumeView {
  CreatedAt: string; Driver: string; Labels: Record<string, string>; Mountpoint: string; Name: string;
  Options: Record<string, string> | null; Scope: 'local'; UsageData?: { Size: number; RefCount: number };
}

export class VolumeService {
  private readonly mounted = new Map<string, number>(); // name -> containers using an options mount
  private usersOf: (name: string) => string[] = () => [];

  constructor(private readonly store: VolumeStore, private readonly events: EventPublisher) {}

  async init(): Promise<void> { await this.store.load(); }

  /** Which containers (IDs) use a volume: set by the container service. */
  setUsageChecker(fn: (name: string) => string[]): void { this.usersOf = fn; }

  dataDir(name: string): string { return this.store.dataDir(name); }

  private publish(rec: VolumeRecord, action: string, extra: Record<string, string> = {}): void {
    this.events.publish({ Type: 'volume', Action: action, Actor: { ID: rec.Name, Attributes: { driver: rec.Driver, ...extra } } });
  }

  view(rec: VolumeRecord): VolumeView {
    return {
      CreatedAt: rec.CreatedAt, Driver: rec.Driver, Labels: rec.Labels, Mountpoint: this.store.dataDir(rec.Name),
      Name: rec.Name, Options: Object.keys(rec.Options).length ? rec.Options : null, Scope: 'local',
    };
  }

  get(name: string): VolumeRecord {
    const rec = this.store.get(name);
    if (!rec) throw new NotFoundError(`get ${name}: no such volume`);
    return rec;
  }

  inspect(name: string): VolumeView { return this.view(this.get(name)); }

  async create(body: { Name?: string; Driver?: string; DriverOpts?: Record<string, string> | null; Labels?: Record<string, string> | null }, anonymous = false): Promise<VolumeView> {
    const name = body.Name || randomBytes(32).toString('hex');
    if (!NAME_RE.test(name)) {
      throw new InvalidParameterError(`create ${name}: "${name}" includes invalid characters for a local volume name, only "[a-zA-Z0-9][a-zA-Z0-9_.-]" are allowed. If you intended to pass a host directory, use absolute path`);
    }
    const driver = body.Driver || 'local';
    if (driver !== 'local') throw new NotFoundError(`create ${name}: error looking up volume plugin ${driver}: plugin "${driver}" not found`);
    const existing = this.store.get(name);
    if (existing) return this.view(existing); // as the Engine: creating an existing volume returns it
    const opts = { ...(body.DriverOpts ?? {}) };
    for (const k of Object.keys(opts)) if (!DRIVER_OPTS.has(k)) throw new InvalidParameterError(`create ${name}: invalid option key: "${k}"`);
    if ((opts.type || opts.device) && !(opts.type && opts.device)) {
      throw new InvalidParameterError(`create ${name}: missing required option: "${opts.type ? 'device' : 'type'}"`);
    }
    const labels = { ...(body.Labels ?? {}) };
    if (anonymous) labels[ANONYMOUS_LABEL] = '';
    const rec: VolumeRecord = {
      Name: name, Driver: 'local', CreatedAt: new Date().toISOString().replace(/\.\d+Z$/, 'Z'),
      Labels: labels, Options: opts, Anonymous: anonymous,
    };
    await this.store.create(rec);
    this.publish(rec, 'create');
    return this.view(rec);
  }

  list(filters: Record<string, string[]> = {}): { Volumes: VolumeView[]; Warnings: string[] } {
    for (const k of Object.keys(filters)) {
      if (!['dangling', 'driver', 'label', 'name'].includes(k)) throw new InvalidParameterError(`invalid filter '${k}'`);
    }
    const dangling = filters.dangling?.[0];
    if (dangling !== undefined && !['true', 'false', '1', '0'].includes(dangling)) throw new InvalidParameterError(`invalid filter 'dangling=${dangling}'`);
    const vols = this.store.all().filter((v) => {
      const used = this.usersOf(v.Name).length > 0;
      if (dangling !== undefined && (dangling === 'true' || dangling === '1') === used) return false;
      if (filters.driver?.length && !filters.driver.includes(v.Driver)) return false;
      if (filters.name?.length && !filters.name.some((n) => v.Name.includes(n))) return false;
      if (filters.label?.length && !filters.label.every((l) => labelMatches(v.Labels, l))) return false;
      return true;
    });
    return { Volumes: vols.map((v) => this.view(v)), Warnings: [] };
  }

  async remove(name: string, force = false): Promise<void> {
    const rec = this.store.get(name);
    if (!rec) {
      if (force) return;
      throw new NotFoundError(`get ${name}: no such volume`);
    }
    const users = this.usersOf(name);
    if (users.length) throw new ConflictError(`remove ${name}: volume is in use - [${users.join(', ')}]`);
    await this.unmountOptions(rec, true);
    await this.store.remove(name);
    this.publish(rec, 'destroy');
  }

  async prune(filters: Record<string, string[]> = {}): Promise<{ VolumesDeleted: string[]; SpaceReclaimed: number }> {
    for (const k of Object.keys(filters)) if (!['label', 'label!', 'all'].includes(k)) throw new InvalidParameterError(`invalid filter '${k}'`);
    const all = ['true', '1'].includes(filters.all?.[0] ?? '');
    const deleted: string[] = [];
    let space = 0;
    for (const v of this.store.all()) {
      if (!all && !v.Anonymous) continue;
      if (this.usersOf(v.Name).length) continue;
      if (filters.label?.length && !filters.label.every((l) => labelMatches(v.Labels, l))) continue;
      if (filters['label!']?.length && filters['label!'].some((l) => labelMatches(v.Labels, l))) continue;
      const size = await treeSize(this.store.dataDir(v.Name));
      await this.remove(v.Name).then(() => { deleted.push(v.Name); space += size; }, () => {});
    }
    this.events.publish({ Type: 'volume', Action: 'prune', Actor: { ID: '', Attributes: { reclaimed: String(space) } } });
    return { VolumesDeleted: deleted, SpaceReclaimed: space };
  }

  /** For /system/df: every volume with its size and how many containers use it. */
  async usage(): Promise<VolumeView[]> {
    const out: VolumeView[] = [];
    for (const v of this.store.all()) {
      out.push({ ...this.view(v), UsageData: { Size: await treeSize(this.store.dataDir(v.Name)), RefCount: this.usersOf(v.Name).length } });
    }
    return out;
  }

  // ---- containers ------------------------------------------------------------------------

  /**
   * The mount points of a new container: -v binds and volumes, --mount entries, --volumes-from
   * (mount points of other containers), then the image's VOLUME paths not already covered, as
   * anonymous volumes. Named volumes are created when missing. Validation errors are 400s.
   */
  async resolve(h: { Binds?: string[] | null; Mounts?: MountSpec[] | null; VolumesFrom?: string[] | null }, imageVolumes: Record<string, unknown> | null | undefined,
    mountsOf: (container: string) => MountPoint[]): Promise<MountPoint[]> {
    const out: MountPoint[] = [];
    const taken = new Set<string>();
    const add = (m: MountPoint): void => {
      if (taken.has(m.Destination)) throw new InvalidParameterError(`Duplicate mount point: ${m.Destination}`);
      taken.add(m.Destination);
      out.push(m);
    };
    const volumeWanted: { mp: MountPoint; opts?: { DriverConfig?: { Name?: string; Options?: Record<string, string> }; Labels?: Record<string, string> } }[] = [];

    for (const spec of h.Binds ?? []) {
      const parts = spec.split(':');
      if (parts.length === 1 || parts[0]!.startsWith('/')) {
        if (parts.length === 1) { // -v /path: anonymous volume
          const dst = checkDst(parts[0]!, spec);
          const mp: MountPoint = { Type: 'volume', Name: '', Source: '', Destination: dst, Driver: 'local', Mode: '', RW: true, Propagation: '' };
          add(mp); volumeWanted.push({ mp });
          continue;
        }
        const b = parseBind(spec);
        add({ Type: 'bind', Source: b.source!, Destination: b.destination, Mode: parts[2] ?? '', RW: !(b.options ?? []).includes('ro'), Propagation: b.propagation ?? 'rprivate' });
        continue;
      }
      if (parts.length > 3 || parts.some((p) => p === '')) throw new InvalidParameterError(`invalid volume specification: '${spec}'`);
      const [name, dstRaw, mode = ''] = parts as [string, string, string?];
      const dst = checkDst(dstRaw, spec);
      let rw = true, nocopy = false;
      for (const m of mode ? mode.split(',') : []) {
        if (m === 'ro') rw = false; else if (m === 'rw') rw = true; else if (m === 'nocopy') nocopy = true;
        else if (m === 'z' || m === 'Z') { /* SELinux relabel: no SELinux here */ } else throw new InvalidParameterError(`invalid mode: ${mode}`);
      }
      if (!NAME_RE.test(name)) throw new InvalidParameterError(`create ${name}: "${name}" includes invalid characters for a local volume name, only "[a-zA-Z0-9][a-zA-Z0-9_.-]" are allowed. If you intended to pass a host directory, use absolute path`);
      const mp: MountPoint = { Type: 'volume', Name: name, Source: '', Destination: dst, Driver: 'local', Mode: mode ?? '', RW: rw, Propagation: '', NoCopy: nocopy };
      add(mp); volumeWanted.push({ mp });
    }

    for (const m of h.Mounts ?? []) {
      if (m.Type !== 'volume') {
        const u = parseMountSpec(m); // validates, and checks the bind source
        add({ Type: m.Type as 'bind' | 'tmpfs', Source: m.Source ?? '', Destination: u.destination, Mode: '', RW: !m.ReadOnly, Propagation: u.propagation ?? (m.Type === 'bind' ? 'rprivate' : ''), Spec: m });
        continue;
      }
      const target = m.Target ?? '';
      if (!target) throw new InvalidParameterError('invalid mount config for type "volume": field Target must not be empty');
      const dst = checkDst(target, target);
      const vo = (m.VolumeOptions ?? {}) as { NoCopy?: boolean; DriverConfig?: { Name?: string; Options?: Record<string, string> }; Labels?: Record<string, string>; Subpath?: string };
      if (vo.Subpath) throw new InvalidParameterError('invalid mount config for type "volume": volume subpath is not supported by berth');
      if (m.Source && !NAME_RE.test(m.Source)) throw new InvalidParameterError(`invalid mount config for type "volume": invalid volume name "${m.Source}"`);
      const mp: MountPoint = { Type: 'volume', Name: m.Source ?? '', Source: '', Destination: dst, Driver: vo.DriverConfig?.Name || 'local', Mode: 'z', RW: !m.ReadOnly, Propagation: '', NoCopy: !!vo.NoCopy };
      add(mp); volumeWanted.push({ mp, opts: vo });
    }

    for (const from of h.VolumesFrom ?? []) {
      const [ref, mode = ''] = from.split(':');
      if (mode && mode !== 'ro' && mode !== 'rw') throw new InvalidParameterError(`invalid mode for volumes-from: ${mode}`);
      for (const src of mountsOf(ref!)) {
        if (taken.has(src.Destination)) continue;
        add({ ...src, RW: mode ? mode === 'rw' : src.RW, Mode: mode || src.Mode });
      }
    }

    for (const path of Object.keys(imageVolumes ?? {})) {
      const dst = posix.normalize(path).replace(/(.)\/$/, '$1');
      if (taken.has(dst)) continue;
      const mp: MountPoint = { Type: 'volume', Name: '', Source: '', Destination: dst, Driver: 'local', Mode: '', RW: true, Propagation: '' };
      add(mp); volumeWanted.push({ mp });
    }

    for (const { mp, opts } of volumeWanted) {
      const anonymous = !mp.Name;
      const v = mp.Name && this.store.get(mp.Name) ? this.inspect(mp.Name)
        : await this.create({ Name: mp.Name || undefined, Driver: mp.Driver, DriverOpts: opts?.DriverConfig?.Options, Labels: opts?.Labels }, anonymous);
      mp.Name = v.Name;
      mp.Source = v.Mountpoint;
    }
    return out;
  }

  /**
   * Before a container starts: makes each volume ready (options mount), copies the image's
   * content at the destination into an empty volume unless nocopy, and publishes `mount`.
   * `rootfs` is the container's mounted root, for the copy-up.
   */
  async prepare(containerId: string, points: MountPoint[], rootfs: string): Promise<void> {
    for (const mp of points) {
      if (mp.Type !== 'volume' || !mp.Name) continue;
      const rec = this.get(mp.Name);
      await this.mountOptions(rec);
      if (!mp.NoCopy) await this.copyUp(rootfs, mp.Destination, this.store.dataDir(rec.Name));
      this.publish(rec, 'mount', { container: containerId, destination: mp.Destination, 'read/write': String(mp.RW), propagation: mp.Propagation, driver: rec.Driver });
    }
  }

  /** After a container stopped. */
  async release(containerId: string, points: MountPoint[]): Promise<void> {
    for (const mp of points) {
      if (mp.Type !== 'volume' || !mp.Name) continue;
      const rec = this.store.get(mp.Name);
      if (!rec) continue;
      await this.unmountOptions(rec, false);
      this.publish(rec, 'unmount', { container: containerId, driver: rec.Driver });
    }
  }

  /** rm -v / --rm: the container's anonymous volumes that nobody else uses. */
  async removeAnonymous(points: MountPoint[]): Promise<void> {
    for (const mp of points) {
      if (mp.Type !== 'volume' || !mp.Name) continue;
      const rec = this.store.get(mp.Name);
      if (rec?.Anonymous && this.usersOf(rec.Name).length === 0) await this.remove(rec.Name).catch(() => {});
    }
  }

  /** Copy-up: only into an empty volume, from a directory of the image (resolved inside rootfs). */
  private async copyUp(rootfs: string, destination: string, data: string): Promise<void> {
    if ((await readdir(data)).length > 0) return;
    let src: string;
    try { src = await realpath(posix.join(rootfs, destination)); } catch { return; }
    const root = await realpath(rootfs);
    if (src !== root && !src.startsWith(root + '/')) return; // a symlink pointing out of the image: nothing to copy
    try {
      await run('cp', ['-a', '--no-dereference', `${src}/.`, `${data}/`]);
    } catch (err: any) {
      if (/Not a directory|No such file/.test(String(err.stderr))) return;
      throw new SystemError(`copying image content into volume: ${String(err.stderr || err.message).trim()}`);
    }
  }

  private async mountOptions(rec: VolumeRecord): Promise<void> {
    if (!rec.Options.type) return;
    const n = this.mounted.get(rec.Name) ?? 0;
    if (n === 0) {
      const args = ['-t', rec.Options.type];
      if (rec.Options.o) args.push('-o', rec.Options.o);
      args.push(rec.Options.device!, this.store.dataDir(rec.Name));
      try { await run('mount', args); } catch (err: any) {
        throw new SystemError(`error while mounting volume '${this.store.dataDir(rec.Name)}': ${String(err.stderr || err.message).trim()}`);
      }
    }
    this.mounted.set(rec.Name, n + 1);
  }

  private async unmountOptions(rec: VolumeRecord, all: boolean): Promise<void> {
    if (!rec.Options.type) return;
    const n = this.mounted.get(rec.Name) ?? 0;
    if (!all && n > 1) { this.mounted.set(rec.Name, n - 1); return; }
    this.mounted.delete(rec.Name);
    await run('umount', [this.store.dataDir(rec.Name)]).catch(() => run('umount', ['-l', this.store.dataDir(rec.Name)]).catch(() => {}));
  }

  /** After a daemon restart: volumes with options that running containers use are mounted already. */
  adoptMounted(points: MountPoint[]): void {
    for (const mp of points) {
      if (mp.Type === 'volume' && mp.Name && this.store.get(mp.Name)?.Options.type) this.mounted.set(mp.Name, (this.mounted.get(mp.Name) ?? 0) + 1);
    }
  }
}

function checkDst(dst: string, spec: string): string {
  if (!dst.startsWith('/')) throw new InvalidParameterError(`invalid volume specification: '${spec}': invalid mount config for type "volume": invalid mount path: '${dst}' mount path must be absolute`);
  const clean = posix.normalize(dst).replace(/(.)\/$/, '$1');
  if (clean === '/') throw new InvalidParameterError(`invalid specification: destination can't be '/'`);
  return clean;
}

function labelMatches(labels: Record<string, string>, filter: string): boolean {
  const i = filter.indexOf('=');
  if (i < 0) return filter in labels;
  return labels[filter.slice(0, i)] === filter.slice(i + 1);
}

/** The container's mount points as --mount entries for the spec builder (volumes become binds). */
export function mountSpecsFor(points: MountPoint[]): MountSpec[] {
  return points.map((mp): MountSpec => {
    if (mp.Type === 'tmpfs' || (mp.Type === 'bind' && mp.Spec)) return mp.Spec!;
    const propagation = mp.Propagation && mp.Propagation !== 'rprivate' ? mp.Propagation : undefined;
    return {
      Type: 'bind', Source: mp.Source, Target: mp.Destination, ReadOnly: !mp.RW,
      BindOptions: { ...(propagation ? { Propagation: propagation } : {}), CreateMountpoint: mp.Type === 'bind' },
    };
  });
}
