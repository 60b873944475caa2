// Writes a directory tree as a tar stream (docker cp, export, commit): ownership, modes, mtimes,
// symlinks, hard links (once per inode), device nodes and fifos; never follows a symlink.
import { createReadStream, promises as fsp, type Stats } from 'node:fs';
import { join, posix } from 'node:path';
import type { Readable } from 'node:stream';
import tar from 'tar-stream';

export interface TreeEntry { name: string; path: string; st: Stats }

/**
 * Tar of `path` with entries named under `name` ("hosts", "etc/...", or "." for contents).
 * `map` may rename or drop (return null) an entry, e.g. to turn overlay whiteouts into .wh. files.
 */
export function tarTree(path: string, name: string, map?: (e: TreeEntry) => Promise<Partial<tar.Header> | null | undefined>,
  /** Extra entries written right after a directory's own (e.g. an opaque-directory marker). */
  extras?: (e: TreeEntry) => Promise<tar.Header[]>): Readable {
  const pack = tar.pack();
  const seen = new Map<string, string>(); // dev:ino -> first name
  const entry = (h: tar.Header, body?: Readable | Buffer): Promise<void> => new Promise((resolve, reject) => {
    // an entry fails through its callback; its stream's own 'error' (the reader went away, so
    // the pack was destroyed) needs a listener too, or it would end the process
    if (body && !Buffer.isBuffer(body)) {
      const e = pack.entry(h, (err) => (err ? reject(err) : resolve()));
      e.on('error', () => {});
      body.on('error', reject);
      body.pipe(e);
    } else {
      pack.entry(h, body ?? Buffer.alloc(0), (err) => (err ? reject(err) : resolve())).on('error', () => {});
    }
  });
  const walk = async (p: string, n: string): Promise<void> => {
    const st = await fsp.lstat(p);
    const base = { name: n, mode: st.mode & 0o7777, uid: st.uid, gid: st.gid, mtime: st.mtime } as tar.Header;
    const override = map ? await map({ name: n, path: p, st }) : undefined;
    if (override === null) return;
    const h = { ...base, ...(override ?? {}) } as tar.Header;
    if (st.isDirectory()) {
      if (n !== '.' || override) await entry({ ...h, type: 'directory', name: n === '.' ? './' : `${h.name}/` });
      for (const x of extras ? await extras({ name: n, path: p, st }) : []) await entry(x);
      const kids = (await fsp.readdir(p)).sort();
      for (const k of kids) await walk(join(p, k), n === '.' ? k : posix.join(h.name, k));
      return;
    }
    if (h.type && h.type !== 'file') { await entry(h); return; } // the map decided (e.g. a whiteout)
    if (st.nlink > 1 && !st.isDirectory()) {
      const key = `${st.dev}:${st.ino}`;
      const first = seen.get(key);
      if (first) { await entry({ ...h, type: 'link', linkname: first, size: 0 }); return; }
      seen.set(key, h.name);
    }
    if (st.isFile()) await entry({ ...h, type: 'file', size: st.size }, createReadStream(p));
    else if (st.isSymbolicLink()) await entry({ ...h, type: 'symlink', linkname: await fsp.readlink(p) });
    else if (st.isCharacterDevice() || st.isBlockDevice()) {
      await entry({ ...h, type: st.isCharacterDevice() ? 'character-device' : 'block-device', devmajor: Math.floor(st.rdev / 256) & 0xfff, devminor: (st.rdev & 0xff) | ((st.rdev >> 12) & 0xfff00) });
    } else if (st.isFIFO()) await entry({ ...h, type: 'fifo' });
    // sockets are not archived
  };
  walk(path, name).then(() => pack.finalize(), (err) => pack.destroy(err));
  return pack as unknown as Readable;
}

/** Go's os.FileMode bits for a stat, as docker cp's X-Docker-Container-Path-Stat carries them. */
export function goFileMode(st: Stats): number {
  let m = st.mode & 0o777;
  if (st.mode & 0o4000) m |= 1 << 23; // setuid
  if (st.mode & 0o2000) m |= 1 << 22; // setgid
  if (st.mode & 0o1000) m |= 1 << 20; // sticky
  if (st.isDirectory()) m |= 2 ** 31;
  else if (st.isSymbolicLink()) m |= 1 << 27;
  else if (st.isBlockDevice()) m |= 1 << 26;
  else if (st.isCharacterDevice()) m |= (1 << 26) | (1 << 21);
  else if (st.isFIFO()) m |= 1 << 25;
  else if (st.isSocket()) m |= 1 << 24;
  return m >>> 0;
}
