// A TCP proxy in front of a test registry that injects network faults into pulls: it relays
// both ways (TLS passes through untouched, so the registry's certificate still names
// 127.0.0.1) and, per mode, cuts connections after some bytes from the registry, or
// relays them at a limited rate so that a pull lasts long enough to be interrupted.
import { createServer, connect, type Server, type Socket } from 'node:net';

export type FaultMode =
  | { kind: 'pass' }
  /**
   * Each connection is destroyed once it relayed more than `after` bytes from the registry;
   * with `times`, only that many connections are (`cutsDone` counts them), the rest pass.
   */
  | { kind: 'cut'; after: number; times?: number; cutsDone?: number }
  /** Bytes from the registry relayed at about `bytesPerSec` per connection. */
  | { kind: 'slow'; bytesPerSec: number };

export interface FaultProxy {
  /** host:port to use in image names instead of the registry's. */
  host: string;
  mode: FaultMode;
  /** Connections cut by a 'cut' mode so far. */
  cuts: number;
  /** Bytes relayed from the registry so far. */
  relayed: number;
  stop(): Promise<void>;
}

export async function startFaultProxy(target: string): Promise<FaultProxy> {
  const [thost, tport] = [target.slice(0, target.lastIndexOf(':')), Number(target.slice(target.lastIndexOf(':') + 1))];
  const sockets = new Set<Socket>();
  const track = (s: Socket): Socket => { sockets.add(s); s.on('close', () => sockets.delete(s)); return s; };
  const proxy: FaultProxy = { host: '', mode: { kind: 'pass' }, cuts: 0, relayed: 0, stop: async () => {} };

  const server: Server = createServer((client) => {
    track(client);
    const upstream = track(connect(tport, thost));
    const mode = proxy.mode; // a connection keeps the mode it was opened under
    const both = (): void => { client.destroy(); upstream.destroy(); };
    client.on('error', both); upstream.on('error', both);
    client.on('close', both); upstream.on('close', both);
    client.pipe(upstream);
    let relayed = 0;
    const started = Date.now();
    upstream.on('data', (chunk: Buffer) => {
      if (mode.kind === 'cut' && relayed + chunk.length > mode.after && (mode.times === undefined || (mode.cutsDone ?? 0) < mode.times)) {
        const part = chunk.subarray(0, Math.max(0, mode.after - relayed));
        client.write(part);
        proxy.relayed += part.length;
        proxy.cuts++;
        mode.cutsDone = (mode.cutsDone ?? 0) + 1;
        both();
        return;
      }
      relayed += chunk.length;
      proxy.relayed += chunk.length;
      if (!client.write(chunk)) { upstream.pause(); client.once('drain', () => upstream.resume()); }
      if (mode.kind === 'slow') {
        const ahead = relayed / mode.bytesPerSec * 1000 - (Date.now() - started);
        if (ahead > 0) { upstream.pause(); setTimeout(() => { if (!upstream.destroyed) upstream.resume(); }, ahead); }
      }
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  proxy.host = `127.0.0.1:${(server.address() as { port: number }).port}`;
  proxy.stop = async () => {
    for (const s of sockets) s.destroy();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  };
  return proxy;
}
