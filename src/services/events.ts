// EventService: the daemon's event bus. Services publish; `GET /events` subscribers receive
// matching events live, and a bounded ring of recent events serves `since` replays.
import { PassThrough, type Readable } from 'node:stream';
import { InvalidParameterError } from '../errors.js';

export interface EventActor { ID: string; Attributes: Record<string, string> }

export interface EventInput {
  Type: string;
  Action: string;
  Actor: EventActor;
  scope?: 'local' | 'swarm';
}

export interface EventMessage {
  Type: string;
  Action: string;
  Actor: EventActor;
  scope: 'local' | 'swarm';
  /** Seconds since the epoch. */
  time: number;
  /** Nanoseconds since the epoch (exact, for ordering and since/until). */
  timeNano: bigint;
}

export type EventFilters = Record<string, string[]>;

export interface StreamOptions {
  /** Nanoseconds since the epoch; replay buffered events from then. */
  since?: bigint;
  /** Nanoseconds since the epoch; the stream ends then. */
  until?: bigint;
  filters?: EventFilters;
  /** API version of the subscriber: below 1.52 the legacy status/id/from fields are added. */
  apiVersion?: string;
  signal?: AbortSignal;
}

/** Bytes of unread events a subscriber may have queued before it is disconnected. */
export const MAX_SUBSCRIBER_BACKLOG = 4 * 1024 * 1024;

const FILTER_KEYS = new Set(['config', 'container', 'daemon', 'event', 'image', 'label', 'network', 'node', 'plugin', 'scope', 'secret', 'service', 'type', 'volume']);

/** Parses the Engine's timestamp arguments: "secs[.nanos]" or RFC 3339. Returns ns since epoch. */
export function parseEventTime(name: string, raw: string, now = nowNano()): bigint {
  const v = raw.trim();
  const m = /^(-?\d+)(?:\.(\d{1,9}))?$/.exec(v);
  if (m) return BigInt(m[1]) * 1_000_000_000n + BigInt((m[2] ?? '').padEnd(9, '0') || '0');
  const rel = /^(\d+(?:\.\d+)?)(ns|us|ms|s|m|h)$/.exec(v);
  if (rel) {
    const mult: Record<string, number> = { ns: 1, us: 1e3, ms: 1e6, s: 1e9, m: 60e9, h: 3600e9 };
    return now - BigInt(Math.round(Number(rel[1]) * mult[rel[2]]));
  }
  const t = Date.parse(v);
  if (!Number.isNaN(t)) return BigInt(t) * 1_000_000n;
  throw new InvalidParameterError(`invalid value for ${name}: ${JSON.stringify(raw)} is not a timestamp`);
}

let lastNano = 0n;
/** Wall-clock nanoseconds, strictly increasing within this process. */
export function nowNano(): bigint {
  const base = BigInt(Date.now()) * 1_000_000n + (process.hrtime.bigint() % 1_000_000n);
  lastNano = base > lastNano ? base : lastNano + 1n;
  return lastNano;
}

export function validateEventFilters(filters: EventFilters): void {
  for (const k of Object.keys(filters)) {
    if (!FILTER_KEYS.has(k)) throw new InvalidParameterError(`invalid filter '${k}'`);
  }
}

const stripTag = (ref: string): string => {
  const at = ref.indexOf('@');
  const base = at >= 0 ? ref.slice(0, at) : ref;
  const slash = base.lastIndexOf('/');
  const colon = base.lastIndexOf(':');
  return colon > slash ? base.slice(0, colon) : base;
};

/** Moby's event filter: every given key must match; values of one key are alternatives. */
export function eventMatches(ev: EventMessage, f: EventFilters): boolean {
  const has = (k: string): boolean => (f[k]?.length ?? 0) > 0;
  const exact = (k: string, ...vals: Array<string | undefined>): boolean => !has(k) || vals.some((v) => v !== undefined && v !== '' && f[k].includes(v));
  const fuzzy = (k: string, ...vals: Array<string | undefined>): boolean =>
    !has(k) || vals.some((v) => v !== undefined && v !== '' && f[k].some((x) => v === x || v.startsWith(x)));
  const named = (k: string, type: string): boolean => !has(k) || (ev.Type === type && fuzzy(k, ev.Actor.ID, ev.Actor.Attributes.name));
  const action = ev.Action.split(':')[0];
  if (!exact('type', ev.Type)) return false;
  if (!exact('event', ev.Action, action)) return false;
  if (!exact('scope', ev.scope)) return false;
  if (has('container') && !fuzzy('container', ev.Actor.ID, ev.Actor.Attributes.name)) return false;
  if (has('image')) {
    const name = ev.Type === 'image' ? ev.Actor.Attributes.name : ev.Actor.Attributes.image;
    if (!exact('image', ev.Actor.ID, name, stripTag(ev.Actor.ID), name && stripTag(name))) return false;
  }
  if (has('label')) {
    const ok = f.label.some((l) => {
      const eq = l.indexOf('=');
      return eq < 0 ? l in ev.Actor.Attributes : ev.Actor.Attributes[l.slice(0, eq)] === l.slice(eq + 1);
    });
    if (!ok) return false;
  }
  for (const k of ['network', 'volume', 'daemon', 'plugin', 'node', 'service', 'secret', 'config']) if (!named(k, k)) return false;
  return true;
}

/** The wire form: timeNano as an exact integer, legacy fields for old clients. */
export function encodeEvent(ev: EventMessage, apiVersion = '1.55'): string {
  const legacy: Record<string, string> = {};
  const [maj, min] = apiVersion.split('.').map(Number);
  if (maj === 1 && min < 52 && (ev.Type === 'container' || ev.Type === 'image')) {
    legacy.status = ev.Action;
    legacy.id = ev.Actor.ID;
    if (ev.Type === 'container' && ev.Actor.Attributes.image) legacy.from = ev.Actor.Attributes.image;
  }
  const body = JSON.stringify({ ...legacy, Type: ev.Type, Action: ev.Action, Actor: ev.Actor, scope: ev.scope, time: ev.time, timeNano: 0 });
  return body.slice(0, -'0}'.length) + `${ev.timeNano}}`;
}

export class EventService {
  private readonly ring: EventMessage[] = [];
  private readonly subscribers = new Set<(ev: EventMessage) => void>();

  constructor(private readonly capacity = 1024) {}

  /** Records an event and hands it to every subscriber. Safe to call from any service. */
  publish(input: EventInput): EventMessage {
    const timeNano = nowNano();
    const ev: EventMessage = {
      Type: input.Type,
      Action: input.Action,
      Actor: { ID: input.Actor.ID, Attributes: { ...input.Actor.Attributes } },
      scope: input.scope ?? 'local',
      time: Number(timeNano / 1_000_000_000n),
      timeNano,
    };
    this.ring.push(ev);
    if (this.ring.length > this.capacity) this.ring.shift();
    for (const s of this.subscribers) {
      try { s(ev); } catch { /* a failing subscriber must not break publishers */ }
    }
    return ev;
  }

  /** Buffered events in [since, until], oldest first. */
  history(since: bigint, until?: bigint, filters: EventFilters = {}): EventMessage[] {
    return this.ring.filter((ev) => ev.timeNano >= since && (until === undefined || ev.timeNano <= until) && eventMatches(ev, filters));
  }

  /** In-process subscription; returns the unsubscribe function. */
  subscribe(filters: EventFilters, onEvent: (ev: EventMessage) => void): () => void {
    const fn = (ev: EventMessage): void => { if (eventMatches(ev, filters)) onEvent(ev); };
    this.subscribers.add(fn);
    return () => { this.subscribers.delete(fn); };
  }

  get listenerCount(): number { return this.subscribers.size; }

  /** NDJSON stream for GET /events: replay since `since`, then live until `until` or abort. */
  stream(o: StreamOptions = {}): Readable {
    const filters = o.filters ?? {};
    validateEventFilters(filters);
    const out = new PassThrough();
    const write = (ev: EventMessage): void => {
      if (out.destroyed) return;
      // A subscriber that stopped reading is cut off rather than buffered for without bound.
      if (out.writableLength + out.readableLength > MAX_SUBSCRIBER_BACKLOG) { out.destroy(); return; }
      out.write(encodeEvent(ev, o.apiVersion) + '\n');
    };
    const now = nowNano();
    if (o.since !== undefined) for (const ev of this.history(o.since, o.until, filters)) write(ev);
    if (o.until !== undefined && o.until <= now) {
      out.end();
      return out;
    }
    const unsubscribe = this.subscribe(filters, (ev) => {
      if (o.until !== undefined && ev.timeNano > o.until) return;
      write(ev);
    });
    let timer: NodeJS.Timeout | undefined;
    const finish = (): void => {
      unsubscribe();
      if (timer) clearTimeout(timer);
      o.signal?.removeEventListener('abort', finish);
      if (!out.writableEnded) out.end();
    };
    // setTimeout caps at ~24.8 days: re-arm until `until` is really reached.
    const arm = (): void => {
      const left = Number((o.until! - nowNano()) / 1_000_000n) + 1;
      if (left <= 0) { finish(); return; }
      timer = setTimeout(arm, Math.min(left, 2 ** 31 - 1));
    };
    if (o.until !== undefined) arm();
    o.signal?.addEventListener('abort', finish);
    out.on('close', finish);
    return out;
  }
}
