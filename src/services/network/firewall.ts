// Packet filtering and NAT for bridge networks, in chains of our own (BERTH-*), rewritten as a
// whole with one iptables-restore transaction whenever networks or published ports change.
// IPv6 networks get the same chains in ip6tables, with the same rules for their IPv6 subnets.
import { spawn, execFile } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import { promisify } from 'node:util';
import { SystemError } from '../../errors.js';

const run = promisify(execFile);

export interface FirewallNetwork { bridge: string; subnet: string; internal: boolean; icc: boolean; masquerade: boolean; subnet6?: string }
export interface PortMapping { bridge: string; proto: 'tcp' | 'udp'; hostIp: string; hostPort: number; containerIp: string; containerPort: number; containerIp6?: string }
export type Family = 4 | 6;

const tool = (family: Family): string => (family === 6 ? 'ip6tables' : 'iptables');

/** Our chain names; `suffix` tells apart daemons on one host (a data-root of their own each). */
export function chainNames(suffix = ''): { forward: string; postrouting: string; dnat: string } {
  return { forward: `BERTH-FORWARD${suffix}`, postrouting: `BERTH-POSTROUTING${suffix}`, dnat: `BERTH-DNAT${suffix}` };
}

/** The jumps from the built-in chains into ours. */
function jumps(suffix: string, family: Family = 4): Array<[string, string, string[]]> {
  const c = chainNames(suffix);
  return [
    ['filter', 'FORWARD', ['-j', c.forward]],
    ['nat', 'POSTROUTING', ['-j', c.postrouting]],
    ['nat', 'PREROUTING', ['-m', 'addrtype', '--dst-type', 'LOCAL', '-j', c.dnat]],
    ['nat', 'OUTPUT', ['!', '-d', family === 6 ? '::1/128' : '127.0.0.0/8', '-m', 'addrtype', '--dst-type', 'LOCAL', '-j', c.dnat]],
  ];
}

/**
 * Creates our chains and (once) the jumps into them, for IPv4 and, where the kernel has
 * ip6tables with NAT, for IPv6. Tells whether the IPv6 side is there.
 */
export async function initFirewall(suffix = ''): Promise<{ ipv6: boolean }> {
  // forwarding between the bridges and the outside, as the Engine enables it (IPv6 forwarding
  // is turned on with the first IPv6 bridge)
  await writeFile('/proc/sys/net/ipv4/ip_forward', '1').catch(() => {});
  await initFamily(suffix, 4);
  const ipv6 = await initFamily(suffix, 6).then(() => true, () => false);
  return { ipv6 };
}

async function initFamily(suffix: string, family: Family): Promise<void> {
  await restore(rules([], [], suffix, family), family);
  for (const [table, chain, rule] of jumps(suffix, family)) {
    const exists = await run(tool(family), ['-w', '-t', table, '-C', chain, ...rule]).then(() => true, () => false);
    if (!exists) await run(tool(family), ['-w', '-t', table, '-I', chain, '1', ...rule]).catch((e) => { throw new SystemError(`${tool(family)}: ${e.stderr ?? e.message}`); });
  }
}

/** Removes the jumps and our chains (a test daemon's leftovers; the Engine keeps its own). */
export async function removeFirewall(suffix = ''): Promise<void> {
  for (const family of [4, 6] as const) {
    for (const [table, chain, rule] of jumps(suffix, family)) {
      while (await run(tool(family), ['-w', '-t', table, '-D', chain, ...rule]).then(() => true, () => false)) { /* every copy */ }
    }
    const c = chainNames(suffix);
    for (const [table, chain] of [['filter', c.forward], ['nat', c.postrouting], ['nat', c.dnat]] as const) {
      await run(tool(family), ['-w', '-t', table, '-F', chain]).catch(() => {});
      await run(tool(family), ['-w', '-t', table, '-X', chain]).catch(() => {});
    }
  }
}

/**
 * The iptables-restore input for the whole state; with family 6 the ip6tables-restore input,
 * covering the networks that have an IPv6 subnet and the ports of containers with an IPv6
 * address (published on all addresses or on an IPv6 one).
 */
export function rules(networks: FirewallNetwork[], ports: PortMapping[], suffix = '', family: Family = 4): string {
  const { forward: FWD, postrouting: POST, dnat: DNAT } = chainNames(suffix);
  const f: string[] = ['*filter', `:${FWD} - [0:0]`, `-F ${FWD}`];
  const n: string[] = ['*nat', `:${POST} - [0:0]`, `:${DNAT} - [0:0]`, `-F ${POST}`, `-F ${DNAT}`];
  const host = family === 6 ? 128 : 32;
  if (family === 6) {
    networks = networks.filter((x) => x.subnet6).map((x) => ({ ...x, subnet: x.subnet6! }));
    ports = ports.filter((p) => p.containerIp6 && (!p.hostIp || p.hostIp.includes(':')) && networks.some((x) => x.bridge === p.bridge))
      .map((p) => ({ ...p, containerIp: p.containerIp6! }));
  } else {
    ports = ports.filter((p) => !p.hostIp.includes(':'));
  }
  for (const net of networks) {
    const b = net.bridge;
    f.push(`-A ${FWD} -o ${b} -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT`);
    for (const other of networks) if (other.bridge !== b) f.push(`-A ${FWD} -i ${b} -o ${other.bridge} -j DROP`);
    f.push(`-A ${FWD} -i ${b} -o ${b} -j ${net.icc ? 'ACCEPT' : 'DROP'}`);
    if (net.internal) {
      f.push(`-A ${FWD} -i ${b} ! -o ${b} -j DROP`, `-A ${FWD} -o ${b} ! -i ${b} -j DROP`);
      continue;
    }
    for (const p of ports.filter((x) => x.bridge === b)) {
      f.push(`-A ${FWD} -d ${p.containerIp}/${host} ! -i ${b} -o ${b} -p ${p.proto} -m ${p.proto} --dport ${p.containerPort} -j ACCEPT`);
    }
    f.push(`-A ${FWD} -i ${b} ! -o ${b} -j ACCEPT`);
    if (net.masquerade) n.push(`-A ${POST} -s ${net.subnet} ! -o ${b} -j MASQUERADE`);
  }
  for (const p of ports) {
    const dst = p.hostIp && p.hostIp !== '0.0.0.0' && p.hostIp !== '::' ? ` -d ${p.hostIp}/${host}` : '';
    const to = family === 6 ? `[${p.containerIp}]:${p.containerPort}` : `${p.containerIp}:${p.containerPort}`;
    n.push(`-A ${DNAT}${dst} ! -i ${p.bridge} -p ${p.proto} -m ${p.proto} --dport ${p.hostPort} -j DNAT --to-destination ${to}`);
  }
  return [...f, 'COMMIT', ...n, 'COMMIT', ''].join('\n');
}

export function restore(input: string, family: Family = 4): Promise<void> {
  const cmd = `${tool(family)}-restore`;
  return new Promise((resolve, reject) => {
    const p = spawn(cmd, ['-w', '--noflush'], { stdio: ['pipe', 'ignore', 'pipe'] });
    let err = '';
    p.stderr.on('data', (b) => { err += b; });
    p.on('error', (e) => reject(new SystemError(`${cmd}: ${e.message}`)));
    p.on('close', (code) => (code === 0 ? resolve() : reject(new SystemError(`${cmd} failed: ${err.trim()}`))));
    p.stdin.end(input);
  });
}
