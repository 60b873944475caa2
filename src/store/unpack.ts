// Unpacking a layer: the (maybe gzipped) tar is decompressed, hashed, written to a content
// store temp file (the bytes as given for a pull, the tar otherwise), and unpacked into a
// layer's diff directory, in one pass. The native unpacker does it (native-unpack.ts: a job
// of its server per layer, which downloads a pull's layer itself or is sent a stream's
// bytes), so neither the bytes nor the entries of a layer cost the daemon any JavaScript.
// Where it is not built, or its server cannot start, the same work is done here in
// JavaScript (unpackLayer), slower and on the main thread, with zstd layers refused.
import { createHash } from 'node:crypto';
import { open } from 'node:fs/promises';
import { Readable, Transform } from 'node:stream';
import { extractTar, maybeDecompress } from '../oci/tar-extract.js';
import { BatchWriter, WRITE_BATCH } from './batch-writer.js';
// the JavaScript unpacker makes registry downloads itself (see DownloadSource)
import { downloadBlob, type BlobDownload, type DownloadEvents } from '../services/registry/blob-download.js';
import { nativeUnpackerUsable, unpackNative, unpackNativeDownload, warmNativeUnpacker, type Unpacked } from './native-unpack.js';

export type { Unpacked };

/**
 * The JavaScript unpacker. `keepInput`: the file at ingestPath receives the bytes as given
 * (a download's compressed blob), else the decompressed tar. Writes are batched and
 * asynchronous, so the event loop is not held up by the disk.
 */
export async function unpackLayer(input: Readable, ingestPath: string, diffDir: string, keepInput = false): Promise<Unpacked> {
  const hash = createHash('sha256');
  const fh = await open(ingestPath, 'wx', 0o600);
  const writer = new BatchWriter(fh);
  // a transform that hashes its bytes and, when `store`, writes them to the ingest file
  const hashing = (h: ReturnType<typeof createHash>, store: boolean, count?: (n: number) => void): Transform => new Transform({
    highWaterMark: WRITE_BATCH,
    transform(chunk: Buffer, _e, cb) {
      h.update(chunk);
      count?.(chunk.length);
      if (!store) return cb(null, chunk);
      const wait = writer.add(chunk);
      if (wait) wait.then(() => cb(null, chunk), cb);
      else cb(null, chunk);
    },
    flush(cb) {
      if (!store) return cb();
      writer.end().then(() => cb(), cb);
    },
  });
  const tee = hashing(hash, !keepInput);
  const inHash = createHash('sha256');
  let inputSize = 0;
  const hashIn = hashing(inHash, keepInput, (n) => { inputSize += n; });
  input.on('error', (e) => hashIn.destroy(e));
  try {
    const plain = maybeDecompress(input.pipe(hashIn));
    plain.on('error', (e) => tee.destroy(e));
    const { size: fileBytes } = await extractTar(plain.pipe(tee), diffDir);
    // extractTar reads its stream to the end, so hashIn has seen (and stored) every byte
    return { diffId: `sha256:${hash.digest('hex')}`, size: fileBytes, inputDigest: `sha256:${inHash.digest('hex')}`, inputSize };
  } finally {
    await writer.discard();
    await fh.close().catch(() => {});
  }
}

/** Which unpacker does the work. */
export type Unpacker = 'native' | 'javascript';
let forced: Unpacker | undefined;

/** Tests only: makes unpack() use this unpacker; undefined puts the usual choice back. */
export function useUnpackerForTests(u: Unpacker | undefined): void { forced = u; }

/** Starts the native unpacker's server ahead of the first layer (the daemon calls it once it listens). */
export function warmUnpacker(): void {
  if ((forced ?? 'native') === 'native') warmNativeUnpacker();
}

/** A registry download to unpack: the unpacker fetches it itself. */
export interface DownloadSource { download: BlobDownload; signal: AbortSignal; events: DownloadEvents }

const isDownload = (x: Readable | DownloadSource): x is DownloadSource => 'download' in x && !(x instanceof Readable);

/** Unpacks `input` (a stream, or a registry download) with the native unpacker, else in JavaScript. */
export async function unpack(input: Readable | DownloadSource, ingestPath: string, diffDir: string, o: { keepInput?: boolean } = {}): Promise<Unpacked> {
  if ((forced ?? 'native') === 'native' && nativeUnpackerUsable()) {
    const done = isDownload(input)
      ? await unpackNativeDownload(input.download, input.signal, input.events, ingestPath, diffDir, !!o.keepInput)
      : await unpackNative(input, ingestPath, diffDir, !!o.keepInput);
    if (done) return done;
    // the server could not start (nothing was read): the JavaScript unpacker does it
  }
  const stream = isDownload(input) ? downloadBlob(input.download, input.signal, input.events) : input;
  return unpackLayer(stream, ingestPath, diffDir, !!o.keepInput);
}
