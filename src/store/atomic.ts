// Crash-safe file writes: a reader (or the next start after a crash) sees the old content or the
// new content, never a torn mix. write tmp -> fsync -> rename -> fsync the directory.
import { open, rename, unlink, mkdir } from 'node:fs/promises';
import { dirname, basename, join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';

const execFileP = promisify(execFile);

export async function fsyncDir(dir: string): Promise<void> {
  const fh = await open(dir, 'r');
  try { await fh.sync(); } finally { await fh.close(); }
}

/**
 * syncfs(2) on the filesystem holding path (coreutils' `sync -f`; Node has no binding): one
 * flush for everything a pull or a layer import wrote there, instead of an fsync per file.
 */
export async function syncFilesystem(path: string): Promise<void> {
  try {
    await execFileP('sync', ['-f', path]);
  } catch (err: any) {
    throw new Error(`syncfs ${path}: ${String(err?.stderr || err?.message || err).trim()}`);
  }
}

export async function writeFileAtomic(path: string, data: string | Uint8Array, mode = 0o600): Promise<void> {
  const dir = dirname(path);
  const tmp = join(dir, `.${basename(path)}.${randomBytes(6).toString('hex')}.tmp`);
  const fh = await open(tmp, 'wx', mode);
  try {
    await fh.writeFile(data);
    await fh.sync();
  } catch (err) {
    await fh.close().catch(() => {});
    await unlink(tmp).catch(() => {});
    throw err;
  }
  await fh.close();
  try {
    await rename(tmp, path);
  } catch (err) {
    await unlink(tmp).catch(() => {});
    throw err;
  }
  await fsyncDir(dir);
}

export async function ensureDir(dir: string, mode = 0o700): Promise<void> {
  await mkdir(dir, { recursive: true, mode });
}

/** Temporary files left by a crash between open and rename. */
export const isTempName = (name: string): boolean => name.startsWith('.') && name.endsWith('.tmp');
