// HTTP-level behaviour of the API server: version prefix, headers, routing, 404/405/501,
// query coercion, JSON body checks, error mapping, hijack (with and without Upgrade), streams.
import test from 'ava';
import { PassThrough } from 'node:stream';
import { ConflictError, NotFoundError, NotModifiedError } from '../errors.js';
import { systemHandlers } from '../routes/system.js';
import { empty, hijacked, json, stream, type HandlerTable } from '../routes/types.js';
import { startTestServer, type TestServer } from './test-server.js';

const aborted: string[] = [];
const echo: HandlerTable[string] = (req) => json({ op: req.operationId, apiVersion: req.apiVersion, params: req.params, query: req.query, body: req.body ?? null });

const handlers: HandlerTable = {
  ...systemHandlers,
  ContainerList: echo,
  ImageList: echo,
  ImageInspect: echo,
  ImageDelete: echo,
  ContainerCreate: echo,
  ContainerStop: echo,
  ContainerInspect: (req) => {
    if (req.params.id === 'missing') throw new NotFoundError('No such container: missing');
    if (req.params.id === 'busy') throw new ConflictError('container is busy');
    throw new Error('boom');
  },
  ContainerStart: () => { throw new NotModifiedError('container already started'); },
  ContainerAttach: async (req) => {
    const sock = await req.hijack('application/vnd.docker.raw-stream');
    sock.write('hello\n');
    sock.on('data', (d: Buffer) => { sock.write(`echo:${d}`); if (d.includes('bye')) sock.end(); });
    return hijacked();
  },
  ExecStart: async (req) => {
    const sock = await req.hijack('application/vnd.docker.multiplexed-stream');
    sock.write(`body:${JSON.stringify(req.body)}\n`);
    sock.on('data', (d: Buffer) => { sock.write(`stdin:${d}`); sock.end(); });
    return hijacked();
  },
  ContainerLogs: () => {
    const out = new PassThrough();
    out.write('first\n');
    setTimeout(() => { out.end('second\n'); }, 1500);
    return stream(out, 'text/plain');
  },
  ContainerWait: (req) => {
    const out = new PassThrough();
    out.write('{}\n');
    req.signal.addEventListener('abort', () => { aborted.push(req.params.id); out.end(); });
    return stream(out);
  },
  ContainerPause: () => empty(204),
};

let s: TestServer;
test.before(async () => { s = await startTestServer(handlers); });
test.after.always(async () => { await s?.close(); });

const STD = { 'api-version': '1.55', 'docker-experimental': 'false', ostype: 'linux' };

test('_ping GET and HEAD carry the Engine headers', async (t) => {
  const g = await s.get('/_ping');
  t.is(g.status, 200);
  t.is(g.body, 'OK');
  t.like(g.headers, { ...STD, 'cache-control': 'no-cache, no-store, must-revalidate', pragma: 'no-cache', swarm: 'inactive', 'builder-version': '1' });
  t.regex(g.headers.server, /^Docker\/\S+ \(linux\)$/);
  const h = await s.send('HEAD', '/_ping');
  t.is(h.status, 200);
  t.is(h.headers['content-length'], '0');
  t.is(h.body, '');
});

test('version prefix is stripped and passed on; unprefixed means the maximum', async (t) => {
  t.is(JSON.parse((await s.get('/v1.24/containers/json')).body).apiVersion, '1.24');
  t.is(JSON.parse((await s.get('/v1.41/containers/json')).body).apiVersion, '1.41');
  t.is(JSON.parse((await s.get('/containers/json')).body).apiVersion, '1.55');
});

test('versions outside 1.24..1.55 get the Engine messages', async (t) => {
  const old = await s.get('/v1.12/containers/json');
  t.is(old.status, 400);
  t.deepEqual(JSON.parse(old.body), { message: 'client version 1.12 is too old. Minimum supported API version is 1.24, please upgrade your client to a newer version' });
  t.like(old.headers, STD);
  const neu = await s.get('/v1.99/info');
  t.is(neu.status, 400);
  t.deepEqual(JSON.parse(neu.body), { message: 'client version 1.99 is too new. Maximum supported API version is 1.55' });
  t.is((await s.get('/v1.23/_ping')).status, 400);
  t.is((await s.get('/v1.56/_ping')).status, 400);
});

test('unknown path 404, wrong method 405, known operation without handler 501', async (t) => {
  const nf = await s.get('/no/such/thing');
  t.is(nf.status, 404);
  t.deepEqual(JSON.parse(nf.body), { message: 'page not found' });
  t.like(nf.headers, STD);
  const na = await s.send('PUT', '/containers/json');
  t.is(na.status, 405);
  t.truthy(JSON.parse(na.body).message);
  const ni = await s.get('/v1.44/networks');
  t.is(ni.status, 501);
  t.deepEqual(JSON.parse(ni.body), { message: 'berth does not implement NetworkList yet' });
});

test('static routes win over parameterised ones; image names match across slashes', async (t) => {
  t.is(JSON.parse((await s.get('/images/json')).body).op, 'ImageList');
  t.is(JSON.parse((await s.get('/containers/json')).body).op, 'ContainerList');
  const r = JSON.parse((await s.get('/v1.45/images/localhost:5000/team/app:1.0/json')).body);
  t.is(r.op, 'ImageInspect');
  t.is(r.params.name, 'localhost:5000/team/app:1.0');
  const d = JSON.parse((await s.send('DELETE', '/images/sha256%3Aabc')).body);
  t.is(d.op, 'ImageDelete');
  t.is(d.params.name, 'sha256:abc');
});

test('query coercion: booleans, integers, defaults, filters in both forms', async (t) => {
  for (const [raw, want] of [['1', true], ['true', true], ['True', true], ['0', false], ['false', false], ['False', false], ['', false]] as const) {
    t.is(JSON.parse((await s.get(`/containers/json?all=${raw}`)).body).query.all, want, `all=${raw}`);
  }
  const q = JSON.parse((await s.get('/containers/json?limit=5')).body).query;
  t.is(q.limit, 5);
  t.is(q.all, false, 'spec default filled in');
  const f1 = JSON.parse((await s.get(`/containers/json?filters=${encodeURIComponent('{"label":["a=b"],"status":["running"]}')}`)).body).query.filters;
  t.deepEqual(f1, { label: ['a=b'], status: ['running'] });
  const f2 = JSON.parse((await s.get(`/containers/json?filters=${encodeURIComponent('{"label":{"a=b":true,"c":false}}')}`)).body).query.filters;
  t.deepEqual(f2, { label: ['a=b'] });
  const bad = await s.get('/containers/json?all=maybe');
  t.is(bad.status, 400);
  t.regex(JSON.parse(bad.body).message, /\ball\b/);
  const badInt = await s.send('POST', '/containers/abc/stop?t=soon');
  t.is(badInt.status, 400);
  t.regex(JSON.parse(badInt.body).message, /\bt\b.*integer/);
  const badFilter = await s.get('/containers/json?filters=%7Bnot-json');
  t.is(badFilter.status, 400);
  t.regex(JSON.parse(badFilter.body).message, /invalid filter/);
});

test('JSON bodies: parsed and validated; malformed, non-UTF-8 and oversize bodies refused', async (t) => {
  const ok = await s.send('POST', '/containers/create?name=x', JSON.stringify({ Image: 'busybox', Cmd: ['true'], HostConfig: { MemorySwappiness: -1, Binds: null } }), { 'content-type': 'application/json' });
  t.is(ok.status, 200, ok.body);
  t.is(JSON.parse(ok.body).body.Image, 'busybox');
  const malformed = await s.send('POST', '/containers/create', '{"Image": ', { 'content-type': 'application/json' });
  t.is(malformed.status, 400);
  t.regex(JSON.parse(malformed.body).message, /^invalid JSON/);
  const latin1 = await s.send('POST', '/containers/create', Buffer.from([0x7b, 0x22, 0x49, 0x22, 0x3a, 0x22, 0xff, 0xfe, 0x22, 0x7d]), { 'content-type': 'application/json' });
  t.is(latin1.status, 400);
  t.regex(JSON.parse(latin1.body).message, /UTF-8/);
  const wrongType = await s.send('POST', '/containers/create', JSON.stringify({ Image: 'busybox', Env: 'A=B' }), { 'content-type': 'application/json' });
  t.is(wrongType.status, 400);
  t.regex(JSON.parse(wrongType.body).message, /Env/);
  const nested = await s.send('POST', '/containers/create', JSON.stringify({ Image: 'busybox', HostConfig: { Memory: 'lots' } }), { 'content-type': 'application/json' });
  t.is(nested.status, 400);
  t.regex(JSON.parse(nested.body).message, /HostConfig\.Memory/);
  const big = await s.send('POST', '/containers/create', Buffer.alloc(17 * 1024 * 1024, 0x20), { 'content-type': 'application/json' });
  t.is(big.status, 413);
  t.regex(JSON.parse(big.body).message, /too large/);
  const emptyBody = await s.send('POST', '/containers/create', '', { 'content-type': 'application/json' });
  t.is(emptyBody.status, 400);
});

test('service errors map to status + {"message"}; unknown errors are 500 and logged', async (t) => {
  const nf = await s.get('/containers/missing/json');
  t.is(nf.status, 404);
  t.deepEqual(JSON.parse(nf.body), { message: 'No such container: missing' });
  t.is((await s.get('/containers/busy/json')).status, 409);
  const boom = await s.get('/containers/x/json');
  t.is(boom.status, 500);
  t.deepEqual(JSON.parse(boom.body), { message: 'boom' });
  t.true(s.logs.some((l) => l.includes('level=error') && l.includes('boom')));
  const nm = await s.send('POST', '/containers/x/start');
  t.is(nm.status, 304);
  t.is(nm.body, '');
  t.is((await s.send('POST', '/containers/x/pause')).status, 204);
});

test('hijack with Upgrade: 101 UPGRADED, then a raw two-way stream', async (t) => {
  const out = await s.raw(
    'POST /v1.50/containers/c1/attach?stream=1&stdin=1 HTTP/1.1\r\nHost: api.moby.localhost\r\nConnection: Upgrade\r\nUpgrade: tcp\r\nContent-Length: 0\r\n\r\nbye',
    (got) => got.includes('echo:bye'),
  );
  const [head, rest] = out.split('\r\n\r\n');
  t.regex(head, /^HTTP\/1\.1 101 UPGRADED\r\n/);
  t.regex(head, /\r\nContent-Type: application\/vnd\.docker\.raw-stream\r\n/);
  t.regex(head, /\r\nConnection: Upgrade\r\n/);
  t.regex(head, /\r\nUpgrade: tcp\r\n/);
  t.regex(head, /\r\nApi-Version: 1\.55/);
  t.true(rest.startsWith('hello\n'), rest);
  t.true(rest.includes('echo:bye'));
});

test('hijack with Upgrade reads the JSON body first; stdin sent right after it reaches the stream', async (t) => {
  const body = JSON.stringify({ Detach: false, Tty: false });
  const out = await s.raw(
    `POST /exec/e1/start HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: tcp\r\nContent-Type: application/json\r\nContent-Length: ${body.length}\r\n\r\n${body}early-stdin`,
    (got) => got.includes('stdin:early-stdin'),
  );
  t.regex(out, /^HTTP\/1\.1 101 UPGRADED/);
  t.true(out.includes(`body:${body}\n`), out);
  t.true(out.includes('stdin:early-stdin'), out);
});

test('an upgrade request that fails gets an ordinary error response', async (t) => {
  const out = await s.raw('POST /containers/missing/json HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: tcp\r\n\r\n');
  t.regex(out, /^HTTP\/1\.1 405 /);
  const nf = await s.raw('GET /containers/missing/json HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: tcp\r\n\r\n');
  t.regex(nf, /^HTTP\/1\.1 404 /);
  t.true(nf.endsWith('{"message":"No such container: missing"}\n'), nf);
});

test('hijack without Upgrade: 200, the content type, no length, raw bytes', async (t) => {
  const out = await s.raw('POST /containers/c2/attach?stream=1 HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nbye', (got) => got.includes('echo:bye'));
  const [head, rest] = out.split('\r\n\r\n');
  t.regex(head, /^HTTP\/1\.1 200 OK\r\n/);
  t.regex(head, /Content-Type: application\/vnd\.docker\.raw-stream/);
  t.notRegex(head, /Content-Length|Transfer-Encoding/i);
  t.true(rest.startsWith('hello\n'), rest);
});

test('stream replies deliver each chunk as it is written', async (t) => {
  // the handler writes the second chunk 1.5 s after the first: the first must have arrived on
  // its own (not held back until the end), whatever the machine's load
  let firstAlone = false;
  const out = await s.raw('GET /containers/c/logs HTTP/1.1\r\nHost: x\r\n\r\n', (got) => {
    if (got.includes('first') && !got.includes('second')) firstAlone = true;
    return got.includes('second');
  });
  t.true(firstAlone, 'the first chunk only arrived together with the second');
  t.regex(out, /Transfer-Encoding: chunked/);
});

test('a client that goes away aborts the request signal', async (t) => {
  await s.raw('POST /containers/gone/wait HTTP/1.1\r\nHost: x\r\n\r\n', (got) => got.includes('{}'));
  for (let i = 0; i < 50 && !aborted.includes('gone'); i++) await new Promise((r) => setTimeout(r, 20));
  t.true(aborted.includes('gone'));
});
