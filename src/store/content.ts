// Content-addressed blob store: content/sha256/<hex>. A blob is written to a temp file while
// its digest is computed, and renamed into place only when the digest matches, so a stored blob
// is always what its name says. Temp files (`.ingest-*`) are removed at start.
import { createHash, randomBytes } from 'node:crypto';
import { createReadStream, createWriteStream, promises as fsp } from 'node:fs';
import { join } from 'node:path';
import { Readable, Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { ensureDir, fsyncDir } from './atomic.js';

const DIGEST_RE = /^sha256:([a-f0-9]{64})$/;

export class DigestMismatchError extends Error {}

export class ContentStore {
  readonly dir: string;
  constructor(root: string) { this.dir = join(root, 'content', 'sha256'); }

  async init(): Promise<void> {
    await ensureDir(this.dir);
    for (const n of await fsp.readdir(this.dir)) if (n.startsWith('.')) await fsp.rm(join(this.dir, n), { force: true });
  }

  path(digest: string): string {
    const m = DIGEST_RE.exec(digest);
    if (!m) throw new Error(`invalid digest: ${digest}`);
    return join(this.dir, m[1]);
  }

  /** Digests of the stored blobs. */
  async list(): Promise<string[]> {
    return (await fsp.readdir(this.dir)).filter((n) => /^[a-f0-9]{64}$/.test(n)).map((n) => `sha256:${n}`);
  }

  async has(digest: string): Promise<boolean> {
    return fsp.access(this.path(digest)).then(() => true, () => false);
  }

  /** Stores the stream; when expected is given a mismatch refuses the blob and keeps nothing. */
  async put(input: Readable | Uint8Array | string, expected?: string): Promise<{ digest: string; size: number }> {
    const tmp = join(this.dir, `.ingest-${randomBytes(8).toString('hex')}`);
    const hash = createHash('sha256');
    let size = 0;
    const src = input instanceof Readable ? input : Readable.from([Buffer.from(input as any)]);
    try {
      await pipeline(src, new Transform({ transform(c, _e, cb) { hash.update(c); size += c.length; cb(null, c); } }), createWriteStream(tmp, { mode: 0o600 }));
      const digest = 'sha256:' + hash.digest('hex');
      if (expected && expected !== digest) throw new DigestMismatchError(`digest mismatch: expected ${expected}, got ${digest}`);
      const fh = await fsp.open(tmp, 'r'); await fh.sync(); await fh.close();
      await fsp.rename(tmp, this.path(digest));
      await fsyncDir(this.dir);
      return { digest, size };
    } catch (err) {
      await fsp.rm(tmp, { force: true });
      throw err;
    }
  }

  /**
   * A temp name for a blob written by someone else (unpack.ts: a layer tar stored while it is
   * unpacked); init() removes what a crash leaves. Nothing is visible before commitIngest().
   */
  ingestPath(): string { return join(this.dir, `.ingest-${randomBytes(8).toString('hex')}`); }

  /**
   * Renames an ingested temp file under its digest (an existing blob of that digest is the same
   * bytes). The caller synced the filesystem before and fsyncs the directory after.
   */
  async commitIngest(tmp: string, digest: string): Promise<void> { await fsp.rename(tmp, this.path(digest)); }

  read(digest: string): Readable { return createReadStream(this.path(digest)); }
  async readJson<T>(digest: string): Promise<T> { return JSON.parse(await fsp.readFile(this.path(digest), 'utf8')) as T; }
  async readBytes(digest: string): Promise<Buffer> { return fsp.readFile(this.path(digest)); }
  async size(digest: string): Promise<number> { return (await fsp.stat(this.path(digest))).size; }
  async delete(digest: string): Promise<void> { await fsp.rm(this.path(digest), { force: true }); }
}
