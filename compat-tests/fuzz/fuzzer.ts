// A seeded request fuzzer over the Engine API route table, speaking raw HTTP on the daemon's
// UNIX socket so it can send what no client library would: wrong methods, bad versions,
// hostile path parameters, mistyped queries, broken JSON, lying Content-Length, truncated and
// slow bodies, oversize headers, hijack attempts.
import { connect } from 'node:net';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { REPO_ROOT } from '../harness.js';

interface Param { name: string; in: string; type?: string; enum?: unknown[] }
interface Operation { method: string; path: string; operationId: string; parameters?: Param[]; body?: unknown }

/** Operations that would reach beyond loopback (registries, remote build contexts): not fuzzed here. */
export const NETWORK_OPS = new Set(['ImageCreate', 'ImagePush', 'SystemAuth', 'DistributionInspect', 'ImageSearch', 'ImageBuild', 'PluginPull', 'PluginUpgrade', 'PluginCreate', 'BuildPrune']);

export interface FuzzResult {
  requests: number;
  byStatus: Record<string, number>;
  /** 5xx answers other than 501 (not implemented) and 503 (swarm inactive), which the Engine gives too. */
  serverErrors: { request: string; status: number; body: string }[];
  noResponse: number;
}

/** mulberry32: small, fast, reproducible. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export function loadOperations(): Operation[] {
  const routes = JSON.parse(readFileSync(join(REPO_ROOT, 'openapi', 'routes.json'), 'utf8'));
  return (routes.operations as Operation[]).filter((o) => !NETWORK_OPS.has(o.operationId));
}

const NASTY_STRINGS = ['busybox', 'busybox:latest', '../../../../etc/passwd', '..%2f..%2fetc%2fshadow', '%00', '/', '',
  'a'.repeat(5000), '\u00e9\u4e2d\ud83d\ude00', 'sha256:' + '0'.repeat(64), '0'.repeat(64), 'x y', '%', '%zz', '?', '#', '\\..\\..',
  '-1', '99999999999999999999', 'NaN', 'true', 'null', '{"a":1}', '[', 'ubuntu@sha256:abc', 'UPPER/Case', 'a:b:c:d'];

const FILTER_VALUES = ['{"label":["a=b"]}', '{"dangling":["true"]}', '{"status":["running","bogus"]}', '{', '[]', '{"nope":["x"]}',
  '{"label":{"a":true}}', '{"until":["1h"]}', '{"since":["' + 'z'.repeat(100) + '"]}', '{"id":[""]}', '"str"', 'null'];

export function runFuzz(opts: { socket: string; count: number; seed: number; concurrency?: number; timeoutMs?: number }): Promise<FuzzResult> {
  const rnd = prng(opts.seed);
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rnd() * xs.length)]!;
  const chance = (p: number) => rnd() < p;
  const ops = loadOperations();
  const result: FuzzResult = { requests: 0, byStatus: {}, serverErrors: [], noResponse: 0 };

  const randomJson = (depth = 0): unknown => {
    const r = rnd();
    if (depth > 3 || r < 0.3) return pick([0, -1, 1.5, 2 ** 53, '', 'x', true, false, null, pick(NASTY_STRINGS)]);
    if (r < 0.5) return Array.from({ length: Math.floor(rnd() * 4) }, () => randomJson(depth + 1));
    const keys = ['Image', 'Cmd', 'Entrypoint', 'Env', 'HostConfig', 'Labels', 'Name', 'Driver', 'Binds', 'Mounts', 'Memory', 'Tty',
      'NetworkMode', 'PortBindings', 'RestartPolicy', 'Healthcheck', 'User', 'WorkingDir', 'Volumes', 'Options', 'IPAM', 'Container', 'Detach', 'AttachStdin'];
    const o: Record<string, unknown> = {};
    for (let i = Math.floor(rnd() * 5); i > 0; i--) o[chance(0.8) ? pick(keys) : pick(NASTY_STRINGS).slice(0, 20)] = randomJson(depth + 1);
    return o;
  };

  const queryValue = (p: Param): string => {
    if (p.name === 'filters' && chance(0.7)) return pick(FILTER_VALUES);
    if (p.enum && chance(0.5)) return String(pick(p.enum));
    if (p.type === 'boolean' && chance(0.5)) return pick(['1', '0', 'true', 'false', 'yes', '']);
    if (p.type === 'integer' && chance(0.5)) return pick(['0', '-1', '10', '1e3', '9999999999999', 'abc']);
    return pick(NASTY_STRINGS);
  };

  const buildRequest = (): { head: string; body: Buffer; declaredLength?: number; slow: boolean; truncate: boolean } => {
    const op = pick(ops);
    let path = op.path.replace(/\{[^}]+\}/g, () => encodeURIComponent(pick(NASTY_STRINGS)).slice(0, 6000));
    if (chance(0.05)) path = '/' + pick(NASTY_STRINGS);
    const version = pick(['', '', '/v1.55', '/v1.44', '/v1.24', '/v1.12', '/v9.99', '/vabc', '/v1.']);
    const params = (op.parameters ?? []).filter((p) => p.in === 'query' && chance(0.6));
    const qs = params.map((p) => `${encodeURIComponent(chance(0.95) ? p.name : pick(NASTY_STRINGS))}=${encodeURIComponent(queryValue(p))}`);
    if (chance(0.1)) qs.push(`${pick(['x', 'filters', 'all'])}=${encodeURIComponent(pick(NASTY_STRINGS))}`);
    const method = chance(0.85) ? op.method : pick(['GET', 'POST', 'PUT', 'DELETE', 'HEAD', 'PATCH', 'OPTIONS', 'BREW']);
    const headers: string[] = ['Host: docker'];
    let body = Buffer.alloc(0);
    const r = rnd();
    if (op.body !== undefined || chance(0.1)) {
      if (r < 0.55) body = Buffer.from(JSON.stringify(randomJson()));
      else if (r < 0.7) body = Buffer.from('{"Image": "busybox", "Cmd": [' + '"x",'.repeat(Math.floor(rnd() * 5)));
      else if (r < 0.8) body = Buffer.from(Array.from({ length: Math.floor(rnd() * 2048) }, () => Math.floor(rnd() * 256)));
      else if (r < 0.83) body = Buffer.alloc(17 * 1024 * 1024, 0x20); // past the JSON size cap
      else body = Buffer.from(JSON.stringify(randomJson()));
      headers.push(`Content-Type: ${pick(['application/json', 'application/json', 'application/x-tar', 'text/plain', 'application/json; charset=latin1', ''])}`);
    }
    const truncate = body.length > 0 && chance(0.05);
    const declaredLength = truncate ? body.length + 100 : body.length;
    if (chance(0.05)) {
      headers.push('Transfer-Encoding: chunked');
      body = Buffer.concat([Buffer.from(`${body.length.toString(16)}\r\n`), body, Buffer.from(chance(0.5) ? '\r\n0\r\n\r\n' : '\r\nzz\r\n')]);
    } else if (body.length || chance(0.2)) {
      headers.push(`Content-Length: ${chance(0.03) ? pick(['-5', 'abc', '99999999999']) : declaredLength}`);
    }
    // Connection: close lets the answer end the exchange instead of the timeout
    if (chance(0.08)) headers.push('Connection: Upgrade', `Upgrade: ${pick(['tcp', 'h2c', 'websocket'])}`);
    else headers.push('Connection: close');
    if (chance(0.05)) headers.push(`X-Registry-Auth: ${pick(['!!!', 'e30', Buffer.from('{"username":1}').toString('base64'), 'a'.repeat(9000)])}`);
    if (chance(0.01)) headers.push(`X-Big: ${'b'.repeat(20_000)}`); // past the header size limit
    if (chance(0.01)) for (let i = 0; i < 3000; i++) headers.push(`X-H${i}: v`);
    const head = `${method} ${version}${path}${qs.length ? '?' + qs.join('&') : ''} HTTP/1.1\r\n${headers.join('\r\n')}\r\n\r\n`;
    return { head, body, slow: chance(0.03), truncate };
  };

  const one = (): Promise<void> => new Promise((resolve) => {
    const req = buildRequest();
    const label = req.head.split('\r\n')[0]!.slice(0, 300);
    const s = connect(opts.socket);
    let out = Buffer.alloc(0);
    let done = false;
    const finish = () => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      s.destroy();
      result.requests++;
      const m = /^HTTP\/1\.[01] (\d{3})/.exec(out.toString('latin1', 0, 20));
      if (!m) { result.noResponse++; result.byStatus.none = (result.byStatus.none ?? 0) + 1; resolve(); return; }
      const status = Number(m[1]);
      result.byStatus[m[1]!] = (result.byStatus[m[1]!] ?? 0) + 1;
      if (status >= 500 && status !== 501 && status !== 503) {
        const text = out.toString('utf8');
        result.serverErrors.push({ request: label, status, body: text.slice(text.indexOf('\r\n\r\n') + 4, 400) });
      }
      resolve();
    };
    const timer = setTimeout(finish, opts.timeoutMs ?? 1000);
    s.on('data', (b) => { out = Buffer.concat([out, b]); if (out.length > 65536) finish(); });
    s.on('error', finish);
    s.on('close', finish);
    s.on('connect', async () => {
      const data = Buffer.concat([Buffer.from(req.head, 'latin1'), req.body]);
      const sendTo = req.truncate ? data.length - Math.min(req.body.length, 10) : data.length;
      if (req.slow) {
        for (let i = 0; i < sendTo; i += Math.ceil(sendTo / 4)) {
          if (done) return;
          s.write(data.subarray(i, Math.min(sendTo, i + Math.ceil(sendTo / 4))));
          await new Promise((r) => setTimeout(r, 40));
        }
      } else {
        s.write(data.subarray(0, sendTo));
      }
      if (req.truncate) s.end();
    });
  });

  return (async () => {
    let started = 0;
    await Promise.all(Array.from({ length: opts.concurrency ?? 16 }, async () => {
      while (started < opts.count) { started++; await one(); }
    }));
    return result;
  })();
}
