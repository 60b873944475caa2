// Unpacking a layer: the (maybe gzipped) tar is decompressed, hashed, written to a content
// store temp file (the bytes as given for a pull, the tar otherwise), and unpacked into a
// layer's diff directory, in one pass. The native unpacker does it when it is built
// (native-unpack.ts: a job of its server per layer, which downloads a pull's layer itself or
// is sent a stream's bytes), so neither the bytes nor the entries of a layer cost the daemon
// any JavaScript. Otherwise (not built, or its server cannot start) the work runs in a
// small pool of worker threads (unpack-worker.ts); a pull's worker downloads the layer too, so
// the daemon's main thread does no work per byte, a pull's layers are fetched, decompressed
// and unpacked in parallel with each other on a machine with two cores or more, and the
// synchronous file-system calls of an unpacking layer never hold up the event loop. Streams
// (load, import, build) are sent to the worker in batches. Without worker threads (they
// failed to start) the same code runs in the main thread.
import { createHash } from 'node:crypto';
import { closeSync, openSync, writeSync } from 'node:fs';
import { open } from 'node:fs/promises';
import { availableParallelism } from 'node:os';
import { Readable, Transform } from 'node:stream';
import { MessageChannel, Worker } from 'node:worker_threads';
import { CorruptArchiveError, extractTar, maybeDecompress, UnsafeArchiveError } from '../oci/tar-extract.js';
import { BatchWriter, WRITE_BATCH } from './batch-writer.js';
import { DigestMismatchError } from './content.js';
// the worker fetches registry blobs itself (see DownloadSource)
import { downloadBlob, DownloadError, recycleBatch, type BlobDownload, type DownloadEvents } from '../services/registry/blob-download.js';

import { nativeUnpackerUsable, unpackNative, unpackNativeDownload, warmNativeUnpacker, type Unpacked } from './native-unpack.js';

export type { Unpacked };

/**
 * The work itself, in whichever thread runs it. `sync`: writes are synchronous (a worker
 * thread); otherwise batched and asynchronous (the main thread). `keepInput`: the file at
 * ingestPath receives the bytes as given (a download's compressed blob), else the
 * decompressed tar.
 */
export async function unpackLayer(input: Readable, ingestPath: string, diffDir: string, sync: boolean, keepInput = false): Promise<Unpacked> {
  const hash = createHash('sha256');
  const fh = sync ? undefined : await open(ingestPath, 'wx', 0o600);
  const fd = sync ? openSync(ingestPath, 'wx', 0o600) : -1;
  const writer = fh ? new BatchWriter(fh) : undefined;
  // a transform that hashes its bytes and, when `store`, writes them to the ingest file
  const hashing = (h: ReturnType<typeof createHash>, store: boolean, count?: (n: number) => void): Transform => new Transform({
    highWaterMark: WRITE_BATCH,
    transform(chunk: Buffer, _e, cb) {
      h.update(chunk);
      count?.(chunk.length);
      if (!store) return cb(null, chunk);
      if (!writer) {
        try { for (let off = 0; off < chunk.length;) off += writeSync(fd, chunk, off, chunk.length - off); } catch (e) { return cb(e as Error); }
        return cb(null, chunk);
      }
      const wait = writer.add(chunk);
      if (wait) wait.then(() => cb(null, chunk), cb);
      else cb(null, chunk);
    },
    flush(cb) {
      if (!store || !writer) return cb();
      writer.end().then(() => cb(), cb);
    },
  });
  const tee = hashing(hash, !keepInput);
  const inHash = createHash('sha256');
  let inputSize = 0;
  const hashIn = hashing(inHash, keepInput, (n) => { inputSize += n; });
  input.on('error', (e) => hashIn.destroy(e));
  try {
    // batches go back to the download's pool only when written synchronously: BatchWriter keeps them
    const plain = maybeDecompress(input.pipe(hashIn), sync ? recycleBatch : undefined);
    plain.on('error', (e) => tee.destroy(e));
    const { size: fileBytes } = await extractTar(plain.pipe(tee), diffDir, { syncWrites: sync });
    // extractTar reads its stream to the end, so hashIn has seen (and stored) every byte
    return { diffId: `sha256:${hash.digest('hex')}`, size: fileBytes, inputDigest: `sha256:${inHash.digest('hex')}`, inputSize };
  } finally {
    await writer?.discard();
    if (fh) await fh.close().catch(() => {});
    if (fd >= 0) closeSync(fd);
  }
}

// --- main-thread side of the pool ----------------------------------------------------------

/** Bytes of a stream sent to a worker at a time. */
const SEND_BATCH = 512 * 1024;
/**
 * A worker with nothing to do ends after this long (its ~12 MB go back); a worker boots in
 * ~150 ms of CPU, which a pull started soon after would otherwise pay.
 */
const IDLE_MS = 2 * 60_000;

interface PoolWorker {
  worker: Worker;
  jobs: number;
  idle?: NodeJS.Timeout;
  broken: boolean;
  /** True once the worker has loaded its code ({ready}); false if it ended before. */
  started: Promise<boolean>;
}
const pool: PoolWorker[] = [];
let workersFailed = false;
/**
 * Workers at most: one per core, 2 to 4 (a pull unpacks 3 layers at a time by default; one
 * worker per layer measured no faster on two cores than two shared ones).
 */
const poolSize = Math.max(2, Math.min(4, availableParallelism()));

let workerScript = new URL('./unpack-worker.js', import.meta.url);

/** Tests only: the script new workers run (one that cannot load shows the fallback). */
export function unpackWorkerScriptForTests(url: URL): void { workerScript = url; }

function spawnWorker(): PoolWorker | undefined {
  let worker: Worker;
  try {
    worker = new Worker(workerScript);
  } catch {
    workersFailed = true;
    return undefined;
  }
  // a worker whose code cannot load ends before {ready}: then no worker will do, the main thread works
  const started = new Promise<boolean>((resolve) => {
    worker.once('message', (m: { ready?: true }) => resolve(!!m?.ready));
    worker.once('exit', () => resolve(false));
  }).then((ok) => { if (!ok) workersFailed = true; return ok; });
  const w: PoolWorker = { worker, jobs: 0, broken: false, started };
  worker.unref();
  const gone = (): void => { w.broken = true; if (w.idle) clearTimeout(w.idle); const i = pool.indexOf(w); if (i >= 0) pool.splice(i, 1); };
  worker.on('error', gone);
  worker.on('exit', gone);
  pool.push(w);
  idleFrom(w); // a worker started ahead of work it never gets ends too
  return w;
}

/** Ends w after IDLE_MS unless a job comes first. */
function idleFrom(w: PoolWorker): void {
  if (w.idle) clearTimeout(w.idle);
  w.idle = setTimeout(() => { const i = pool.indexOf(w); if (i >= 0) pool.splice(i, 1); void w.worker.terminate(); }, IDLE_MS);
  w.idle.unref();
}

function pick(): PoolWorker | undefined {
  if (workersFailed || forced === 'main thread') return undefined;
  const free = pool.filter((w) => !w.broken).sort((a, b) => a.jobs - b.jobs)[0];
  if (free && (free.jobs === 0 || pool.length >= poolSize)) return free;
  return spawnWorker() ?? free;
}

/** Which unpacker does the work: the native one, the worker pool, or the main thread. */
export type Unpacker = 'native' | 'worker' | 'main thread';
let forced: Unpacker | undefined;

/**
 * Tests only: makes unpack() use this unpacker ('main thread' is the path taken when worker
 * threads failed to start: writes batched and asynchronous); undefined puts the usual choice back.
 */
export function useUnpackerForTests(u: Unpacker | undefined): void { forced = u; }

/** The unpacker the next layer gets. */
function unpacker(): Unpacker {
  if (forced) return forced;
  if (nativeUnpackerUsable()) return 'native';
  return workersFailed ? 'main thread' : 'worker';
}

/**
 * Starts the native unpacker's server, or n workers (all the pool may hold when n is left
 * out), ahead of the first layer: the daemon calls it once it listens, a pull before it
 * fetches its manifest.
 */
export function warmUnpackers(n = poolSize): void {
  if (unpacker() === 'native') return warmNativeUnpacker();
  if (unpacker() !== 'worker') return;
  while (pool.length < Math.min(n, poolSize)) if (!spawnWorker()) return;
}

/** Workers running now (for tests). */
export function unpackWorkerCount(): number { return pool.length; }

/** Messages from a worker about a job. */
interface WorkerMessage { more?: true; bytes?: number; retry?: number; done?: Unpacked; error?: { name: string; message: string; code?: string; status?: number } }

function revive(err: NonNullable<WorkerMessage['error']>): Error {
  const e = err.name === 'UnsafeArchiveError' ? new UnsafeArchiveError(err.message)
    : err.name === 'CorruptArchiveError' ? new CorruptArchiveError(err.message)
    : err.name === 'DigestMismatchError' ? new DigestMismatchError(err.message)
      : err.name === 'DownloadError' ? new DownloadError(err.message, err.status) : new Error(err.message);
  if (err.code) (e as NodeJS.ErrnoException).code = err.code;
  return e;
}

/** Chunks as one buffer that owns its memory, so it can be transferred (the chunks may be shared). */
function owned(chunks: Buffer[], total: number): Buffer {
  const out = Buffer.allocUnsafeSlow(total);
  let off = 0;
  for (const c of chunks) { c.copy(out, off); off += c.length; }
  return out;
}

/** A registry download to unpack: the worker fetches it itself (services/registry/blob-download.ts). */
export interface DownloadSource { download: BlobDownload; signal: AbortSignal; events: DownloadEvents }

const isDownload = (x: Readable | DownloadSource): x is DownloadSource => 'download' in x && !(x instanceof Readable);

/**
 * Unpacks `input` (a stream, or a registry download) with the native unpacker, else in a
 * worker thread that makes the download itself (see unpackLayer), else in the main thread.
 */
export async function unpack(input: Readable | DownloadSource, ingestPath: string, diffDir: string, o: { keepInput?: boolean } = {}): Promise<Unpacked> {
  if (unpacker() === 'native') {
    const done = isDownload(input)
      ? await unpackNativeDownload(input.download, input.signal, input.events, ingestPath, diffDir, !!o.keepInput)
      : await unpackNative(input, ingestPath, diffDir, !!o.keepInput);
    if (done) return done;
    // the server could not start (nothing was read): the JavaScript unpackers do it
  }
  let w = pick();
  if (w) {
    if (w.idle) { clearTimeout(w.idle); w.idle = undefined; }
    w.jobs++;
    w.worker.ref();
    // nothing of the input is touched before the worker is known to run, so it can go elsewhere
    if (!(await w.started)) { w.jobs--; w = undefined; }
  }
  if (!w) {
    const stream = isDownload(input) ? downloadBlob(input.download, input.signal, input.events) : input;
    return unpackLayer(stream, ingestPath, diffDir, false, !!o.keepInput);
  }
  const { port1, port2 } = new MessageChannel();
  const stream = isDownload(input) ? undefined : input;
  let it: AsyncIterator<any> | undefined;
  let sourceError: unknown;
  let finished = false;
  let onAbort: (() => void) | undefined;
  try {
    return await new Promise<Unpacked>((resolve, reject) => {
      const onExit = (): void => reject(new Error('layer unpacking worker ended unexpectedly'));
      w.worker.once('exit', onExit);
      const settle = (f: () => void): void => { finished = true; w.worker.off('exit', onExit); f(); };
      // one request for bytes at a time: the worker asks when its buffer runs low
      const send = async (): Promise<void> => {
        const chunks: Buffer[] = [];
        let total = 0;
        try {
          it ??= stream![Symbol.asyncIterator]();
          while (total < SEND_BATCH) {
            const r = await it.next();
            if (r.done) break;
            const c = Buffer.isBuffer(r.value) ? r.value : Buffer.from(r.value);
            chunks.push(c);
            total += c.length;
          }
        } catch (err) {
          sourceError = err;
          if (!finished) port1.postMessage({ abort: String((err as Error)?.message ?? err) });
          return;
        }
        if (finished) return;
        if (!total) { port1.postMessage({ end: true }); return; }
        const buf = owned(chunks, total);
        port1.postMessage({ chunk: buf.buffer }, [buf.buffer as ArrayBuffer]);
      };
      const events = isDownload(input) ? input.events : {};
      port1.on('message', (m: WorkerMessage) => {
        if (m.more) void send();
        else if (m.bytes !== undefined) events.bytes?.(m.bytes);
        else if (m.retry !== undefined) events.retry?.(m.retry);
        else if (m.done) settle(() => resolve(m.done!));
        else if (m.error) settle(() => reject(sourceError ?? revive(m.error!)));
      });
      if (isDownload(input)) {
        const { signal } = input;
        if (signal.aborted) { settle(() => reject(signal.reason)); return; }
        onAbort = () => { sourceError ??= signal.reason; port1.postMessage({ abort: 'aborted' }); };
        signal.addEventListener('abort', onAbort, { once: true });
      }
      const job = { port: port2, ingestPath, diffDir, keepInput: !!o.keepInput, download: isDownload(input) ? input.download : undefined };
      w.worker.postMessage(job, [port2]);
    });
  } catch (err) {
    // stop reading (a download is destroyed with it)
    if (it) await it.return?.().catch(() => {});
    else stream?.destroy();
    throw err;
  } finally {
    if (onAbort && isDownload(input)) input.signal.removeEventListener('abort', onAbort);
    port1.close();
    w.jobs--;
    if (w.jobs === 0 && !w.broken) {
      w.worker.unref();
      idleFrom(w);
    }
  }
}
