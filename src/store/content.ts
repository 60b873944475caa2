// Content-addressed blob store: content/sha256/<hex>. A blob is written to a temp file while
// its digest is computed, and renamed into place only when the digest matches, so a stored blob
// is always what its name says. Temp files (`.ingest-*`) are removed at start.
import { createHash, randomBytes, type Hash } from 'node:crypto';
import { createReadStream, createWriteStream, promises as fsp } from 'node:fs';
import type { FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import { Readable, Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { ensureDir, fsyncDir } from './atomic.js';
import { BatchWriter, WRITE_BATCH } from './batch-writer.js';

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

  /** A blob written as it streams by (see Ingest); nothing is visible before commit(). */
  async ingest(): Promise<Ingest> {
    const tmp = join(this.dir, `.ingest-${randomBytes(8).toString('hex')}`);
    return new Ingest(this, tmp, await fsp.open(tmp, 'wx', 0o600));
  }

  read(digest: string): Readable { return createReadStream(this.path(digest)); }
  async readJson<T>(digest: string): Promise<T> { return JSON.parse(await fsp.readFile(this.path(digest), 'utf8')) as T; }
  async readBytes(digest: string): Promise<Buffer> { return fsp.readFile(this.path(digest)); }
  async size(digest: string): Promise<number> { return (await fsp.stat(this.path(digest))).size; }
  async delete(digest: string): Promise<void> { await fsp.rm(this.path(digest), { force: true }); }
}

/**
 * A blob being written while the same bytes go elsewhere (a layer tar that is unpacked in the
 * same pass): tee() hashes and writes every chunk to a temp file and passes it on. Nothing is
 * synced here; the caller syncs the filesystem once (syncFilesystem) before commit() renames the
 * file under its digest, so a crash leaves either nothing or a temp file that init() removes.
 */
export class Ingest {
  private readonly hash: Hash = createHash('sha256');
  private readonly writer: BatchWriter;
  private result: string | undefined;
  private closed = false;
  size = 0;

  constructor(private readonly store: ContentStore, readonly tmp: string, private readonly fh: FileHandle) {
    this.writer = new BatchWriter(fh);
  }

  /** A pass-through stream: its end waits until every byte is in the temp file. */
  tee(): Transform {
    return new Transform({
      highWaterMark: WRITE_BATCH,
      transform: (chunk: Buffer, _e, cb) => {
        this.hash.update(chunk);
        this.size += chunk.length;
        const wait = this.writer.add(chunk);
        if (wait) wait.then(() => cb(null, chunk), cb);
        else cb(null, chunk);
      },
      flush: (cb) => {
        this.result = 'sha256:' + this.hash.digest('hex');
        this.writer.end().then(() => this.close()).then(() => cb(), cb);
      },
    });
  }

  private async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.fh.close();
  }

  /** The digest of everything that went through tee(); set once it ended. */
  get digest(): string {
    if (!this.result) throw new Error('ingest not finished');
    return this.result;
  }

  /** Renames the temp file under its digest (an existing blob of that digest is the same bytes). */
  async commit(): Promise<string> {
    const digest = this.digest;
    await this.close();
    await fsp.rename(this.tmp, this.store.path(digest));
    return digest;
  }

  async abort(): Promise<void> {
    await this.writer.discard();
    await this.close().catch(() => {});
    await fsp.rm(this.tmp, { force: true });
  }
}
