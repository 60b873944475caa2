// Packet filtering and NAT for bridge networks, in chains of our own (BERTH-*), rewritten as a
// whole with one iptables-restore transaction whenever networks or published ports change.
import { spawn, execFile } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import { promisify } from 'node:util';
import { SystemError } from '../../errors.js';

const run = promisify(execFile);

export interface FirewallNetwork { bridge: string; subnet: string; internal: boolean; icc: boolean; masquerade: boolean }
export interface PortMapping { bridge: string; proto: 'tcp' | 'udp'; hostIp: string; hostPort: number; containerIp: string; containerPort: number }

/** Our chain names; `suffix` tells apart daemons on one host (a data-root of their own each). */
export function chainNames(suffix = ''): { forward: string; postrouting: string; dnat: string } {
  return { forward: `BERTH-FORWARD${suffix}`, postrouting: `BERTH-POSTROUTING${suffix}`, dnat: `BERTH-DNAT${suffix}` };
}

/** The jumps from the built-in chains into ours. */
function jumps(suffix: string): Array<[string, string, string[]]> {
  const c = chainNames(suffix);
  return [
    ['filter', 'FORWARD', ['-j', c.forward]],
    ['nat', 'POSTROUTING', ['-j', c.postrouting]],
    ['nat', 'PREROUTING', ['-m', 'addrtype', '--dst-type', 'LOCAL', '-j', c.dnat]],
    ['nat', 'OUTPUT', ['!', '-d', '127.0.0.0/8', '-m', 'addrtype', '--dst-type', 'LOCAL', '-j', c.dnat]],
  ];
}

/** Creates our chains and (once) the jumps into them. */
export async function initFirewall(suffix = ''): Promise<void> {
  // forwarding between the bridges and the outside, as the Engine enables it
  await writeFile('/proc/sys/net/ipv4/ip_forward', '1').catch(() => {});
  await restore(rules([], [], suffix));
  for (const [table, chain, rule] of jumps(suffix)) {
    const exists = await run('iptables', ['-w', '-t', table, '-C', chain, ...rule]).then(() => true, () => false);
    if (!exists) await run('iptables', ['-w', '-t', table, '-I', chain, '1', ...rule]).catch((e) => { throw new SystemError(`iptables: ${e.stderr ?? e.message}`); });
  }
}

/** Removes the jumps and our chains (a test daemon's leftovers; the Engine keeps its own). */
export async function removeFirewall(suffix = ''): Promise<void> {
  for (const [table, chain, rule] of jumps(suffix)) {
    while (await run('iptables', ['-w', '-t', table, '-D', chain, ...rule]).then(() => true, () => false)) { /* every copy */ }
  }
  const c = chainNames(suffix);
  for (const [table, chain] of [['filter', c.forward], ['nat', c.postrouting], ['nat', c.dnat]] as const) {
    await run('iptables', ['-w', '-t', table, '-F', chain]).catch(() => {});
    await run('iptables', ['-w', '-t', table, '-X', chain]).catch(() => {});
  }
}

/** The iptables-restore input for the whole state. */
export function rules(networks: FirewallNetwork[], ports: PortMapping[], suffix = ''): string {
  const { forward: FWD, postrouting: POST, dnat: DNAT } = chainNames(suffix);
  const f: string[] = ['*filter', `:${FWD} - [0:0]`, `-F ${FWD}`];
  const n: string[] = ['*nat', `:${POST} - [0:0]`, `:${DNAT} - [0:0]`, `-F ${POST}`, `-F ${DNAT}`];
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
      f.push(`-A ${FWD} -d ${p.containerIp}/32 ! -i ${b} -o ${b} -p ${p.proto} -m ${p.proto} --dport ${p.containerPort} -j ACCEPT`);
    }
    f.push(`-A ${FWD} -i ${b} ! -o ${b} -j ACCEPT`);
    if (net.masquerade) n.push(`-A ${POST} -s ${net.subnet} ! -o ${b} -j MASQUERADE`);
  }
  for (const p of ports) {
    const dst = p.hostIp && p.hostIp !== '0.0.0.0' ? ` -d ${p.hostIp}/32` : '';
    n.push(`-A ${DNAT}${dst} ! -i ${p.bridge} -p ${p.proto} -m ${p.proto} --dport ${p.hostPort} -j DNAT --to-destination ${p.containerIp}:${p.containerPort}`);
  }
  return [...f, 'COMMIT', ...n, 'COMMIT', ''].join('\n');
}

export function restore(input: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const p = spawn('iptables-restore', ['-w', '--noflush'], { stdio: ['pipe', 'ignore', 'pipe'] });
    let err = '';
    p.stderr.on('data', (b) => { err += b; });
    p.on('error', (e) => reject(new SystemError(`iptables-restore: ${e.message}`)));
    p.on('close', (code) => (code === 0 ? resolve() : reject(new SystemError(`iptables-restore failed: ${err.trim()}`))));
    p.stdin.end(input);
  });
}
