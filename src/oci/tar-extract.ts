// Unpacks one untrusted layer tar into a directory without ever writing outside it.
// Every parent component is checked with lstat (a symlink parent is refused, a missing one is
// created), files are opened O_EXCL|O_NOFOLLOW, hard links must name an entry inside the root,
// and `..`/absolute names are contained or refused. Docker/OCI whiteouts become overlayfs
// whiteouts (char device 0:0, opaque xattr). Returns the diffID (sha256 of the uncompressed tar).
import { constants, promises as fsp } from 'node:fs';
import { createHash } from 'node:crypto';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { join } from 'node:path';
import { Readable, Transform, pipeline } from 'node:stream';
import { createGunzip } from 'node:zlib';
import tar from 'tar-stream';

const run = promisify(execFile);

export class UnsafeArchiveError extends Error {}

export interface ExtractResult { diffId: string; size: number }

/** Splits an entry name into safe components, refusing anything that climbs out of the root. */
export function safeComponents(name: string): string[] {
  if (name.includes('\0')) throw new UnsafeArchiveError(`invalid path in archive: ${JSON.stringify(name)}`);
  const out: string[] = [];
  for (const part of name.split('/')) {
    if (part === '' || part === '.') continue;
    if (part === '..') throw new UnsafeArchiveError(`path escapes the layer: ${JSON.stringify(name)}`);
    out.push(part);
  }
  return out;
}

/** Gunzips when the stream starts with the gzip magic; passes plain tar through. */
export function maybeDecompress(input: Readable): Readable {
  const out = new Transform({ transform(chunk, _enc, cb) { cb(null, chunk); } });
  let head: Buffer = Buffer.alloc(0);
  let decided = false;
  const decide = (): void => {
    decided = true;
    input.removeListener('data', onData);
    input.removeListener('end', onEnd);
    input.pause();
    const src = Readable.from((async function* () { if (head.length) yield head; })());
    const isGzip = head.length >= 2 && head[0] === 0x1f && head[1] === 0x8b;
    if (head.length >= 4 && head.readUInt32LE(0) === 0xfd2fb528) {
      out.destroy(new UnsafeArchiveError('zstd-compressed layers are not supported'));
      return;
    }
    const rest = Readable.from((async function* () { for await (const c of src) yield c; for await (const c of input) yield c; })());
    if (isGzip) pipeline(rest, createGunzip(), out, () => {});
    else pipeline(rest, out, () => {});
  };
  const onData = (c: Buffer): void => { head = Buffer.concat([head, c]); if (head.length >= 4) decide(); };
  const onEnd = (): void => { if (!decided) decide(); };
  input.on('data', onData);
  input.on('end', onEnd);
  input.on('error', (e) => out.destroy(e));
  return out;
}

interface Pending { path: string; mode: number; uid: number; gid: number; mtime?: Date }

/** Walks to the parent of comps inside root, creating missing dirs and refusing symlinked ones. */
async function safeParent(root: string, comps: string[]): Promise<string> {
  let cur = root;
  for (const c of comps.slice(0, -1)) {
    cur = join(cur, c);
    let st;
    try { st = await fsp.lstat(cur); } catch (e: any) {
      if (e.code !== 'ENOENT') throw e;
      await fsp.mkdir(cur, { mode: 0o755 });
      continue;
    }
    if (st.isSymbolicLink()) throw new UnsafeArchiveError(`refusing to write through a symlink: ${comps.join('/')}`);
    if (!st.isDirectory()) throw new UnsafeArchiveError(`path component is not a directory: ${comps.join('/')}`);
  }
  return cur;
}

async function removeExisting(path: string, keepDir: boolean): Promise<boolean> {
  let st;
  try { st = await fsp.lstat(path); } catch { return false; }
  if (keepDir && st.isDirectory()) return true;
  await fsp.rm(path, { recursive: true, force: true });
  return false;
}

async function mknod(path: string, kind: 'c' | 'b' | 'p', major = 0, minor = 0): Promise<void> {
  const args = kind === 'p' ? [path, 'p'] : [path, kind, String(major), String(minor)];
  try { await run('mknod', args); } catch (e: any) {
    throw new Error(`mknod ${path}: ${String(e.stderr || e.message).trim()}`);
  }
}

async function setXattr(path: string, name: string, value: string): Promise<void> {
  try { await run('setfattr', ['-h', '-n', name, '-v', value, path]); } catch (e: any) {
    if (e.code === 'ENOENT') throw new Error('setfattr is not installed (package attr): cannot apply xattrs');
    throw new Error(`setfattr ${name} on ${path}: ${String(e.stderr || e.message).trim()}`);
  }
}

export interface ExtractOptions {
  /** Docker/OCI whiteouts become overlay whiteouts (layers); off for docker cp. */
  whiteouts?: boolean;
  /** docker cp's noOverwriteDirNonDir: refuse to replace a directory by a non-directory or back. */
  noOverwriteDirNonDir?: boolean;
  /** Owner of everything written, instead of the tar's uid/gid (docker cp without -a). */
  owner?: { uid: number; gid: number };
}

async function checkDirNonDir(path: string, isDir: boolean): Promise<void> {
  const st = await fsp.lstat(path).catch(() => null);
  if (!st) return;
  if (st.isDirectory() && !isDir) throw new UnsafeArchiveError(`cannot overwrite directory "${path}" with non-directory`);
  if (!st.isDirectory() && isDir) throw new UnsafeArchiveError(`cannot overwrite non-directory "${path}" with directory`);
}

/** Extracts the (optionally gzipped) tar stream into dest (a layer dir, or a directory docker cp writes to). */
export async function extractLayer(input: Readable, dest: string, opts: ExtractOptions = {}): Promise<ExtractResult> {
  const whiteouts = opts.whiteouts ?? true;
  const hash = createHash('sha256');
  const plain = maybeDecompress(input);
  const hashing = new Transform({ transform(chunk, _e, cb) { hash.update(chunk); cb(null, chunk); } });
  const ex = tar.extract();
  const dirs: Pending[] = [];
  const links: Pending[] = [];
  let size = 0;

  const done = new Promise<void>((resolve, reject) => {
    pipeline(plain, hashing, ex, (err) => (err ? reject(err) : resolve()));
  });
  const consume = (async () => {
    for await (const entry of ex) {
      const h = entry.header;
      const comps = safeComponents(h.name);
      if (comps.length === 0) { entry.resume(); continue; } // "./" itself
      const parent = await safeParent(dest, comps);
      const base = comps[comps.length - 1];
      const mode = (h.mode ?? 0o644) & 0o7777;
      const uid = opts.owner?.uid ?? h.uid ?? 0, gid = opts.owner?.gid ?? h.gid ?? 0;
      if (opts.noOverwriteDirNonDir) await checkDirNonDir(join(parent, base), h.type === 'directory');
      // Whiteouts
      if (whiteouts && base === '.wh..wh..opq') {
        await setXattr(parent, 'trusted.overlay.opaque', 'y');
        entry.resume(); continue;
      }
      if (whiteouts && base.startsWith('.wh.')) {
        const target = join(parent, base.slice(4));
        await removeExisting(target, false);
        await mknod(target, 'c', 0, 0);
        entry.resume(); continue;
      }
      const path = join(parent, base);
      switch (h.type) {
        case 'directory': {
          const exists = await removeExisting(path, true);
          if (!exists) await fsp.mkdir(path, { mode: 0o700 });
          dirs.push({ path, mode, uid, gid, mtime: h.mtime });
          entry.resume();
          break;
        }
        case 'file':
        case 'contiguous-file': {
          await removeExisting(path, false);
          const fh = await fsp.open(path, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW, 0o600);
          try {
            for await (const chunk of entry as AsyncIterable<Buffer>) { await fh.write(chunk); size += chunk.length; }
            await fh.chown(uid, gid);
            await fh.chmod(mode);
            if (h.mtime) await fh.utimes(h.mtime, h.mtime);
          } finally { await fh.close(); }
          break;
        }
        case 'symlink': {
          await removeExisting(path, false);
          await fsp.symlink(h.linkname ?? '', path);
          links.push({ path, mode, uid, gid, mtime: h.mtime });
          entry.resume();
          break;
        }
        case 'link': {
          const tcomps = safeComponents(h.linkname ?? '');
          if (tcomps.length === 0) throw new UnsafeArchiveError(`invalid hard link target: ${JSON.stringify(h.linkname)}`);
          const tparent = await safeParent(dest, tcomps);
          const target = join(tparent, tcomps[tcomps.length - 1]);
          const st = await fsp.lstat(target).catch(() => null);
          if (!st) throw new UnsafeArchiveError(`hard link target not in the layer: ${JSON.stringify(h.linkname)}`);
          if (st.isDirectory()) throw new UnsafeArchiveError(`hard link to a directory: ${JSON.stringify(h.linkname)}`);
          await removeExisting(path, false);
          await fsp.link(target, path);
          entry.resume();
          break;
        }
        case 'character-device':
        case 'block-device':
        case 'fifo': {
          await removeExisting(path, false);
          const kind = h.type === 'fifo' ? 'p' : h.type === 'block-device' ? 'b' : 'c';
          await mknod(path, kind, h.devmajor ?? 0, h.devminor ?? 0);
          await fsp.lchown(path, uid, gid);
          await fsp.chmod(path, mode);
          if (h.mtime) await fsp.utimes(path, h.mtime, h.mtime);
          entry.resume();
          break;
        }
        default:
          entry.resume(); // pax/gnu metadata is folded into headers by tar-stream; others ignored
          continue;
      }
      const pax = (h as any).pax as Record<string, string> | undefined;
      if (pax) {
        for (const [k, v] of Object.entries(pax)) {
          if (k.startsWith('SCHILY.xattr.')) await setXattr(path, k.slice('SCHILY.xattr.'.length), v);
        }
      }
    }
  })();
  await Promise.all([done, consume.catch((e) => { ex.destroy(e); throw e; })]);
  for (const l of links) {
    await fsp.lchown(l.path, l.uid, l.gid);
    if (l.mtime) await fsp.lutimes(l.path, l.mtime, l.mtime).catch(() => {});
  }
  // Directories last and deepest first: creating children would reset their mtimes.
  for (const d of dirs.reverse()) {
    await fsp.lchown(d.path, d.uid, d.gid);
    await fsp.chmod(d.path, d.mode);
    if (d.mtime) await fsp.utimes(d.path, d.mtime, d.mtime);
  }
  return { diffId: 'sha256:' + hash.digest('hex'), size };
}
