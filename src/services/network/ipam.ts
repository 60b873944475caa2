// IPv4 address management: subnets as numbers, the Engine's default pools, and allocation
// within a network (gateway first address, containers from the next free one).
import { InvalidParameterError } from '../../errors.js';

export interface Subnet { base: number; prefix: number }

export function ipToInt(ip: string): number {
  const m = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/.exec(ip);
  if (!m || m.slice(1).some((o) => Number(o) > 255)) throw new InvalidParameterError(`invalid IP address: ${ip}`);
  return ((Number(m[1]) << 24) >>> 0) + (Number(m[2]) << 16) + (Number(m[3]) << 8) + Number(m[4]);
}

export function intToIp(n: number): string {
  return [n >>> 24, (n >>> 16) & 255, (n >>> 8) & 255, n & 255].join('.');
}

export function parseSubnet(cidr: string): Subnet {
  const [ip, p] = cidr.split('/');
  const prefix = Number(p);
  if (!ip || p === undefined || !Number.isInteger(prefix) || prefix < 0 || prefix > 32) throw new InvalidParameterError(`invalid CIDR address: ${cidr}`);
  const mask = prefix === 0 ? 0 : (~0 << (32 - prefix)) >>> 0;
  return { base: (ipToInt(ip) & mask) >>> 0, prefix };
}

export const subnetString = (s: Subnet): string => `${intToIp(s.base)}/${s.prefix}`;
export const size = (s: Subnet): number => 2 ** (32 - s.prefix);
export const contains = (s: Subnet, ip: number): boolean => ip >= s.base && ip < s.base + size(s);
export const overlaps = (a: Subnet, b: Subnet): boolean => a.base < b.base + size(b) && b.base < a.base + size(a);

/** The Engine's default local pools: 172.17-31.0.0/16, then 192.168.0.0/16 in /20 blocks. */
export function defaultPools(): Subnet[] {
  const out: Subnet[] = [];
  for (let i = 17; i <= 31; i++) out.push(parseSubnet(`172.${i}.0.0/16`));
  for (let i = 0; i < 256; i += 16) out.push(parseSubnet(`192.168.${i}.0/20`));
  return out;
}

/** Pools from daemon.json default-address-pools ([{base, size}]): each base split into /size blocks. */
export function poolsFrom(config: Array<{ base: string; size: number }>): Subnet[] {
  const out: Subnet[] = [];
  for (const p of config) {
    const base = parseSubnet(p.base);
    if (p.size < base.prefix || p.size > 30) throw new InvalidParameterError(`invalid default-address-pools entry ${p.base} size ${p.size}`);
    for (let b = base.base; b < base.base + size(base); b += 2 ** (32 - p.size)) out.push({ base: b >>> 0, prefix: p.size });
  }
  return out;
}

/** The first pool subnet that overlaps none of `taken` (other networks and host routes). */
export function pickSubnet(pools: Subnet[], taken: Subnet[]): Subnet {
  const free = pools.find((p) => !taken.some((t) => overlaps(p, t)));
  if (!free) throw new InvalidParameterError('could not find an available, non-overlapping IPv4 address pool among the defaults to assign to the network');
  return free;
}

/** Next free host address in [range] (default the subnet), skipping network, broadcast and used ones. */
export function allocate(subnet: Subnet, used: Set<number>, range: Subnet = subnet): number {
  const last = subnet.base + size(subnet) - 1;
  for (let ip = Math.max(range.base, subnet.base + 1); ip < Math.min(range.base + size(range), last); ip++) {
    if (!used.has(ip)) return ip;
  }
  throw new InvalidParameterError(`no available IPv4 addresses on this network's address pools: ${subnetString(subnet)}`);
}

/** The Engine's MAC for an address: 02:42 followed by the four octets. */
export function macFor(ip: number): string {
  return ['02', '42', ...[ip >>> 24, (ip >>> 16) & 255, (ip >>> 8) & 255, ip & 255].map((o) => o.toString(16).padStart(2, '0'))].join(':');
}
