// Unpacks one untrusted layer tar into a directory without ever writing outside it.
// Every parent component is checked with lstat (a symlink parent is refused, a missing one is
// created), files are opened O_EXCL|O_NOFOLLOW, hard links must name an entry inside the root,
// and `..`/absolute names are contained or refused. Docker/OCI whiteouts become overlayfs
// whiteouts (char device 0:0, opaque xattr). extractLayer also returns the diffID (sha256 of the
// uncompressed tar); extractTar takes a tar already decompressed (and hashed) by the caller.
import {
  chmodSync, closeSync, constants, fchmodSync, fchownSync, futimesSync, lchownSync, linkSync, lstatSync, lutimesSync, mkdirSync,
  openSync, rmSync, symlinkSync, utimesSync, writeSync,
} from 'node:fs';
import { createHash } from 'node:crypto';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { join, relative } from 'node:path';
import { PassThrough, Readable, Transform, pipeline, type Writable } from 'node:stream';
import { createGunzip } from 'node:zlib';
import tar from 'tar-stream';
import { BatchWriter, WRITE_BATCH } from '../store/batch-writer.js';

const run = promisify(execFile);

export class UnsafeArchiveError extends Error {}
/** Data that is not a valid gzip stream or tar (the native unpacker's word for it). */
export class CorruptArchiveError extends Error {}

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

/** zlib output chunk: large chunks mean few trips to the thread pool and few stream hops. */
const INFLATE_CHUNK = 1 << 20;

/**
 * Gunzips when the stream starts with the gzip magic; passes plain tar through. The returned
 * stream ending early (destroyed) destroys input too.
 */
export function maybeDecompress(input: Readable): Readable {
  const out = new PassThrough({ highWaterMark: INFLATE_CHUNK });
  const head: Buffer[] = [];
  let len = 0;
  const onData = (c: Buffer): void => { head.push(c); len += c.length; if (len >= 4) decide(false); };
  const onEnd = (): void => decide(true);
  const decide = (ended: boolean): void => {
    input.removeListener('data', onData);
    input.removeListener('end', onEnd);
    input.pause();
    const first = head.length === 1 ? head[0]! : Buffer.concat(head);
    if (first.length >= 4 && first.readUInt32LE(0) === 0xfd2fb528) {
      out.destroy(new UnsafeArchiveError('zstd-compressed layers are not supported without the native unpacker (make -C native)'));
      return;
    }
    let target: Writable = out;
    if (first.length >= 2 && first[0] === 0x1f && first[1] === 0x8b) {
      const gunzip = createGunzip({ chunkSize: INFLATE_CHUNK });
      gunzip.on('error', (e) => out.destroy(e));
      gunzip.pipe(out);
      target = gunzip;
    }
    if (first.length) target.write(first);
    if (ended) target.end();
    else input.pipe(target);
  };
  input.on('data', onData);
  input.on('end', onEnd);
  input.on('error', (e) => out.destroy(e));
  out.on('close', () => { if (!input.readableEnded) input.destroy(); });
  return out;
}

interface Pending { path: string; mode: number; uid: number; gid: number; mtime?: Date }

// Metadata calls (lstat, open, chown, symlink, ...) are synchronous: each takes microseconds on a
// local filesystem, while a trip through libuv's thread pool costs far more and queues behind the
// large writes of other layers unpacking at the same time (a layer of many small files took a
// second that way). File content is written asynchronously in large batches.

/** Walks to the parent of comps inside root, creating missing dirs and refusing symlinked ones. */
function safeParent(root: string, comps: string[]): string {
  let cur = root;
  for (const c of comps.slice(0, -1)) {
    cur = join(cur, c);
    const st = lstatSync(cur, { throwIfNoEntry: false });
    if (!st) {
      mkdirSync(cur, { mode: 0o755 });
      continue;
    }
    if (st.isSymbolicLink()) throw new UnsafeArchiveError(`refusing to write through a symlink: ${comps.join('/')}`);
    if (!st.isDirectory()) throw new UnsafeArchiveError(`path component is not a directory: ${comps.join('/')}`);
  }
  return cur;
}

/**
 * True when path (under root) is still a `kind` reached through real directories only: a
 * fix-up made at the end must not follow a symlink an entry put on the way after it was made.
 */
function stillAt(root: string, path: string, kind: 'directory' | 'symlink'): boolean {
  const comps = relative(root, path).split('/');
  let cur = root;
  for (let i = 0; i < comps.length; i++) {
    cur = join(cur, comps[i]!);
    const st = lstatSync(cur, { throwIfNoEntry: false });
    if (!st) return false;
    const last = i === comps.length - 1;
    if (!last && !(st.isDirectory() && !st.isSymbolicLink())) return false;
    if (last) return kind === 'directory' ? st.isDirectory() : st.isSymbolicLink();
  }
  return false;
}

function removeExisting(path: string, keepDir: boolean): boolean {
  const st = lstatSync(path, { throwIfNoEntry: false });
  if (!st) return false;
  if (keepDir && st.isDirectory()) return true;
  rmSync(path, { recursive: true, force: true });
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

function checkDirNonDir(path: string, isDir: boolean): void {
  const st = lstatSync(path, { throwIfNoEntry: false });
  if (!st) return;
  if (st.isDirectory() && !isDir) throw new UnsafeArchiveError(`cannot overwrite directory "${path}" with non-directory`);
  if (!st.isDirectory() && isDir) throw new UnsafeArchiveError(`cannot overwrite non-directory "${path}" with directory`);
}

/** Extracts the (optionally gzipped) tar stream into dest (a layer dir, or a directory docker cp writes to). */
export async function extractLayer(input: Readable, dest: string, opts: ExtractOptions = {}): Promise<ExtractResult> {
  const hash = createHash('sha256');
  const hashing = new Transform({ transform(chunk, _e, cb) { hash.update(chunk); cb(null, chunk); } });
  const plain = maybeDecompress(input);
  plain.on('error', (e) => hashing.destroy(e));
  const { size } = await extractTar(plain.pipe(hashing), dest, opts);
  return { diffId: 'sha256:' + hash.digest('hex'), size };
}

/** Copies a tar entry's content to fd: a small file in one write, a large one in batches. */
async function copyEntry(entry: AsyncIterable<Buffer>, fd: number, declared: number): Promise<number> {
  let total = 0;
  if (declared <= WRITE_BATCH) {
    const chunks: Buffer[] = [];
    for await (const chunk of entry) { chunks.push(chunk); total += chunk.length; }
    const buf = chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, total);
    for (let off = 0; off < buf.length;) off += writeSync(fd, buf, off, buf.length - off);
    return total;
  }
  const w = new BatchWriter(fd);
  try {
    for await (const chunk of entry) {
      total += chunk.length;
      await w.add(chunk);
    }
    await w.end();
  } finally { await w.discard(); }
  return total;
}

/** Extracts an uncompressed tar stream into dest. Returns the bytes of regular-file content. */
export async function extractTar(plain: Readable, dest: string, opts: ExtractOptions = {}): Promise<{ size: number }> {
  const whiteouts = opts.whiteouts ?? true;
  const ex = tar.extract();
  const dirs: Pending[] = [];
  const links: Pending[] = [];
  let size = 0;

  const done = new Promise<void>((resolve, reject) => {
    pipeline(plain, ex, (err) => (err ? reject(err) : resolve()));
  });
  const consume = (async () => {
    for await (const entry of ex) {
      const h = entry.header;
      const comps = safeComponents(h.name);
      if (comps.length === 0) { entry.resume(); continue; } // "./" itself
      const parent = safeParent(dest, comps);
      const base = comps[comps.length - 1];
      const mode = (h.mode ?? 0o644) & 0o7777;
      const uid = opts.owner?.uid ?? h.uid ?? 0, gid = opts.owner?.gid ?? h.gid ?? 0;
      if (opts.noOverwriteDirNonDir) checkDirNonDir(join(parent, base), h.type === 'directory');
      // Whiteouts
      if (whiteouts && base === '.wh..wh..opq') {
        await setXattr(parent, 'trusted.overlay.opaque', 'y');
        entry.resume(); continue;
      }
      if (whiteouts && base.startsWith('.wh.')) {
        if (base.startsWith('.wh..wh.')) { entry.resume(); continue; } // other aufs metadata: nothing on overlayfs
        const hidden = base.slice(4);
        // ".wh.." would hide the directory itself, ".wh..." its parent
        if (hidden === '' || hidden === '.' || hidden === '..') throw new UnsafeArchiveError(`invalid whiteout: ${JSON.stringify(h.name)}`);
        const target = join(parent, hidden);
        removeExisting(target, false);
        await mknod(target, 'c', 0, 0);
        entry.resume(); continue;
      }
      const path = join(parent, base);
      switch (h.type) {
        case 'directory': {
          const exists = removeExisting(path, true);
          if (!exists) mkdirSync(path, { mode: 0o700 });
          dirs.push({ path, mode, uid, gid, mtime: h.mtime });
          entry.resume();
          break;
        }
        case 'file':
        case 'contiguous-file': {
          removeExisting(path, false);
          const fd = openSync(path, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW, 0o600);
          try {
            size += await copyEntry(entry as AsyncIterable<Buffer>, fd, h.size ?? 0);
            fchownSync(fd, uid, gid);
            fchmodSync(fd, mode);
            if (h.mtime) futimesSync(fd, h.mtime, h.mtime);
          } finally { closeSync(fd); }
          break;
        }
        case 'symlink': {
          removeExisting(path, false);
          symlinkSync(h.linkname ?? '', path);
          links.push({ path, mode, uid, gid, mtime: h.mtime });
          entry.resume();
          break;
        }
        case 'link': {
          const tcomps = safeComponents(h.linkname ?? '');
          if (tcomps.length === 0) throw new UnsafeArchiveError(`invalid hard link target: ${JSON.stringify(h.linkname)}`);
          const tparent = safeParent(dest, tcomps);
          const target = join(tparent, tcomps[tcomps.length - 1]);
          const st = lstatSync(target, { throwIfNoEntry: false });
          if (!st) throw new UnsafeArchiveError(`hard link target not in the layer: ${JSON.stringify(h.linkname)}`);
          if (st.isDirectory()) throw new UnsafeArchiveError(`hard link to a directory: ${JSON.stringify(h.linkname)}`);
          removeExisting(path, false);
          linkSync(target, path);
          entry.resume();
          break;
        }
        case 'character-device':
        case 'block-device':
        case 'fifo': {
          removeExisting(path, false);
          const kind = h.type === 'fifo' ? 'p' : h.type === 'block-device' ? 'b' : 'c';
          await mknod(path, kind, h.devmajor ?? 0, h.devminor ?? 0);
          lchownSync(path, uid, gid);
          chmodSync(path, mode);
          if (h.mtime) utimesSync(path, h.mtime, h.mtime);
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
  // a later entry may have put a symlink where one of these or a parent was: then it is skipped
  for (const l of links) {
    if (!stillAt(dest, l.path, 'symlink')) continue;
    lchownSync(l.path, l.uid, l.gid);
    if (l.mtime) try { lutimesSync(l.path, l.mtime, l.mtime); } catch { /* as before: best effort */ }
  }
  // Directories last and deepest first: creating children would reset their mtimes.
  for (const d of dirs.reverse()) {
    if (!stillAt(dest, d.path, 'directory')) continue;
    lchownSync(d.path, d.uid, d.gid);
    chmodSync(d.path, d.mode);
    if (d.mtime) utimesSync(d.path, d.mtime, d.mtime);
  }
  return { size };
}
