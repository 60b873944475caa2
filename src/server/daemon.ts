// Wires a running daemon: data-root lock, services, route table, listeners. berthd's main
// calls this; so can a test that wants a daemon in-process.
import { mkdir, unlink, writeFile } from 'node:fs/promises';
import { buildHandlers } from '../routes/index.js';
import type { HandlerTable } from '../routes/types.js';
import { createServices, shutdownServices, warmServices, type DaemonConfig, type Services } from '../services/index.js';
import { acquireLock, LockedError } from '../store/lock.js';
import { join } from 'node:path';
import { ApiServer } from './api-server.js';
import { BodyValidator } from './body-validator.js';
import { listen, parseHost, type Listener, type TlsOptions } from './listen.js';
import type { Logger } from './log.js';
import { RouteTable } from './route-table.js';

export const ROUTES_URL = new URL('../../../openapi/routes.json', import.meta.url);
export const SCHEMAS_URL = new URL('../../../openapi/schemas.json', import.meta.url);

export interface DaemonOptions {
  config: DaemonConfig;
  log: Logger;
  pidfile?: string;
  tls?: TlsOptions;
  /** Replaces the handler table (tests). */
  handlers?: HandlerTable;
  /** Replaces service construction (tests). */
  services?: (config: DaemonConfig) => Promise<Services>;
}

export interface RunningDaemon {
  services: Services;
  listeners: Listener[];
  /** Closes listeners, runs service shutdown hooks, releases the lock. Idempotent. */
  stop(): Promise<void>;
}

export class DaemonStartError extends Error {}

export async function startDaemon(o: DaemonOptions): Promise<RunningDaemon> {
  const { config, log } = o;
  const endpoints = config.hosts.map((h) => {
    try { return parseHost(h, !!o.tls); } catch (e) { throw new DaemonStartError((e as Error).message); }
  });
  await mkdir(config.dataRoot, { recursive: true, mode: 0o711 });
  await mkdir(config.execRoot, { recursive: true, mode: 0o700 });
  let lock;
  try {
    lock = await acquireLock(join(config.dataRoot, 'berthd.lock'));
  } catch (e) {
    if (e instanceof LockedError) throw new DaemonStartError(`data-root ${config.dataRoot} is in use by another berthd (pid ${e.owner.pid})`);
    throw e;
  }
  const listeners: Listener[] = [];
  let services: Services | undefined;
  let api: ApiServer | undefined;
  let stopped: Promise<void> | undefined;
  const stop = (): Promise<void> => (stopped ??= (async () => {
    await Promise.all(listeners.map((l) => withTimeout(l.close(), 3000)));
    api?.closeUpgraded();
    if (services) await shutdownServices(services, (name, err) => log.error(`shutdown of ${name} failed`, { error: String(err) }));
    if (o.pidfile) await unlink(o.pidfile).catch(() => {});
    await lock.release();
  })());
  try {
    services = await (o.services ?? createServices)(config);
    const validator = new BodyValidator(SCHEMAS_URL);
    api = new ApiServer({ services, handlers: o.handlers ?? buildHandlers(), routes: RouteTable.load(ROUTES_URL), validator, log });
    for (const ep of endpoints) {
      const l = await listen(ep, api, o.tls).catch((e: Error) => {
        throw new DaemonStartError(`cannot listen on ${ep.kind === 'unix' ? ep.path : `${ep.host}:${ep.port}`}: ${e.message}`);
      });
      listeners.push(l);
      log.info(`API listen on ${l.address.replace(/^unix:\/\//, '')}`);
      if (ep.kind === 'tcp' && !o.tls?.verify) {
        // As dockerd: an API on TCP without mutual TLS is root for anyone who can reach it.
        log.warn(`Binding to IP address without --tlsverify is insecure and gives root access on this machine to everyone who has access to your network.`, { host: l.address });
        log.warn('Binding to an IP address, even on localhost, can also give access to scripts run in a browser. Be safe out there!', { host: l.address });
        if (!o.tls) log.warn(`[DEPRECATION NOTICE]: API is accessible on ${l.address.replace(/^tcp:/, 'http:')} without encryption. Use --tlsverify with --tlscacert, --tlscert and --tlskey.`);
      }
    }
    if (o.pidfile) await writeFile(o.pidfile, `${process.pid}\n`, { mode: 0o644 });
    setImmediate(() => { validator.warm(); warmServices(services!); });
  } catch (e) {
    await stop().catch(() => {});
    throw e;
  }
  return { services, listeners, stop };
}

function withTimeout(p: Promise<void>, ms: number): Promise<void> {
  return new Promise((resolve) => {
    const t = setTimeout(resolve, ms);
    p.finally(() => { clearTimeout(t); resolve(); }).catch(() => {});
  });
}
