// The container's root filesystem: an overlay of the image layers (read-only, top-most first)
// with the container's own rw layer (diff + work) in its directory, mounted at <dir>/merged.
import { execFile } from 'node:child_process';
import { mkdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { InvalidParameterError, SystemError } from '../errors.js';

const run = promisify(execFile);

export interface RootfsPaths { upper: string; work: string; merged: string; empty: string }

export function rootfsPaths(containerDir: string): RootfsPaths {
  return {
    upper: join(containerDir, 'diff'),
    work: join(containerDir, 'work'),
    merged: join(containerDir, 'merged'),
    empty: join(containerDir, 'empty'),
  };
}

export async function prepareRootfsDirs(containerDir: string): Promise<void> {
  const p = rootfsPaths(containerDir);
  for (const d of [p.upper, p.work, p.merged, p.empty]) await mkdir(d, { recursive: true, mode: 0o755 });
}

export async function isMounted(target: string): Promise<boolean> {
  const info = await readFile('/proc/self/mountinfo', 'utf8');
  const escaped = target.replace(/[ \t\n\\]/g, (c) => '\\' + c.charCodeAt(0).toString(8).padStart(3, '0'));
  return info.split('\n').some((line) => line.split(' ')[4] === escaped);
}

/** Mounts the overlay; layerDirs are the image's diff dirs, top-most first. Idempotent. */
export async function mountRootfs(containerDir: string, layerDirs: string[]): Promise<string> {
  const p = rootfsPaths(containerDir);
  await prepareRootfsDirs(containerDir);
  if (await isMounted(p.merged)) return p.merged;
  // overlay needs at least one lower dir: an image without layers (scratch) gets an empty one.
  const lower = layerDirs.length ? layerDirs.join(':') : p.empty;
  const opts = `lowerdir=${lower},upperdir=${p.upper},workdir=${p.work}`;
  if (opts.length > 4000) throw new SystemError(`too many image layers for one overlay mount (${layerDirs.length})`);
  try {
    await run('mount', ['-t', 'overlay', 'overlay', '-o', opts, p.merged]);
  } catch (err: any) {
    throw new SystemError(`error mounting container rootfs: ${String(err.stderr || err.message).trim()}`);
  }
  return p.merged;
}

export async function unmountRootfs(containerDir: string): Promise<void> {
  const { merged } = rootfsPaths(containerDir);
  if (!(await isMounted(merged))) return;
  try {
    await run('umount', [merged]);
  } catch {
    // busy (a process still holds it): detach it so the directory can go
    await run('umount', ['-l', merged]).catch(() => {});
  }
}

/**
 * Walks a path as a process chrooted in a root filesystem would see it: symlinks are followed
 * inside the root (an absolute target restarts at the root, `..` stops there), so nothing a
 * hostile image or container put there leads outside it. `hostOf` maps a clean container path
 * to the host (the root, or a volume's source). At a missing component `onMissing` may create
 * it (return true) or end the walk (false).
 */
export async function walkInRoot(path: string, o: {
  hostOf: (cpath: string) => string; followLast: boolean; onMissing?: (host: string) => Promise<boolean>;
}): Promise<{ cpath: string; host: string; missing: boolean }> {
  const { lstat, readlink } = await import('node:fs/promises');
  const queue = path.split('/').filter(Boolean);
  const cur: string[] = [];
  let links = 0;
  while (queue.length) {
    const part = queue.shift()!;
    if (part === '.') continue;
    if (part === '..') { cur.pop(); continue; }
    const cpath = '/' + [...cur, part].join('/');
    const host = o.hostOf(cpath);
    const st = await lstat(host).catch(() => null);
    if (!st) {
      if (o.onMissing && await o.onMissing(host)) { cur.push(part); continue; }
      const full = '/' + [...cur, [part, ...queue].join('/')].filter(Boolean).join('/');
      return { cpath: full, host: o.hostOf(full), missing: true };
    }
    if (st.isSymbolicLink() && (queue.length > 0 || o.followLast)) {
      if (++links > 40) throw new InvalidParameterError(`too many levels of symbolic links: ${path}`);
      const target = await readlink(host);
      if (target.startsWith('/')) cur.length = 0;
      queue.unshift(...target.split('/').filter(Boolean));
      continue;
    }
    cur.push(part);
  }
  const cpath = '/' + cur.join('/');
  return { cpath, host: o.hostOf(cpath), missing: false };
}

/** Creates a directory inside a root filesystem (the container's WorkingDir), parents too. */
export async function mkdirInRoot(root: string, path: string, mode = 0o755): Promise<void> {
  const { mkdir: mk, stat } = await import('node:fs/promises');
  const r = await walkInRoot(path, { hostOf: (c) => join(root, c), followLast: true, onMissing: async (host) => { await mk(host, { mode }); return true; } });
  const st = await stat(r.host);
  if (!st.isDirectory()) throw new SystemError(`cannot create directory ${path}: not a directory`);
}
