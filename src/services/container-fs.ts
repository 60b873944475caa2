// A container's files from the outside: docker cp (archive GET/HEAD/PUT), export, diff, and the
// layer a commit makes. Paths are resolved as the container sees them: symlinks are followed
// inside its root (an absolute target restarts at the container's root, `..` never climbs out)
// and paths under a volume or bind mount go to its source. Stopped containers get their rootfs
// mounted for the operation.
import { promises as fsp, type Stats } from 'node:fs';
import { execFile } from 'node:child_process';
import { join, posix } from 'node:path';
import type { Readable } from 'node:stream';
import { InvalidParameterError, NotFoundError } from '../errors.js';
import type { ContainerRecord } from '../store/containers.js';
import { extractLayer, UnsafeArchiveError } from '../oci/tar-extract.js';
import { goFileMode, tarTree } from '../oci/tar-create.js';
import { isMounted, mountRootfs, rootfsPaths, unmountRootfs, walkInRoot } from './rootfs.js';

export interface PathStat { name: string; size: number; mode: number; mtime: string; linkTarget: string }

export interface FsDeps {
  containerDir(id: string): string;
  layerDirs(imageId: string): string[];
  isRunning(id: string): boolean;
}


/**
 * Mount points the runtime creates in the rw layer (the Engine keeps them in a separate init
 * layer): left out of docker diff and commit while they are empty stubs.
 */
const INIT_STUBS = new Set(['dev', 'dev/pts', 'dev/shm', 'dev/mqueue', 'dev/console', 'proc', 'sys', 'etc/hosts', 'etc/hostname', 'etc/resolv.conf', 'etc/mtab', '.dockerenv']);

async function isInitStub(rel: string, st: Stats, path: string): Promise<boolean> {
  if (!INIT_STUBS.has(rel)) return false;
  if (st.isFile()) return st.size === 0;
  if (st.isDirectory()) return (await fsp.readdir(path)).every((n) => INIT_STUBS.has(posix.join(rel, n)));
  return false;
}

export class ContainerFs {
  constructor(private readonly deps: FsDeps) {}

  /** Runs fn with the container's merged root mounted; unmounts afterwards if it was not. */
  private async withRoot<T>(rec: ContainerRecord, fn: (root: string) => Promise<T>): Promise<T> {
    const dir = this.deps.containerDir(rec.Id);
    const merged = rootfsPaths(dir).merged;
    const wasMounted = await isMounted(merged);
    if (!wasMounted) await mountRootfs(dir, this.deps.layerDirs(rec.Image));
    try {
      return await fn(merged);
    } finally {
      if (!wasMounted && !this.deps.isRunning(rec.Id)) await unmountRootfs(dir).catch(() => {});
    }
  }

  /** Host path for a container path that has no symlinks left in it (mount points mapped). */
  private hostPath(rec: ContainerRecord, root: string, cpath: string): string {
    const mounts = (rec.MountPoints ?? []).filter((m) => m.Type !== 'tmpfs' && m.Source)
      .sort((a, b) => b.Destination.length - a.Destination.length);
    for (const m of mounts) {
      if (cpath === m.Destination || cpath.startsWith(m.Destination + '/')) return join(m.Source, cpath.slice(m.Destination.length));
    }
    return join(root, cpath);
  }

  /**
   * Resolves a container path to [container path, host path], following symlinks inside the
   * container (the last component only when followLast). A missing component ends the walk.
   */
  private resolve(rec: ContainerRecord, root: string, path: string, followLast: boolean): Promise<{ cpath: string; host: string; missing: boolean }> {
    return walkInRoot(path, { hostOf: (c) => this.hostPath(rec, root, c), followLast });
  }


  private notFound(rec: ContainerRecord, path: string): NotFoundError {
    return new NotFoundError(`Could not find the file ${path} in container ${rec.Name.slice(1)}`);
  }

  private static statOf(name: string, st: Stats, linkTarget: string): PathStat {
    return { name, size: st.size, mode: goFileMode(st), mtime: st.mtime.toISOString(), linkTarget };
  }

  /** HEAD /archive: what docker cp learns about the source or destination path. */
  async stat(rec: ContainerRecord, path: string): Promise<PathStat> {
    if (!path) throw new InvalidParameterError('path must not be empty');
    return this.withRoot(rec, async (root) => {
      const r = await this.resolve(rec, root, path, false);
      if (r.missing) throw this.notFound(rec, path);
      const st = await fsp.lstat(r.host);
      let linkTarget = '';
      if (st.isSymbolicLink()) {
        const t = await this.resolve(rec, root, r.cpath, true);
        linkTarget = t.cpath;
      }
      return ContainerFs.statOf(posix.basename(r.cpath) || '/', st, linkTarget);
    });
  }

  /**
   * GET /archive: the stat and a tar of the path, entries named after its base name ("." when
   * the path ends in "/.", to copy a directory's contents). The rootfs stays mounted until the
   * stream ends.
   */
  async archive(rec: ContainerRecord, path: string): Promise<{ stat: PathStat; stream: Readable }> {
    if (!path) throw new InvalidParameterError('path must not be empty');
    const dir = this.deps.containerDir(rec.Id);
    const merged = rootfsPaths(dir).merged;
    const wasMounted = await isMounted(merged);
    if (!wasMounted) await mountRootfs(dir, this.deps.layerDirs(rec.Image));
    const release = async () => { if (!wasMounted && !this.deps.isRunning(rec.Id)) await unmountRootfs(dir).catch(() => {}); };
    try {
      const contents = /\/\.$/.test(path);
      const followLast = contents || path.endsWith('/');
      const r = await this.resolve(rec, merged, path, followLast);
      if (r.missing) throw this.notFound(rec, path);
      const st = await fsp.lstat(r.host);
      if (followLast && !st.isDirectory()) throw new InvalidParameterError(`not a directory: ${path}`);
      const name = contents ? '.' : posix.basename(r.cpath) || '.';
      const stream = tarTree(r.host, name);
      stream.on('close', () => { void release(); });
      stream.on('end', () => { void release(); });
      return { stat: ContainerFs.statOf(posix.basename(r.cpath) || '/', st, ''), stream };
    } catch (err) {
      await release();
      throw err;
    }
  }

  /** PUT /archive: extracts an untrusted tar into a directory of the container. */
  async extract(rec: ContainerRecord, path: string, input: Readable, o: { noOverwriteDirNonDir: boolean; copyUIDGID: boolean }): Promise<void> {
    if (!path) throw new InvalidParameterError('path must not be empty');
    if (rec.HostConfig.ReadonlyRootfs) {
      // the Engine refuses unless the destination is on a writable volume; keep it simple and safe
      const onVolume = (rec.MountPoints ?? []).some((m) => m.RW && (path === m.Destination || path.startsWith(m.Destination + '/')));
      if (!onVolume) throw new InvalidParameterError('container rootfs is marked read-only');
    }
    await this.withRoot(rec, async (root) => {
      const r = await this.resolve(rec, root, path, true);
      if (r.missing) throw this.notFound(rec, path);
      const st = await fsp.stat(r.host);
      if (!st.isDirectory()) throw new InvalidParameterError('extraction point is not a directory');
      try {
        await extractLayer(input, r.host, { whiteouts: false, noOverwriteDirNonDir: o.noOverwriteDirNonDir, owner: o.copyUIDGID ? undefined : { uid: 0, gid: 0 } });
      } catch (err: any) {
        if (err instanceof UnsafeArchiveError || /tar|header|Unexpected end/i.test(String(err?.message))) throw new InvalidParameterError(`error extracting the archive: ${err.message}`);
        throw err;
      }
    });
  }

  /** docker export: the merged root filesystem (without volumes), as a tar. */
  async export(rec: ContainerRecord): Promise<Readable> {
    const dir = this.deps.containerDir(rec.Id);
    const merged = rootfsPaths(dir).merged;
    const wasMounted = await isMounted(merged);
    if (!wasMounted) await mountRootfs(dir, this.deps.layerDirs(rec.Image));
    const stream = tarTree(merged, '.');
    const release = () => { if (!wasMounted && !this.deps.isRunning(rec.Id)) void unmountRootfs(dir).catch(() => {}); };
    stream.on('end', release);
    stream.on('close', release);
    return stream;
  }

  /** docker diff: what the container's rw layer added (1), changed (0) or deleted (2). */
  async changes(rec: ContainerRecord): Promise<Array<{ Path: string; Kind: number }>> {
    const upper = rootfsPaths(this.deps.containerDir(rec.Id)).upper;
    const lowers = this.deps.layerDirs(rec.Image);
    const out: Array<{ Path: string; Kind: number }> = [];
    const inLower = async (rel: string) => {
      for (const l of lowers) if (await fsp.lstat(join(l, rel)).then(() => true, () => false)) return true;
      return false;
    };
    const walk = async (rel: string): Promise<void> => {
      for (const name of (await fsp.readdir(join(upper, rel)).catch(() => [] as string[])).sort()) {
        const r = posix.join(rel, name);
        const st = await fsp.lstat(join(upper, r));
        if (st.isCharacterDevice() && st.rdev === 0) { out.push({ Path: '/' + r, Kind: 2 }); continue; }
        if (!(await inLower(r)) && await isInitStub(r, st, join(upper, r))) continue;
        out.push({ Path: '/' + r, Kind: (await inLower(r)) ? 0 : 1 });
        if (st.isDirectory()) await walk(r);
      }
    };
    await walk('');
    return out;
  }

  /** The container's rw layer as an image layer tar: overlay whiteouts become .wh. entries. */
  layerTar(rec: ContainerRecord): Readable {
    const upper = rootfsPaths(this.deps.containerDir(rec.Id)).upper;
    const lowers = this.deps.layerDirs(rec.Image);
    return tarTree(upper, '.', async (e) => {
      if (await isInitStub(e.name, e.st, e.path)) {
        let inLower = false;
        for (const l of lowers) if (await fsp.lstat(join(l, e.name)).then(() => true, () => false)) inLower = true;
        if (!inLower) return null;
      }
      if (e.st.isCharacterDevice() && e.st.rdev === 0) {
        return { name: posix.join(posix.dirname(e.name), `.wh.${posix.basename(e.name)}`), type: 'file', size: 0, mode: 0o600 };
      }
      return undefined;
    }, async (e) => {
      // an opaque directory (everything below replaced): the .wh..wh..opq marker inside it
      if (e.name === '.' || !(await isOpaque(e.path))) return [];
      return [{ name: posix.join(e.name, '.wh..wh..opq'), type: 'file', size: 0, mode: 0o600, uid: 0, gid: 0, mtime: e.st.mtime } as any];
    });
  }
}

function isOpaque(dir: string): Promise<boolean> {
  return new Promise((resolve) => {
    execFile('getfattr', ['-h', '--only-values', '-n', 'trusted.overlay.opaque', dir], (err, out) => resolve(!err && String(out).trim() === 'y'));
  });
}
