// The native layer unpacker (native/unpack, built by scripts/setup as native/build/berth-unpack):
// it hashes, stores, gunzips and unpacks the bytes it is sent, or a registry blob it downloads
// itself (native/unpack/main.c, download.c). One
// server process is started once (native/unpack/serve.c) and forks a small job per layer, so a
// layer costs neither a spawn from the (large) daemon nor a worker thread that has to boot and
// compile the unpacking code first; the daemon moves the bytes of a stream (load, import,
// build) into the job's socket and none at all of a pull.
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import type { Readable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { CorruptArchiveError, UnsafeArchiveError } from '../oci/tar-extract.js';
import { DownloadError, type BlobDownload, type DownloadEvents } from '../services/registry/blob-download.js';
import { DigestMismatchError } from './content.js';

/** What one unpacked layer gave (the same from every unpacker). */
export interface Unpacked {
  diffId: string;
  /** Bytes of regular-file content unpacked. */
  size: number;
  /** sha256 of the bytes as given (compressed or not): a download's blob digest. */
  inputDigest: string;
  /** Length of the bytes as given. */
  inputSize: number;
}

const BINARY = fileURLToPath(new URL('../../../native/build/berth-unpack', import.meta.url));
let built: boolean | undefined;
/** The server failed to start: the JavaScript unpackers take over until the daemon restarts. */
let failed = false;

/** True when the native unpacker is built and has not failed to start. */
export function nativeUnpackerUsable(): boolean {
  built ??= existsSync(BINARY);
  return built && !failed;
}

/** Exit codes of berth-unpack (native/unpack/unpack.h). */
const EXIT_UNSAFE = 2, EXIT_INVALID = 3, EXIT_DOWNLOAD = 4, EXIT_DIGEST = 5;

interface Server { child: ChildProcessWithoutNullStreams; name: string; ready: Promise<boolean> }
let server: Server | undefined;

/** Starts the server (abstract socket: nothing on disk to clean up; only this process is served). */
function startServer(): Server {
  const name = `berth-unpack-${process.pid}-${randomBytes(8).toString('hex')}`;
  const child = spawn(BINARY, ['--serve', name], { stdio: ['pipe', 'pipe', 'pipe'] });
  const errors: Buffer[] = [];
  child.stderr.on('data', (c: Buffer) => errors.push(c));
  const s: Server = {
    child, name,
    ready: new Promise<boolean>((resolve) => {
      child.stdout.once('data', () => resolve(true));
      child.once('error', () => resolve(false));
      child.once('exit', () => resolve(false));
    }),
  };
  const gone = (): void => { if (server === s) server = undefined; };
  child.once('exit', gone);
  child.once('error', gone);
  void s.ready.then((ok) => {
    if (ok) {
      // the daemon does not wait for it; its stdin stays open while the daemon lives
      child.unref();
      for (const stream of [child.stdin, child.stdout, child.stderr]) (stream as unknown as { unref(): void }).unref();
      return;
    }
    failed = true;
    const why = Buffer.concat(errors).toString('utf8').trim();
    process.emitWarning(`berth-unpack could not start${why ? `: ${why}` : ''}; layers are unpacked in JavaScript`);
  });
  return s;
}

/** The running server, started when there is none; undefined if it cannot start. */
async function ensureServer(): Promise<Server | undefined> {
  const s = server ??= startServer();
  return (await s.ready) ? s : undefined;
}

/** Tests only: the running server's pid. */
export function nativeUnpackServerPid(): number | undefined { return server?.child.pid; }

/** Starts the server ahead of the first layer (the daemon calls it once it listens). */
export function warmNativeUnpacker(): void {
  if (nativeUnpackerUsable()) void ensureServer();
}

/** A job's connection: the request sent, its progress lines handed on, its answer awaited. */
function openJob(s: Server, fields: string[], events: DownloadEvents): { sock: Socket; answer: Promise<string> } {
  const sock = connect({ path: `\0${s.name}` });
  // EPIPE once the job has stopped early: its answer says why
  sock.on('error', () => {});
  let text = '';
  let final = '';
  sock.setEncoding('utf8');
  sock.on('data', (c: string) => {
    text += c;
    for (let nl = text.indexOf('\n'); nl >= 0; nl = text.indexOf('\n')) {
      const line = text.slice(0, nl);
      text = text.slice(nl + 1);
      if (line.startsWith('bytes ')) events.bytes?.(Number(line.slice(6)));
      else if (line.startsWith('retry ')) events.retry?.(Number(line.slice(6)));
      else {
        final = line;
        // the job is done (an error can come before the input's end): it waits for our end
        sock.end();
      }
    }
  });
  const answer = new Promise<string>((resolve) => sock.once('close', () => resolve(final || text)));
  const request = Buffer.from(fields.join('\0'));
  const length = Buffer.alloc(4);
  length.writeUInt32LE(request.length);
  sock.write(Buffer.concat([length, request]));
  return { sock, answer };
}

/** The job's answer as a result or the error it names. */
function result(text: string): Unpacked {
  const space = text.indexOf(' ');
  const code = space > 0 ? Number(text.slice(0, space)) : NaN;
  const message = text.slice(space + 1);
  if (code === 0) return JSON.parse(message) as Unpacked;
  if (!text) throw new Error('berth-unpack: the job ended without an answer');
  if (code === EXIT_UNSAFE) throw new UnsafeArchiveError(message);
  if (code === EXIT_INVALID) throw new CorruptArchiveError(message);
  if (code === EXIT_DIGEST) throw new DigestMismatchError(message);
  if (code === EXIT_DOWNLOAD) {
    const [status, ...words] = message.split(' ');
    throw new DownloadError(words.join(' '), Number(status) || undefined);
  }
  throw new Error(message);
}

/**
 * Unpacks `input` into diffDir (which exists) in a job of the native server; ingestPath
 * (which must not exist) receives the bytes as given when keepInput, else the decompressed
 * tar. The input failing stops the job and is what this rejects with, once the job has ended;
 * what was written is the caller's to remove. A job that stops early (a bad archive, a full
 * disk) leaves the rest of the input to be read and dropped, not cut: the client sending it
 * still gets its answer. Resolves undefined, having read nothing, when the server cannot start.
 */
export async function unpackNative(input: Readable, ingestPath: string, diffDir: string, keepInput: boolean): Promise<Unpacked | undefined> {
  const s = await ensureServer();
  if (!s) return undefined;
  const { sock, answer } = openJob(s, [keepInput ? '1' : '0', diffDir, ingestPath], {});
  let inputError: unknown;
  await new Promise<void>((resolve) => {
    let done = false;
    const finish = (): void => {
      if (done) return;
      done = true;
      input.off('data', onData);
      input.off('end', finish);
      input.off('error', onError);
      sock.off('drain', onDrain);
      // the job reads to the end of its input: a cut input makes it stop and answer
      sock.end();
      resolve();
    };
    const onData = (c: Buffer): void => { if (!sock.write(c)) input.pause(); };
    const onDrain = (): void => { input.resume(); };
    const onError = (e: unknown): void => { inputError = e; finish(); };
    input.on('data', onData);
    input.once('end', finish);
    input.once('error', onError);
    sock.on('drain', onDrain);
    // the job stopped early: what is left of the input flows on with no reader
    const drop = (): void => { finish(); input.on('error', () => {}); input.resume(); };
    sock.once('end', drop);
    sock.once('close', drop);
  });
  const text = await answer;
  if (inputError) throw inputError;
  return result(text);
}

/**
 * As unpackNative, for a registry blob the job downloads itself (native/unpack/download.c,
 * retried and resumed as blob-download.ts does): its bytes never pass through the daemon.
 * Aborting `signal` ends the job; this then rejects with the abort reason once it has ended.
 */
export async function unpackNativeDownload(d: BlobDownload, signal: AbortSignal, events: DownloadEvents, ingestPath: string, diffDir: string, keepInput: boolean): Promise<Unpacked | undefined> {
  const s = await ensureServer();
  if (!s) return undefined;
  if (signal.aborted) throw signal.reason;
  const headers = Object.entries(d.headers).map(([k, v]) => {
    if (/[\r\n\0]/.test(k + v)) throw new Error(`invalid header ${k} for the registry`);
    return `${k}: ${v}`;
  });
  const { sock, answer } = openJob(s, [
    keepInput ? '1' : '0', diffDir, ingestPath, d.url, String(d.size ?? -1), String(d.attempts), String(d.retryDelayMs), headers.join('\n'), d.ca ?? '',
  ], events);
  // closing our side tells the job to give up; it then closes the connection
  const abort = (): void => { sock.end(); };
  signal.addEventListener('abort', abort, { once: true });
  try {
    const text = await answer;
    if (signal.aborted) throw signal.reason;
    return result(text);
  } finally {
    signal.removeEventListener('abort', abort);
  }
}
