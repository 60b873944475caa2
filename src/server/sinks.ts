// Where a reply goes. A normal request answers through Node's ServerResponse; a request that
// came with `Upgrade: tcp` arrives on Node's 'upgrade' event with only the raw socket, so its
// replies (errors, or the 101 of a hijack) are written to the socket by hand.
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import { Duplex, type Readable } from 'node:stream';
import { rawHead, standardHeaders } from './headers.js';

export interface Sink {
  /** True once a status line went out. */
  readonly started: boolean;
  send(status: number, headers: Record<string, string>, body?: Buffer): void;
  stream(status: number, headers: Record<string, string>, body: Readable): void;
  hijack(contentType: string): Duplex;
  /** Drops the connection (an error after the head was sent). */
  abort(): void;
}

export class ResponseSink implements Sink {
  started = false;
  constructor(private readonly req: IncomingMessage, private readonly res: ServerResponse) {}

  send(status: number, headers: Record<string, string>, body?: Buffer): void {
    this.started = true;
    const h: Record<string, string | number> = { ...standardHeaders(), ...headers };
    if (status !== 204 && status !== 304) h['Content-Length'] = body?.length ?? 0;
    this.res.writeHead(status, h);
    this.res.end(status === 204 || status === 304 ? undefined : body);
  }

  stream(status: number, headers: Record<string, string>, body: Readable): void {
    this.started = true;
    this.res.writeHead(status, { ...standardHeaders(), ...headers });
    this.res.flushHeaders(); // clients (docker events) wait for the head before anything arrives
    pipeFlushing(body, this.res, () => this.res.destroy());
  }

  hijack(contentType: string): Duplex {
    this.started = true;
    // No Content-Length and no chunking: the body is the raw stream until the connection closes.
    this.res.useChunkedEncodingByDefault = false;
    this.res.shouldKeepAlive = false;
    this.res.writeHead(200, { ...standardHeaders(), 'Content-Type': contentType, Connection: 'close' });
    this.res.flushHeaders();
    return Duplex.from({ readable: this.req, writable: this.res });
  }

  abort(): void { this.res.destroy(); }
}

export class SocketSink implements Sink {
  started = false;
  constructor(private readonly socket: Socket, private rest: Buffer = Buffer.alloc(0)) {}

  send(status: number, headers: Record<string, string>, body?: Buffer): void {
    this.started = true;
    const h = { ...standardHeaders(), ...headers, 'Content-Length': String(body?.length ?? 0), Connection: 'close' };
    this.socket.end(Buffer.concat([Buffer.from(rawHead(status, h)), body ?? Buffer.alloc(0)]));
  }

  stream(status: number, headers: Record<string, string>, body: Readable): void {
    this.started = true;
    this.socket.write(rawHead(status, { ...standardHeaders(), ...headers, Connection: 'close' }));
    pipeFlushing(body, this.socket, () => this.socket.destroy());
  }

  hijack(contentType: string): Duplex {
    this.started = true;
    this.socket.write(rawHead(101, { 'Content-Type': contentType, Connection: 'Upgrade', Upgrade: 'tcp', ...standardHeaders() }, 'UPGRADED'));
    if (this.rest.length > 0) this.socket.unshift(this.rest);
    this.rest = Buffer.alloc(0);
    return this.socket;
  }

  abort(): void { this.socket.destroy(); }
}

/** Pipes with backpressure; each chunk is written (and so sent) as it comes. */
function pipeFlushing(body: Readable, out: NodeJS.WritableStream & { destroyed?: boolean; on: Function }, fail: () => void): void {
  body.on('error', fail);
  out.on('close', () => { if (!body.destroyed) body.destroy(); });
  body.pipe(out);
}
