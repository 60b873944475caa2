// Test support for src/server tests: an ApiServer with a given handler table on a temp socket.
import { mkdtemp, rm } from 'node:fs/promises';
import { connect } from 'node:net';
import { Agent, request } from 'undici';
import type { HandlerTable } from '../routes/types.js';
import { EventService } from '../services/events.js';
import type { Services } from '../services/index.js';
import { SystemService } from '../services/system.js';
import { ApiServer } from './api-server.js';
import { BodyValidator } from './body-validator.js';
import { ROUTES_URL, SCHEMAS_URL } from './daemon.js';
import { listen, type Listener } from './listen.js';
import { createLogger } from './log.js';
import { RouteTable } from './route-table.js';

export interface TestServer {
  socket: string;
  logs: string[];
  get(path: string, headers?: Record<string, string>): Promise<{ status: number; headers: Record<string, string>; body: string }>;
  send(method: string, path: string, body?: string | Buffer, headers?: Record<string, string>): Promise<{ status: number; headers: Record<string, string>; body: string }>;
  /** Writes raw bytes on a fresh connection; resolves with everything read until `until` matches or the peer closes. */
  raw(bytes: string | Buffer, until?: (soFar: string) => boolean): Promise<string>;
  close(): Promise<void>;
}

export async function startTestServer(handlers: HandlerTable): Promise<TestServer> {
  const dir = await mkdtemp('/tmp/bs-');
  const config = { dataRoot: `${dir}/data`, execRoot: `${dir}/exec`, hosts: [], logLevel: 'debug', runtimes: {}, defaultRuntime: 'runc', file: {} };
  const events = new EventService();
  const system = new SystemService(config);
  const services = { config, events, system } as unknown as Services;
  const logs: string[] = [];
  const api = new ApiServer({ services, handlers, routes: RouteTable.load(ROUTES_URL), validator: new BodyValidator(SCHEMAS_URL), log: createLogger('debug', (l) => logs.push(l)) });
  const socket = `${dir}/api.sock`;
  const l: Listener = await listen({ kind: 'unix', path: socket }, api);
  const agent = new Agent({ connect: { socketPath: socket } });
  const send = async (method: string, path: string, body?: string | Buffer, headers: Record<string, string> = {}) => {
    const res = await request(`http://localhost${path}`, { method: method as any, body, headers, dispatcher: agent });
    const h: Record<string, string> = {};
    for (const [k, v] of Object.entries(res.headers)) h[k] = String(v);
    return { status: res.statusCode, headers: h, body: await res.body.text() };
  };
  return {
    socket,
    logs,
    get: (path, headers) => send('GET', path, undefined, headers),
    send,
    raw: (bytes, until) => new Promise((resolve, reject) => {
      const s = connect(socket);
      let got = '';
      s.on('data', (d) => { got += d.toString('latin1'); if (until?.(got)) { s.destroy(); resolve(got); } });
      s.on('close', () => resolve(got));
      s.on('error', reject);
      s.write(bytes);
    }),
    close: async () => {
      api.closeUpgraded();
      await agent.close();
      await l.close();
      await rm(dir, { recursive: true, force: true });
    },
  };
}
