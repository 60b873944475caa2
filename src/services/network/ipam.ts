// IPv4 and IPv6 address management: subnets as numbers, the Engine's default pools, and allocation
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
    if (p.base.includes(':')) continue; // IPv6 entries: see pools6
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

// ---- IPv6 ------------------------------------------------------------------------------------
// The same operations on 128-bit addresses held as bigints. No broadcast address: the gateway
// takes the first host address, containers the ones after it.

export interface Subnet6 { base: bigint; prefix: number }

const MAX6 = (1n << 128n) - 1n;

export const isV6 = (ipOrCidr: string): boolean => ipOrCidr.includes(':');

export function ip6ToBig(ip: string): bigint {
  const bad = () => new InvalidParameterError(`invalid IP address: ${ip}`);
  let s = ip.split('%')[0]!;
  // an embedded IPv4 tail (::ffff:1.2.3.4) becomes two hextets
  const v4 = /(\d+\.\d+\.\d+\.\d+)$/.exec(s);
  if (v4) { const n = ipToInt(v4[1]!); s = s.slice(0, -v4[1]!.length) + `${(n >>> 16).toString(16)}:${(n & 0xffff).toString(16)}`; }
  const halves = s.split('::');
  if (halves.length > 2) throw bad();
  const part = (h: string) => (h === '' ? [] : h.split(':'));
  const head = part(halves[0]!), tail = halves.length === 2 ? part(halves[1]!) : [];
  const fill = 8 - head.length - tail.length;
  if ((halves.length === 1 && fill !== 0) || (halves.length === 2 && fill < 1)) throw bad();
  let n = 0n;
  for (const h of [...head, ...Array(halves.length === 2 ? fill : 0).fill('0'), ...tail]) {
    if (!/^[0-9a-fA-F]{1,4}$/.test(h)) throw bad();
    n = (n << 16n) | BigInt(parseInt(h, 16));
  }
  return n;
}

/** RFC 5952 text: lower case, leading zeros dropped, the longest run of zero hextets as "::". */
export function bigToIp6(n: bigint): string {
  const h: number[] = [];
  for (let i = 7; i >= 0; i--) h.push(Number((n >> BigInt(i * 16)) & 0xffffn));
  let best = -1, bestLen = 1;
  for (let i = 0; i < 8;) {
    if (h[i] !== 0) { i++; continue; }
    let j = i; while (j < 8 && h[j] === 0) j++;
    if (j - i > bestLen) { best = i; bestLen = j - i; }
    i = j;
  }
  const hex = (a: number[]) => a.map((x) => x.toString(16)).join(':');
  return best < 0 ? hex(h) : `${hex(h.slice(0, best))}::${hex(h.slice(best + bestLen))}`;
}

export const normalizeIp6 = (ip: string): string => bigToIp6(ip6ToBig(ip));

const mask6 = (prefix: number): bigint => (prefix === 0 ? 0n : (MAX6 << BigInt(128 - prefix)) & MAX6);

export function parseSubnet6(cidr: string): Subnet6 {
  const [ip, p] = cidr.split('/');
  const prefix = Number(p);
  if (!ip || p === undefined || !/^\d+$/.test(p) || prefix > 128) throw new InvalidParameterError(`invalid CIDR address: ${cidr}`);
  return { base: ip6ToBig(ip) & mask6(prefix), prefix };
}

export const subnet6String = (s: Subnet6): string => `${bigToIp6(s.base)}/${s.prefix}`;
export const size6 = (s: Subnet6): bigint => 1n << BigInt(128 - s.prefix);
export const contains6 = (s: Subnet6, ip: bigint): boolean => ip >= s.base && ip < s.base + size6(s);
export const overlaps6 = (a: Subnet6, b: Subnet6): boolean => a.base < b.base + size6(b) && b.base < a.base + size6(a);

/**
 * Pools for networks that ask for IPv6 without a subnet: the /64s of one unique local /48
 * (fdXX:XXXX:XXXX::/48, its 40 bits from `seed`, as RFC 4193 has a host pick them), or the
 * IPv6 entries of daemon.json's default-address-pools. At most `limit` subnets are listed.
 */
export function pools6(seed: string, config: Array<{ base: string; size: number }> = [], limit = 4096): Subnet6[] {
  const out: Subnet6[] = [];
  const from = config.filter((p) => isV6(p.base));
  const bases = from.length ? from : [{ base: `fd${seed.slice(0, 2)}:${seed.slice(2, 6)}:${seed.slice(6, 10)}::/48`, size: 64 }];
  for (const p of bases) {
    const base = parseSubnet6(p.base);
    if (p.size < base.prefix || p.size > 126) throw new InvalidParameterError(`invalid default-address-pools entry ${p.base} size ${p.size}`);
    const step = 1n << BigInt(128 - p.size);
    for (let b = base.base; b < base.base + size6(base) && out.length < limit; b += step) out.push({ base: b, prefix: p.size });
  }
  return out;
}

export function pickSubnet6(pools: Subnet6[], taken: Subnet6[]): Subnet6 {
  const free = pools.find((p) => !taken.some((t) => overlaps6(p, t)));
  if (!free) throw new InvalidParameterError('could not find an available, non-overlapping IPv6 address pool among the defaults to assign to the network');
  return free;
}

/** Next free address in [range] (default the subnet) after the subnet's first (the anycast one). */
export function allocate6(subnet: Subnet6, used: Set<bigint>, range: Subnet6 = subnet): bigint {
  const end = range.base + size6(range) < subnet.base + size6(subnet) ? range.base + size6(range) : subnet.base + size6(subnet);
  let tries = 0;
  for (let ip = range.base > subnet.base ? range.base : subnet.base + 1n; ip < end && tries < 1 << 20; ip++, tries++) {
    if (!used.has(ip)) return ip;
  }
  throw new InvalidParameterError(`no available IPv6 addresses on this network's address pools: ${subnet6String(subnet)}`);
}
