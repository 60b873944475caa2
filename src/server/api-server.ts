// The API request pipeline shared by plain requests and `Upgrade: tcp` requests:
// version prefix -> route match -> query/body validation -> handler -> reply (or hijack).
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import { Readable } from 'node:stream';
import { BerthError, InvalidParameterError } from '../errors.js';
import type { ApiReply, ApiRequest, HandlerTable } from '../routes/types.js';
import type { Services } from '../services/index.js';
import { BodyValidator } from './body-validator.js';
import type { Logger } from './log.js';
import { coerceQuery } from './query.js';
import { RouteTable, type Operation } from './route-table.js';
import { ResponseSink, SocketSink, type Sink } from './sinks.js';
import { splitVersion } from './version.js';

/** JSON bodies above this are refused (tar uploads stream and are not capped here). */
export const JSON_BODY_LIMIT = 16 * 1024 * 1024;

class PayloadTooLargeError extends BerthError { override readonly status = 413; }

export interface ApiServerOptions {
  services: Services;
  handlers: HandlerTable;
  routes: RouteTable;
  validator: BodyValidator;
  log: Logger;
}

/** Upgrade request bodies up to this size are read before dispatch (attach/exec options are tiny). */
const EARLY_BODY_LIMIT = 1 << 20;

/** Bytes of a request body, from a stream or (upgrade requests) a known prefix plus the socket. */
interface BodySource {
  /** Whole body, for JSON; refuses more than `limit` bytes. */
  read(limit: number): Promise<Buffer>;
  stream(): Readable;
}

const isJsonBody = (op: Operation): boolean =>
  !!op.body && !(op.body.schema.type === 'string');

const utf8 = new TextDecoder('utf-8', { fatal: true });

function parseJsonBody(buf: Buffer): unknown {
  let text: string;
  try {
    text = utf8.decode(buf);
  } catch {
    throw new InvalidParameterError('invalid JSON: request body is not valid UTF-8');
  }
  try {
    return JSON.parse(text);
  } catch (err) {
    throw new InvalidParameterError(`invalid JSON: ${(err as Error).message}`);
  }
}

export class ApiServer {
  /** Sockets handed over by upgrade requests: no longer tracked by the HTTP server. */
  private readonly upgraded = new Set<Socket>();

  constructor(private readonly o: ApiServerOptions) {}

  /** Ends hijacked connections (attach, exec) at shutdown. */
  closeUpgraded(): void {
    for (const s of this.upgraded) s.destroy();
    this.upgraded.clear();
  }

  /** 'request' listener for http.Server / https.Server. */
  onRequest = (req: IncomingMessage, res: ServerResponse): void => {
    const ac = new AbortController();
    res.on('close', () => { if (!res.writableFinished) ac.abort(); });
    const body: BodySource = { read: (limit) => readStream(req, limit), stream: () => req };
    void this.dispatch(req, new ResponseSink(req, res), body, false, ac);
  };

  /** 'upgrade' listener: the same routing, answering on the raw socket. */
  onUpgrade = (req: IncomingMessage, socket: Socket, head: Buffer): void => {
    const ac = new AbortController();
    this.upgraded.add(socket);
    socket.on('close', () => { this.upgraded.delete(socket); ac.abort(); });
    socket.on('error', () => {});
    const length = Number(req.headers['content-length'] ?? 0) || 0;
    // The body is read before the handler runs, whether it wants it or not: bytes after it are
    // the client's early stdin, and a body the handler ignores (dockerode sends its attach
    // options as JSON) must not reach the container's stdin, as with the Engine.
    const sink = new SinkProxy(new SocketSink(socket, head));
    let early: Promise<Buffer> | undefined;
    const readBody = () => early ??= readExact(socket, head, length).then(({ body: b, rest }) => {
      sink.target = new SocketSink(socket, rest);
      return b;
    });
    const body: BodySource = {
      read: async (limit) => {
        if (length > limit) throw new PayloadTooLargeError(`request body too large (limit ${limit} bytes)`);
        return readBody();
      },
      stream: () => { if (head.length) socket.unshift(head); head = Buffer.alloc(0); return socket; },
    };
    const go = () => void this.dispatch(req, sink, body, true, ac);
    if (length > 0 && length <= EARLY_BODY_LIMIT) readBody().then(go, () => socket.destroy());
    else go();
  };

  private async dispatch(req: IncomingMessage, sink: Sink, body: BodySource, wantsUpgrade: boolean, ac: AbortController): Promise<void> {
    const { log } = this.o;
    const started = Date.now();
    let status = 0;
    const meta = { op: '' };
    try {
      const reply = await this.route(req, sink, body, wantsUpgrade, ac.signal, meta);
      status = reply.kind === 'hijacked' ? 101 : reply.status ?? 200;
      writeReply(sink, reply);
    } catch (err) {
      status = err instanceof BerthError ? err.status : 500;
      if (!(err instanceof BerthError)) log.error('handler failed', { method: req.method, url: req.url, error: (err as Error)?.stack ?? String(err) });
      if (sink.started) sink.abort();
      else writeError(sink, status, (err as Error)?.message ?? String(err));
    } finally {
      log.debug('request', { method: req.method, url: req.url, op: meta.op, status, ms: Date.now() - started });
    }
  }

  private async route(req: IncomingMessage, sink: Sink, body: BodySource, wantsUpgrade: boolean, signal: AbortSignal, meta: { op: string }): Promise<ApiReply> {
    const url = req.url ?? '/';
    const q = url.indexOf('?');
    const rawPath = q < 0 ? url : url.slice(0, q);
    const rawQuery = new URLSearchParams(q < 0 ? '' : url.slice(q + 1));
    const v = splitVersion(rawPath);
    if (!v.ok) throw new InvalidParameterError(v.message);
    const m = this.o.routes.match(req.method ?? 'GET', v.path);
    if (m.kind === 'not-found') throw new PageNotFound();
    if (m.kind === 'method-not-allowed') throw new MethodNotAllowed();
    const op = m.op;
    meta.op = op.operationId;
    const handler = this.o.handlers[op.operationId];
    if (!handler) throw new NotImplementedYet(op.operationId);
    const params: Record<string, string> = {};
    for (const [k, val] of Object.entries(m.params)) {
      try { params[k] = decodeURIComponent(val); } catch { throw new InvalidParameterError(`invalid path parameter ${k}: ${val}`); }
    }
    const query = coerceQuery(op.parameters, rawQuery);
    let parsed: unknown;
    if (isJsonBody(op)) {
      const buf = await body.read(JSON_BODY_LIMIT);
      if (buf.length > 0) {
        parsed = parseJsonBody(buf);
        await this.o.validator.validate(op, parsed);
      } else if (op.body!.required) {
        throw new InvalidParameterError('invalid JSON: request body is empty');
      }
    }
    const headers: Record<string, string | undefined> = {};
    for (const [k, val] of Object.entries(req.headers)) headers[k] = Array.isArray(val) ? val.join(', ') : val;
    let hijacked = false;
    const api: ApiRequest = {
      operationId: op.operationId,
      apiVersion: v.apiVersion,
      params,
      query,
      rawQuery,
      body: parsed,
      bodyStream: () => {
        if (parsed !== undefined) return Readable.from([]);
        return body.stream();
      },
      headers,
      wantsUpgrade,
      hijack: async (contentType) => {
        if (hijacked) throw new Error('connection already hijacked');
        hijacked = true;
        return sink.hijack(contentType);
      },
      signal,
      services: this.o.services,
    };
    return await handler(api);
  }
}

class PageNotFound extends BerthError { override readonly status = 404; constructor() { super('page not found'); } }
class MethodNotAllowed extends BerthError { override readonly status = 405; constructor() { super('method not allowed'); } }
class NotImplementedYet extends BerthError {
  override readonly status = 501;
  constructor(operationId: string) { super(`berth does not implement ${operationId} yet`); }
}

/** Forwards to whichever sink is current (an upgrade request swaps it once its body is read). */
class SinkProxy implements Sink {
  constructor(public target: Sink) {}
  get started(): boolean { return this.target.started; }
  send(s: number, h: Record<string, string>, b?: Buffer): void { this.target.send(s, h, b); }
  stream(s: number, h: Record<string, string>, b: Readable): void { this.target.stream(s, h, b); }
  hijack(ct: string) { return this.target.hijack(ct); }
  abort(): void { this.target.abort(); }
}

function writeError(sink: Sink, status: number, message: string): void {
  if (status === 304) { sink.send(304, {}); return; }
  sink.send(status, { 'Content-Type': 'application/json' }, Buffer.from(JSON.stringify({ message }) + '\n'));
}

function writeReply(sink: Sink, reply: ApiReply): void {
  switch (reply.kind) {
    case 'hijacked':
      return;
    case 'json':
      sink.send(reply.status ?? 200, { 'Content-Type': 'application/json', ...reply.headers }, Buffer.from(JSON.stringify(reply.body) + '\n'));
      return;
    case 'empty':
      sink.send(reply.status, { ...reply.headers });
      return;
    case 'text':
      sink.send(reply.status ?? 200, { 'Content-Type': reply.contentType ?? 'text/plain; charset=utf-8', ...reply.headers }, Buffer.from(reply.body));
      return;
    case 'stream':
      sink.stream(reply.status ?? 200, { 'Content-Type': reply.contentType, ...reply.headers }, reply.body);
      return;
  }
}

function readStream(stream: Readable, limit: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    let failed = false;
    stream.on('data', (chunk: Buffer) => {
      if (failed) return; // keep draining so the client can read the 413
      size += chunk.length;
      if (size > limit) {
        failed = true;
        reject(new PayloadTooLargeError(`request body too large (limit ${limit} bytes)`));
        return;
      }
      chunks.push(chunk);
    });
    stream.on('end', () => { if (!failed) resolve(Buffer.concat(chunks)); });
    stream.on('error', (err) => { if (!failed) reject(err); });
  });
}

/** Reads `length` body bytes of an upgrade request: first from `head`, then from the socket. */
function readExact(socket: Socket, head: Buffer, length: number): Promise<{ body: Buffer; rest: Buffer }> {
  if (head.length >= length) return Promise.resolve({ body: head.subarray(0, length), rest: head.subarray(length) });
  return new Promise((resolve, reject) => {
    let buf = head;
    const onData = (d: Buffer): void => {
      buf = Buffer.concat([buf, d]);
      if (buf.length >= length) {
        cleanup();
        socket.pause();
        resolve({ body: buf.subarray(0, length), rest: buf.subarray(length) });
      }
    };
    const onEnd = (): void => { cleanup(); reject(new InvalidParameterError('request body ended early')); };
    const cleanup = (): void => { socket.off('data', onData); socket.off('end', onEnd); socket.off('close', onEnd); };
    socket.on('data', onData);
    socket.on('end', onEnd);
    socket.on('close', onEnd);
  });
}
