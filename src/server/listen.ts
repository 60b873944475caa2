// Listeners for -H hosts: unix:///path (mode 0660, group docker when it exists) and
// tcp://host:port (optionally TLS, with client certificates under --tlsverify).
import { chmod, chown, mkdir, readFile, unlink } from 'node:fs/promises';
import { createServer as createHttpServer, type Server } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import { connect } from 'node:net';
import { dirname } from 'node:path';
import type { ApiServer } from './api-server.js';

export interface TlsOptions {
  verify: boolean;
  ca?: string;
  cert: string;
  key: string;
}

export type Endpoint = { kind: 'unix'; path: string } | { kind: 'tcp'; host: string; port: number };

export function parseHost(spec: string, tls: boolean): Endpoint {
  if (spec.startsWith('unix://')) {
    const path = spec.slice('unix://'.length);
    if (!path.startsWith('/')) throw new Error(`invalid unix socket address ${spec}: an absolute path is required`);
    if (Buffer.byteLength(path) > 107) throw new Error(`unix socket path too long (max 107 bytes): ${path}`);
    return { kind: 'unix', path };
  }
  if (spec.startsWith('tcp://')) {
    const rest = spec.slice('tcp://'.length).replace(/\/$/, '');
    const m = /^(?:\[([^\]]+)\]|([^:]*))(?::(\d+))?$/.exec(rest);
    if (!m) throw new Error(`invalid tcp address ${spec}`);
    const host = m[1] ?? (m[2] || '0.0.0.0');
    const port = m[3] !== undefined ? Number(m[3]) : tls ? 2376 : 2375;
    if (!(port >= 0 && port < 65536)) throw new Error(`invalid port in ${spec}`);
    return { kind: 'tcp', host, port };
  }
  if (spec.startsWith('/')) return parseHost(`unix://${spec}`, tls);
  throw new Error(`invalid host ${spec}: use unix:///path or tcp://host:port`);
}

export interface Listener {
  endpoint: Endpoint;
  server: Server;
  /** The address in -H form, with the real port for tcp://...:0. */
  address: string;
  close(): Promise<void>;
}

function socketInUse(path: string): Promise<boolean> {
  return new Promise((resolve) => {
    const c = connect(path);
    c.once('connect', () => { c.destroy(); resolve(true); });
    c.once('error', () => resolve(false));
  });
}

async function dockerGid(): Promise<number | undefined> {
  const text = await readFile('/etc/group', 'utf8').catch(() => '');
  const line = text.split('\n').find((l) => l.startsWith('docker:'));
  return line ? Number(line.split(':')[2]) : undefined;
}

export async function listen(ep: Endpoint, api: ApiServer, tls?: TlsOptions): Promise<Listener> {
  const opts = { requestTimeout: 0, headersTimeout: 60_000, keepAliveTimeout: 5_000, noDelay: true };
  const server: Server = tls && ep.kind === 'tcp'
    ? createHttpsServer({
      ...opts,
      key: await readFile(tls.key), cert: await readFile(tls.cert),
      ca: tls.ca ? await readFile(tls.ca) : undefined,
      requestCert: tls.verify, rejectUnauthorized: tls.verify,
    }) as unknown as Server
    : createHttpServer(opts);
  server.on('request', api.onRequest);
  server.on('upgrade', api.onUpgrade);
  server.on('clientError', (err: NodeJS.ErrnoException, socket) => {
    if (err.code === 'ECONNRESET' || !socket.writable) { socket.destroy(); return; }
    socket.end('HTTP/1.1 400 Bad Request\r\nContent-Type: application/json\r\nConnection: close\r\n\r\n{"message":"bad request"}\n');
  });
  if (ep.kind === 'unix') {
    await mkdir(dirname(ep.path), { recursive: true, mode: 0o755 });
    // A socket file is stale unless something still accepts connections on it.
    if (await socketInUse(ep.path)) throw new Error(`another daemon is already listening on ${ep.path}`);
    await unlink(ep.path).catch((e) => { if (e.code !== 'ENOENT') throw e; });
    await new Promise<void>((resolve, reject) => { server.once('error', reject); server.listen(ep.path, () => { server.off('error', reject); resolve(); }); });
    await chmod(ep.path, 0o660);
    const gid = await dockerGid();
    if (gid !== undefined) await chown(ep.path, 0, gid).catch(() => {});
  } else {
    await new Promise<void>((resolve, reject) => { server.once('error', reject); server.listen(ep.port, ep.host, () => { server.off('error', reject); resolve(); }); });
  }
  const addr = server.address();
  const address = ep.kind === 'unix' ? `unix://${ep.path}` : `tcp://${ep.host}:${typeof addr === 'object' && addr ? addr.port : ep.port}`;
  return {
    endpoint: ep,
    server,
    address,
    close: async () => {
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections?.();
      });
      if (ep.kind === 'unix') await unlink(ep.path).catch(() => {});
    },
  };
}
