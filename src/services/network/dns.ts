// The embedded DNS of user-defined networks: one UDP and one TCP listener on each network's
// gateway address. Names (container names, aliases, short IDs) resolve only on their own
// network; several containers behind one name answer in rotating order; other names are
// forwarded to the host's resolvers.
import dgram from 'node:dgram';
import net from 'node:net';
import { readFileSync } from 'node:fs';
import * as packet from 'dns-packet';
import { ip6ToBig } from './ipam.js';

/** Names and the addresses they stand for: `ip` (IPv4, A and PTR), `ip6` on IPv6 networks (AAAA and PTR). */
export interface DnsRecord { names: string[]; ip: string; ip6?: string }

const TTL = 600;

export class NetworkDns {
  private udp?: dgram.Socket;
  private tcp?: net.Server;
  /** Records visible to a querying address (the networks of the container that asks). */
  private provider: (source: string) => DnsRecord[] = () => [];
  private turn = 0;

  constructor(private readonly gateway: string, private readonly upstream = hostResolvers()) {}

  async start(): Promise<void> {
    this.udp = dgram.createSocket({ type: 'udp4', reuseAddr: true });
    this.udp.on('message', (msg, rinfo) => {
      void this.answer(msg, rinfo.address).then((out) => { if (out) this.udp?.send(out, rinfo.port, rinfo.address); });
    });
    this.udp.on('error', () => {});
    await new Promise<void>((resolve, reject) => { this.udp!.once('error', reject); this.udp!.bind(53, this.gateway, () => { this.udp!.off('error', reject); resolve(); }); });
    this.tcp = net.createServer((sock) => {
      let buf = Buffer.alloc(0);
      sock.on('data', async (b) => {
        buf = Buffer.concat([buf, b]);
        while (buf.length >= 2 && buf.length >= 2 + buf.readUInt16BE(0)) {
          const len = buf.readUInt16BE(0);
          const q = buf.subarray(2, 2 + len);
          buf = buf.subarray(2 + len);
          const out = await this.answer(q, sock.remoteAddress?.replace(/^::ffff:/, '') ?? '');
          if (out) { const l = Buffer.alloc(2); l.writeUInt16BE(out.length); sock.write(Buffer.concat([l, out])); }
        }
      });
      sock.on('error', () => {});
      sock.setTimeout(10_000, () => sock.destroy());
    });
    await new Promise<void>((resolve, reject) => { this.tcp!.once('error', reject); this.tcp!.listen(53, this.gateway, () => { this.tcp!.off('error', reject); resolve(); }); });
  }

  setRecords(records: DnsRecord[]): void { this.provider = () => records; }
  setProvider(fn: (source: string) => DnsRecord[]): void { this.provider = fn; }

  async stop(): Promise<void> {
    this.udp?.close();
    await new Promise<void>((r) => (this.tcp ? this.tcp.close(() => r()) : r()));
  }

  /** The answer to one query message, or null for what is not a query. */
  async answer(msg: Buffer, source = ''): Promise<Buffer | null> {
    const records = this.provider(source);
    let q: packet.Packet;
    try { q = packet.decode(msg); } catch { return null; }
    if (q.type !== 'query' || !q.questions?.length) return null;
    const question = q.questions[0]!;
    const name = question.name.toLowerCase().replace(/\.$/, '');
    const reply = (rcode: string, answers: packet.Answer[] = []) => packet.encode({
      id: q.id, type: 'response', flags: packet.RECURSION_DESIRED | packet.RECURSION_AVAILABLE | (rcode === 'NXDOMAIN' ? 3 : rcode === 'SERVFAIL' ? 2 : 0),
      questions: q.questions, answers,
    } as packet.Packet);

    if (question.type === 'PTR' && (name.endsWith('.in-addr.arpa') || name.endsWith('.ip6.arpa'))) {
      const rec = name.endsWith('.ip6.arpa')
        ? records.find((r) => r.ip6 && ip6Arpa(r.ip6) === name)
        : records.find((r) => r.ip === name.replace(/\.in-addr\.arpa$/, '').split('.').reverse().join('.'));
      if (rec) return reply('NOERROR', [{ type: 'PTR', name: question.name, ttl: TTL, data: rec.names[0]! }]);
    } else {
      const hits = records.filter((r) => r.names.includes(name));
      if (hits.length) {
        const type = question.type;
        if (type === 'A' || type === 'AAAA') {
          const addrs = hits.map((h) => (type === 'A' ? h.ip : h.ip6)).filter((x): x is string => !!x);
          const start = addrs.length ? this.turn++ % addrs.length : 0;
          const ordered = [...addrs.slice(start), ...addrs.slice(0, start)];
          return reply('NOERROR', ordered.map((data) => ({ type, name: question.name, ttl: TTL, data })));
        }
        return reply('NOERROR'); // other types: the name exists, nothing of that type
      }
      if (!name.includes('.') && question.type !== 'PTR') return reply('NXDOMAIN'); // a bare name we do not know
    }
    return (await this.forward(msg)) ?? reply('SERVFAIL');
  }

  /** Asks the host's resolvers (UDP, 2 s each). */
  private async forward(msg: Buffer): Promise<Buffer | null> {
    for (const server of this.upstream) {
      const got = await new Promise<Buffer | null>((resolve) => {
        const s = dgram.createSocket('udp4');
        const t = setTimeout(() => { s.close(); resolve(null); }, 2000);
        s.on('message', (m) => { clearTimeout(t); s.close(); resolve(m); });
        s.on('error', () => { clearTimeout(t); s.close(); resolve(null); });
        s.send(msg, 53, server);
      });
      if (got) return got;
    }
    return null;
  }
}

/** The reverse-lookup name of an IPv6 address: its 32 nibbles, last first, under ip6.arpa. */
export function ip6Arpa(ip: string): string {
  return bigToIp6Hex(ip6ToBig(ip)).split('').reverse().join('.') + '.ip6.arpa';
}
const bigToIp6Hex = (n: bigint): string => n.toString(16).padStart(32, '0');

export function hostResolvers(): string[] {
  try {
    return readFileSync('/etc/resolv.conf', 'utf8').split('\n')
      .map((l) => /^\s*nameserver\s+(\d+\.\d+\.\d+\.\d+)/.exec(l)?.[1]).filter((x): x is string => !!x);
  } catch { return []; }
}
