// A registry blob as one unbroken stream of bytes, even when its connection is cut: after an
// error or an early end the download waits (attempt n waits n times the delay, as the Engine
// does, reported each second as `Retrying in N seconds`) and goes on from the byte it had
// with a Range request, so the reader (the layer unpacker, which hashes and extracts as it
// reads) never sees the break. It is the JavaScript twin of the native unpacker's own
// downloader (native/unpack/download.c), used when that one is not built.
import { Readable } from 'node:stream';
import { Agent as HttpAgent, get as httpGet, type IncomingMessage } from 'node:http';
import { Agent as HttpsAgent, get as httpsGet } from 'node:https';
import { DigestMismatchError } from '../../store/content.js';

/** What a blob download needs: plain data (the native unpacker gets it as its request). */
export interface BlobDownload {
  url: string;
  /** Authorization and such, as the registry client has them for the blob's scope. */
  headers: Record<string, string>;
  /** PEM of the registry's own CA (certs.d), if it has one. */
  ca?: string;
  /** Size the manifest gives: a shorter body is a cut, a longer one a bad blob. */
  size?: number;
  /** Tries in all (daemon.json max-download-attempts, default 5). */
  attempts: number;
  /** Retry n waits n times this (the Engine: 5 s). */
  retryDelayMs: number;
}

export interface DownloadEvents {
  /** Bytes received so far. */
  bytes?(n: number): void;
  /** Seconds left before the next try. */
  retry?(seconds: number): void;
}

/** A download that failed for good; `status`: the registry's answer when it refused. */
export class DownloadError extends Error {
  constructor(message: string, readonly status?: number) { super(message); this.name = 'DownloadError'; }
}

/** Bytes handed on at a time: few trips to zlib's thread pool and few write calls. */
const BATCH = 512 * 1024;

// One keep-alive pool per scheme and CA, kept for the next layers of the pull.
const agents = new Map<string, HttpAgent>();
function agentFor(https: boolean, ca: string | undefined): HttpAgent {
  const key = `${https}:${ca ?? ''}`;
  let a = agents.get(key);
  if (!a) {
    a = https ? new HttpsAgent({ keepAlive: true, maxSockets: 8, ...(ca ? { ca } : {}) }) : new HttpAgent({ keepAlive: true, maxSockets: 8 });
    agents.set(key, a);
  }
  return a;
}

/** Idle time after which a connection is given up (no headers, or no body bytes). */
const IDLE_TIMEOUT_MS = 120_000;

/** A GET that follows redirects (storage URLs; credentials are not sent to another origin). */
async function get(url: string, headers: Record<string, string>, ca: string | undefined, signal: AbortSignal): Promise<IncomingMessage> {
  let target = new URL(url);
  let h = headers;
  for (let hop = 0; ; hop++) {
    const https = target.protocol === 'https:';
    const res = await new Promise<IncomingMessage>((resolve, reject) => {
      const req = (https ? httpsGet : httpGet)(target, { headers: h, agent: agentFor(https, ca), signal });
      req.setTimeout(IDLE_TIMEOUT_MS, () => req.destroy(new Error('timeout waiting for the registry')));
      req.on('response', (r) => {
        r.setTimeout(IDLE_TIMEOUT_MS, () => r.destroy(new Error('timeout reading from the registry')));
        resolve(r);
      });
      req.on('error', reject);
    });
    const location = res.headers.location;
    if (![301, 302, 303, 307, 308].includes(res.statusCode ?? 0) || !location || hop >= 5) return res;
    res.resume();
    const next = new URL(location, target);
    if (next.origin !== target.origin) h = Object.fromEntries(Object.entries(h).filter(([k]) => k.toLowerCase() !== 'authorization'));
    target = next;
  }
}

function describe(err: any): string {
  return String(err?.code ?? err?.cause?.code ?? err?.message ?? err);
}

const sleep = (ms: number, signal: AbortSignal): Promise<void> => new Promise((resolve, reject) => {
  const t = setTimeout(() => { signal.removeEventListener('abort', stop); resolve(); }, ms);
  const stop = (): void => { clearTimeout(t); reject(signal.reason); };
  signal.addEventListener('abort', stop, { once: true });
});

/**
 * The body's chunks a group at a time (those that arrived since the last wake-up): the reader
 * wakes once per group rather than once per 16 KiB TLS record, and nothing is concatenated.
 */
async function* groups(res: IncomingMessage): AsyncGenerator<Buffer[]> {
  let queued: Buffer[] = [];
  let bytes = 0;
  let ended = false;
  let failed: unknown;
  let wake: (() => void) | undefined;
  const ping = (): void => { const w = wake; wake = undefined; w?.(); };
  res.on('data', (c: Buffer) => {
    queued.push(c);
    bytes += c.length;
    if (bytes >= BATCH) res.pause();
    ping();
  });
  res.on('end', () => { ended = true; ping(); });
  res.on('error', (e) => { failed = e; ping(); });
  res.on('close', () => { if (!ended) failed ??= new Error('connection closed early'); ping(); });
  for (;;) {
    if (queued.length) {
      const g = queued;
      queued = [];
      bytes = 0;
      yield g;
      res.resume();
      continue;
    }
    if (failed) throw failed;
    if (ended) return;
    await new Promise<void>((r) => { wake = r; });
  }
}

/**
 * The blob's bytes as they arrive, a group of chunks at a time (not copied), across cut
 * connections (resumed with a Range request after a wait).
 */
async function* blobGroups(d: BlobDownload, signal: AbortSignal, ev: DownloadEvents = {}): AsyncGenerator<Buffer[]> {
  let got = 0;
  for (let attempt = 1; ; attempt++) {
    let failure = 'connection closed early';
    let res: IncomingMessage | undefined;
    try {
      res = await get(d.url, got ? { ...d.headers, range: `bytes=${got}-` } : d.headers, d.ca, signal);
    } catch (err) {
      if (signal.aborted) throw signal.reason ?? err;
      failure = describe(err);
    }
    if (res) {
      // a registry that ignores the Range sends the whole blob again: the bytes we have are skipped
      const status = res.statusCode ?? 0;
      let skip = status === 200 ? got : 0;
      if (status !== 200 && !(got && status === 206)) {
        res.resume();
        // a refusal (401, 404...) stays a refusal; a server error may pass
        if (status < 500 && status !== 429) throw new DownloadError(`registry answered ${status}`, status);
        failure = `registry answered ${status}`;
      } else {
        try {
          for await (const group of groups(res)) {
            const out: Buffer[] = [];
            for (let c of group) {
              if (skip) {
                if (c.length <= skip) { skip -= c.length; continue; }
                c = c.subarray(skip);
                skip = 0;
              }
              got += c.length;
              if (d.size !== undefined && got > d.size) throw new DigestMismatchError(`blob longer than its ${d.size} bytes`);
              out.push(c);
            }
            if (out.length) yield out;
            ev.bytes?.(got);
          }
          if (d.size === undefined || got === d.size) return;
        } catch (err) {
          if (signal.aborted) throw signal.reason ?? err;
          if (err instanceof DigestMismatchError) throw err;
          failure = describe(err);
        } finally {
          res.destroy(); // a body not read to its end must not hold the connection
        }
      }
    }
    if (attempt >= d.attempts) throw new DownloadError(`unexpected EOF${d.size !== undefined ? ` after ${got} of ${d.size} bytes` : ''} (${failure})`);
    for (let s = Math.round((attempt * d.retryDelayMs) / 1000); s > 0; s--) {
      ev.retry?.(s);
      await sleep(1000, signal);
    }
    if (d.retryDelayMs < 1000) await sleep(d.retryDelayMs * attempt, signal);
  }
}

/** The blob in BATCH-sized buffers, a shorter last one. */
async function* batches(d: BlobDownload, signal: AbortSignal, ev: DownloadEvents): AsyncGenerator<Buffer> {
  let buf = Buffer.allocUnsafe(BATCH);
  let fill = 0;
  for await (const group of blobGroups(d, signal, ev)) {
    for (let c of group) {
      while (c.length) {
        const n = c.copy(buf, fill);
        fill += n;
        c = c.subarray(n);
        if (fill < BATCH) continue;
        yield buf;
        buf = Buffer.allocUnsafe(BATCH);
        fill = 0;
      }
    }
  }
  if (fill) yield buf.subarray(0, fill);
}

/** The blob's bytes; the stream fails with DownloadError, DigestMismatchError or the abort reason. */
export function downloadBlob(d: BlobDownload, signal: AbortSignal, ev: DownloadEvents = {}): Readable {
  return Readable.from(batches(d, signal, ev), { objectMode: false, highWaterMark: 2 * BATCH });
}
