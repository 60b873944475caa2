// The contract between src/server (transport) and src/routes (one module per API tag).
// Route modules never see Node/hono request objects: they get an ApiRequest and return an ApiReply.
import type { Duplex, Readable } from 'node:stream';
import type { Services } from '../services/index.js';

export interface ApiRequest {
  /** operationId from the spec, e.g. "ContainerCreate". */
  operationId: string;
  /** API version in effect: from the /vX.Y prefix, else the daemon's maximum ("1.55"). */
  apiVersion: string;
  /** Path parameters, URL-decoded. */
  params: Record<string, string>;
  /**
   * Query parameters, validated against the spec and coerced to the spec's types
   * (boolean "1"/"true"/"0"/"false", integers, JSON-encoded "filters" parsed to an object).
   * Absent parameters are absent; spec defaults are filled in.
   */
  query: Record<string, any>;
  /** Raw query string values, for parameters that the spec leaves loose. */
  rawQuery: URLSearchParams;
  /** Parsed and validated JSON body when the operation takes JSON; undefined otherwise. */
  body: unknown;
  /** The request body as a stream (tar uploads, stdin for /build, /images/load, ...). */
  bodyStream(): Readable;
  /** Request headers, lower-cased names. */
  headers: Record<string, string | undefined>;
  /** True when the client asked for `Connection: Upgrade` / `Upgrade: tcp`. */
  wantsUpgrade: boolean;
  /**
   * Take over the connection. With an upgrade request the server writes
   * `HTTP/1.1 101 UPGRADED` (Content-Type, Connection: Upgrade, Upgrade: tcp); without one it
   * writes `200 OK` with the given content type and no length. The caller then owns the socket
   * (read = client stdin, write = output) and must end it. Return `hijacked()` from the handler.
   * The socket may be paused (its request body was read off it first): read it with pipe() or
   * call resume() after adding 'data' listeners.
   */
  hijack(contentType: string): Promise<Duplex>;
  /** Aborted when the client goes away. */
  signal: AbortSignal;
  services: Services;
}

export type ApiReply =
  | { kind: 'json'; status?: number; body: unknown; headers?: Record<string, string> }
  | { kind: 'empty'; status: number; headers?: Record<string, string> }
  | { kind: 'text'; status?: number; body: string; contentType?: string; headers?: Record<string, string> }
  | { kind: 'stream'; status?: number; contentType: string; body: Readable; headers?: Record<string, string> }
  | { kind: 'hijacked' };

export type Handler = (req: ApiRequest) => Promise<ApiReply> | ApiReply;

/** Handlers of one API tag, keyed by operationId. */
export type HandlerTable = Record<string, Handler>;

export const json = (body: unknown, status = 200, headers?: Record<string, string>): ApiReply => ({ kind: 'json', status, body, headers });
export const empty = (status = 204, headers?: Record<string, string>): ApiReply => ({ kind: 'empty', status, headers });
export const text = (body: string, status = 200, contentType = 'text/plain; charset=utf-8'): ApiReply => ({ kind: 'text', status, body, contentType });
export const stream = (body: Readable, contentType = 'application/json', status = 200, headers?: Record<string, string>): ApiReply => ({ kind: 'stream', status, contentType, body, headers });
export const hijacked = (): ApiReply => ({ kind: 'hijacked' });
