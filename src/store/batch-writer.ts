// Writes a stream of chunks to a file in large batches, one batch written while the next is
// gathered: on machines where each trip to libuv's thread pool is costly (VMs), one write per
// network or zlib chunk costs more than the copying itself.
import { write } from 'node:fs';
import type { FileHandle } from 'node:fs/promises';

const writeFd = (fd: number, buf: Buffer, off: number, len: number): Promise<number> =>
  new Promise((resolve, reject) => write(fd, buf, off, len, null, (err, n) => (err ? reject(err) : resolve(n))));

/** Bytes gathered before one write. */
export const WRITE_BATCH = 1 << 20;

async function writeFully(f: FileHandle | number, chunks: Buffer[]): Promise<void> {
  const buf = chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks);
  for (let off = 0; off < buf.length;) {
    off += typeof f === 'number' ? await writeFd(f, buf, off, buf.length - off) : (await f.write(buf, off, buf.length - off)).bytesWritten;
  }
}

export class BatchWriter {
  private batch: Buffer[] = [];
  private bytes = 0;
  private inflight: Promise<void> = Promise.resolve();

  constructor(private readonly fh: FileHandle | number, private readonly limit = WRITE_BATCH) {}

  /** Adds a chunk; resolves when the caller may send more (at most one batch in flight). */
  add(chunk: Buffer): Promise<void> | undefined {
    this.batch.push(chunk);
    this.bytes += chunk.length;
    return this.bytes >= this.limit ? this.flush() : undefined;
  }

  private async flush(): Promise<void> {
    const chunks = this.batch;
    this.batch = [];
    this.bytes = 0;
    await this.inflight;
    this.inflight = writeFully(this.fh, chunks);
    this.inflight.catch(() => {}); // awaited by the next flush or end(); not unhandled meanwhile
  }

  /** Drops what is not written yet and waits for the write in flight (errors ignored). */
  async discard(): Promise<void> {
    this.batch = [];
    this.bytes = 0;
    await this.inflight.catch(() => {});
  }

  /** Writes what is left and waits for every write. */
  async end(): Promise<void> {
    if (this.bytes) await this.flush();
    await this.inflight;
  }
}
