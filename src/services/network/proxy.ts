// The userland proxy for published ports: listens on the host address and port and relays to
// the container, so the port answers on 127.0.0.1 too (DNAT does not see loopback traffic), and
// so a port in use is found when the container starts ("port is already allocated").
import dgram from 'node:dgram';
import net from 'node:net';
import { SystemError } from '../../errors.js';

export interface Proxy { hostPort: number; close(): void }

export async function startProxy(o: { proto: 'tcp' | 'udp'; hostIp: string; hostPort: number; targetIp: string; targetPort: number }): Promise<Proxy> {
  const bindIp = o.hostIp || '0.0.0.0';
  const inUse = (err: NodeJS.ErrnoException): Error => new SystemError(
    err.code === 'EADDRINUSE'
      ? `driver failed programming external connectivity on endpoint: Bind for ${bindIp}:${o.hostPort} failed: port is already allocated`
      : `driver failed programming external connectivity on endpoint: ${err.message}`);
  if (o.proto === 'tcp') {
    const conns = new Set<net.Socket>();
    const server = net.createServer((client) => {
      const upstream = net.connect(o.targetPort, o.targetIp);
      conns.add(client); conns.add(upstream);
      const end = () => { client.destroy(); upstream.destroy(); conns.delete(client); conns.delete(upstream); };
      client.pipe(upstream); upstream.pipe(client);
      client.on('error', end); upstream.on('error', end);
      client.on('close', end); upstream.on('close', end);
    });
    const listen = (host: string, ipv6Only?: boolean) => new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen({ port: o.hostPort, host, exclusive: true, ipv6Only }, () => { server.off('error', reject); resolve(); });
    });
    // all addresses: IPv6 ones too ([::]:port, dual-stack), as the Engine publishes, unless the
    // host has no IPv6
    const dual = !o.hostIp ? await listen('::', false).then(() => true, (e: NodeJS.ErrnoException) => {
      if (e.code === 'EAFNOSUPPORT' || e.code === 'EADDRNOTAVAIL') return false;
      throw inUse(e);
    }) : false;
    if (!dual) await listen(bindIp).catch((e) => { throw inUse(e as NodeJS.ErrnoException); });
    return { hostPort: (server.address() as net.AddressInfo).port, close: () => { server.close(); for (const c of conns) c.destroy(); } };
  }
  // UDP: one upstream socket per client address, dropped after a minute of silence
  const sock = dgram.createSocket(bindIp.includes(':') ? 'udp6' : 'udp4');
  const peers = new Map<string, { s: dgram.Socket; timer: NodeJS.Timeout }>();
  sock.on('message', (msg, rinfo) => {
    const key = `${rinfo.address}:${rinfo.port}`;
    let p = peers.get(key);
    if (!p) {
      const s = dgram.createSocket('udp4');
      s.on('message', (reply) => sock.send(reply, rinfo.port, rinfo.address));
      s.on('error', () => {});
      p = { s, timer: setTimeout(() => {}, 0) };
      peers.set(key, p);
    }
    clearTimeout(p.timer);
    p.timer = setTimeout(() => { p!.s.close(); peers.delete(key); }, 60_000);
    p.timer.unref();
    p.s.send(msg, o.targetPort, o.targetIp);
  });
  await new Promise<void>((resolve, reject) => {
    sock.once('error', (e) => reject(inUse(e as NodeJS.ErrnoException)));
    sock.bind(o.hostPort, bindIp, () => resolve());
  });
  sock.on('error', () => {});
  return { hostPort: sock.address().port, close: () => { sock.close(); for (const p of peers.values()) { clearTimeout(p.timer); p.s.close(); } } };
}
