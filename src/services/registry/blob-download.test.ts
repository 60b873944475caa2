// downloadBlob against small HTTP servers on 127.0.0.1 that misbehave in the ways registries
// and their storage do: connections cut mid-body, Range ignored, redirects to another origin,
// server errors, refusals, bodies longer than the manifest says.
import test from 'ava';
import { randomBytes } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { DigestMismatchError } from '../../store/content.js';
import { downloadBlob, DownloadError, type BlobDownload } from './blob-download.js';

const blob = randomBytes(3 << 20);

async function serve(handler: (req: IncomingMessage, res: ServerResponse, n: number) => void): Promise<{ url: string; server: Server; requests: IncomingMessage[] }> {
  const requests: IncomingMessage[] = [];
  const server = createServer((req, res) => { requests.push(req); handler(req, res, requests.length); });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/v2/r/blobs/x`, server, requests };
}

const close = (s: Server): Promise<void> => new Promise((resolve) => { s.closeAllConnections(); s.close(() => resolve()); });

async function fetchAll(d: Partial<BlobDownload> & { url: string }, signal = new AbortController().signal, retries: number[] = []): Promise<Buffer> {
  const chunks: Buffer[] = [];
  const spec: BlobDownload = { headers: {}, attempts: 3, retryDelayMs: 10, size: blob.length, ...d };
  for await (const c of downloadBlob(spec, signal, { retry: (s) => retries.push(s) })) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

/** Serves `blob` honouring `Range: bytes=N-` when `ranges`. */
function send(req: IncomingMessage, res: ServerResponse, o: { ranges: boolean; cutAt?: number }): void {
  const m = o.ranges ? /^bytes=(\d+)-$/.exec(req.headers.range ?? '') : null;
  const from = m ? Number(m[1]) : 0;
  res.writeHead(m ? 206 : 200, { 'content-length': blob.length - from, ...(m ? { 'content-range': `bytes ${from}-${blob.length - 1}/${blob.length}` } : {}) });
  if (o.cutAt === undefined) { res.end(blob.subarray(from)); return; }
  res.write(blob.subarray(from, o.cutAt), () => res.destroy());
}

test('a body cut mid-way is resumed with a Range request and arrives whole', async (t) => {
  const s = await serve((req, res, n) => send(req, res, { ranges: true, cutAt: n === 1 ? 1 << 20 : undefined }));
  try {
    t.true((await fetchAll({ url: s.url })).equals(blob));
    t.is(s.requests.length, 2);
    t.is(s.requests[1]!.headers.range, `bytes=${1 << 20}-`);
  } finally { await close(s.server); }
});

test('a server that ignores Range sends it all again: the bytes already had are skipped', async (t) => {
  const s = await serve((req, res, n) => send(req, res, { ranges: false, cutAt: n === 1 ? 1 << 20 : undefined }));
  try {
    t.true((await fetchAll({ url: s.url })).equals(blob));
    t.is(s.requests.length, 2);
  } finally { await close(s.server); }
});

test('cuts beyond the attempts fail with the bytes had; waits are announced', async (t) => {
  const s = await serve((req, res) => send(req, res, { ranges: true, cutAt: 1000 + Number(/\d+/.exec(req.headers.range ?? '0')?.[0] ?? 0) }));
  const retries: number[] = [];
  try {
    const err = await t.throwsAsync(fetchAll({ url: s.url, attempts: 3, retryDelayMs: 1000 }, undefined, retries), { instanceOf: DownloadError });
    t.regex(err!.message, new RegExp(`^unexpected EOF after 3000 of ${blob.length} bytes`));
    t.deepEqual(retries, [1, 2, 1], 'attempt n waits n times the delay, counted down by the second');
  } finally { await close(s.server); }
});

test('a refusal is not retried; a server error is', async (t) => {
  const refused = await serve((_req, res) => { res.writeHead(404).end('{"errors":[{"code":"BLOB_UNKNOWN"}]}'); });
  try {
    const err = await t.throwsAsync(fetchAll({ url: refused.url }), { instanceOf: DownloadError });
    t.is(err!.status, 404);
    t.is(refused.requests.length, 1);
  } finally { await close(refused.server); }
  const flaky = await serve((req, res, n) => { if (n === 1) res.writeHead(503).end(); else send(req, res, { ranges: true }); });
  try {
    t.true((await fetchAll({ url: flaky.url })).equals(blob));
    t.is(flaky.requests.length, 2);
  } finally { await close(flaky.server); }
});

test('a redirect to another origin is followed without the credentials', async (t) => {
  const storage = await serve((req, res) => send(req, res, { ranges: true }));
  const registry = await serve((_req, res) => { res.writeHead(307, { location: `${storage.url}?signed=1` }).end(); });
  try {
    t.true((await fetchAll({ url: registry.url, headers: { authorization: 'Bearer secret' } })).equals(blob));
    t.is(registry.requests[0]!.headers.authorization, 'Bearer secret');
    t.is(storage.requests[0]!.headers.authorization, undefined);
  } finally { await close(registry.server); await close(storage.server); }
});

test('a body longer than the manifest says is refused before it is all read', async (t) => {
  const s = await serve((_req, res) => { res.writeHead(200); res.write(blob); res.write(blob); res.end(); });
  try {
    await t.throwsAsync(fetchAll({ url: s.url, size: 1 << 20 }), { instanceOf: DigestMismatchError });
  } finally { await close(s.server); }
});

test('an abort during the wait before a retry ends the download at once', async (t) => {
  const s = await serve((req, res) => send(req, res, { ranges: true, cutAt: 1000 }));
  const stop = new AbortController();
  const started = Date.now();
  try {
    const p = fetchAll({ url: s.url, retryDelayMs: 5000 }, stop.signal, []);
    setTimeout(() => stop.abort(new Error('pull stopped')), 300);
    await t.throwsAsync(p, { message: 'pull stopped' });
    t.true(Date.now() - started < 3000);
  } finally { await close(s.server); }
});
