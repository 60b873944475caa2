// Bridges and veth pairs through iproute2's `ip -batch` (one process per step, not per command).
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readFile, writeFile } from 'node:fs/promises';
import { SystemError } from '../../errors.js';

/**
 * Runs `ip -batch -` (optionally inside the network namespace of pid), feeding the commands on
 * stdin. `sysctls` (paths under /proc/sys/net and values) are written first, in the same
 * namespace, by the shell that then becomes ip: no process of its own for them.
 */
export function ipBatch(commands: string[], opts: { netnsPid?: number; force?: boolean; sysctls?: Record<string, string> } = {}): Promise<void> {
  const ipArgs = [...(opts.force ? ['-force'] : []), '-batch', '-'];
  const sysctls = Object.entries(opts.sysctls ?? {});
  for (const [k, v] of sysctls) if (!/^[a-z0-9_.\/-]+$/.test(k) || !/^[0-9]+$/.test(v)) throw new SystemError(`bad sysctl ${k}=${v}`);
  const ip = sysctls.length
    ? ['sh', '-c', `${sysctls.map(([k, v]) => `echo ${v} > /proc/sys/net/${k}`).join(' && ')} && exec ip "$@"`, 'sh']
    : ['ip'];
  const args = opts.netnsPid ? ['-t', String(opts.netnsPid), '-n', ...ip] : ip.slice(1);
  const cmd = opts.netnsPid ? 'nsenter' : ip[0]!;
  return new Promise((resolve, reject) => {
    const p = spawn(cmd, [...args, ...ipArgs], { stdio: ['pipe', 'ignore', 'pipe'] });
    let err = '';
    p.stderr.on('data', (b) => { err += b; });
    p.on('error', (e) => reject(new SystemError(`${cmd}: ${e.message}`)));
    p.on('close', (code) => (code === 0 || opts.force ? resolve() : reject(new SystemError(`network setup failed: ${err.trim()}`))));
    p.stdin.end(commands.join('\n') + '\n');
  });
}

export async function linkExists(name: string): Promise<boolean> {
  return new Promise((resolve) => {
    const p = spawn('ip', ['link', 'show', 'dev', name], { stdio: 'ignore' });
    p.on('close', (code) => resolve(code === 0));
    p.on('error', () => resolve(false));
  });
}

/** The bridge with its IPv4 gateway address and, on IPv6 networks, its IPv6 one (no DAD wait). */
export async function ensureBridge(name: string, gatewayCidr: string, mtu: number, gateway6Cidr?: string): Promise<void> {
  const v6 = gateway6Cidr ? [`addr replace ${gateway6Cidr} dev ${name} nodad`] : [];
  if (gateway6Cidr) await enableIpv6Forwarding();
  if (await linkExists(name)) {
    // after a daemon restart: make sure it carries the gateway address and is up
    await ipBatch([`addr replace ${gatewayCidr} dev ${name}`, ...v6, `link set ${name} up`]);
    return;
  }
  await ipBatch([`link add name ${name} type bridge`, `link set ${name} mtu ${mtu}`, `addr add ${gatewayCidr} dev ${name}`, ...v6, `link set ${name} up`]);
}

/** IPv6 forwarding between the bridges and the outside, as the Engine turns it on for IPv6 networks. */
async function enableIpv6Forwarding(): Promise<void> {
  const f = '/proc/sys/net/ipv6/conf/all/forwarding';
  if ((await readFile(f, 'utf8').catch(() => '')).trim() === '0') await writeFile(f, '1').catch(() => {});
}

export async function deleteBridge(name: string): Promise<void> {
  if (await linkExists(name)) await ipBatch([`link del ${name}`], { force: true });
}

export interface Attachment { hostIf: string; containerIf: string }

/**
 * A veth pair: the host end into the bridge, the other end into the namespace of pid, renamed
 * to ifName with its address, MAC and MTU, plus the default route when `gateway` is given; on
 * IPv6 networks also its IPv6 address (`cidr6`, usable at once: no duplicate address
 * detection) and the IPv6 default route via `gateway6`.
 */
export async function attach(o: { pid: number; bridge: string; ifName: string; cidr: string; mac: string; mtu: number; gateway?: string; cidr6?: string; gateway6?: string }): Promise<Attachment> {
  const hostIf = `veth${randomBytes(3).toString('hex')}`;
  const host = [
    `link add ${hostIf} mtu ${o.mtu} type veth peer name ${o.ifName} mtu ${o.mtu} netns ${o.pid}`,
    `link set ${hostIf} master ${o.bridge}`,
    `link set ${hostIf} up`,
  ];
  const inner = [
    `link set ${o.ifName} address ${o.mac}`,
    `addr add ${o.cidr} dev ${o.ifName}`,
    `link set lo up`,
    ...(o.cidr6 ? [`addr add ${o.cidr6} dev ${o.ifName} nodad`] : []),
    `link set ${o.ifName} up`,
    ...(o.gateway ? [`route replace default via ${o.gateway} dev ${o.ifName}`] : []),
    ...(o.cidr6 && o.gateway6 ? [`route replace default via ${o.gateway6} dev ${o.ifName}`] : []),
  ];
  const sysctls = o.cidr6 ? { [`ipv6/conf/${o.ifName}/disable_ipv6`]: '0', [`ipv6/conf/${o.ifName}/accept_dad`]: '0' } : {};
  try {
    await hostThenNamespace(host, inner, o.pid, sysctls);
  } catch (err) {
    await ipBatch([`link del ${hostIf}`], { force: true });
    throw err;
  }
  return { hostIf, containerIf: o.ifName };
}

/**
 * Both halves of a veth setup from one process of ours (each process node starts costs a few
 * ms on every `docker run`): a shell runs `ip -batch` for the host commands, writes the sysctls
 * inside the namespace of pid and becomes `ip -batch` there for the rest.
 */
function hostThenNamespace(host: string[], inner: string[], pid: number, sysctls: Record<string, string>): Promise<void> {
  for (const [k, v] of Object.entries(sysctls)) if (!/^[a-z0-9_.\/-]+$/.test(k) || !/^[0-9]+$/.test(v)) throw new SystemError(`bad sysctl ${k}=${v}`);
  const inNs = [...Object.entries(sysctls).map(([k, v]) => `echo ${v} > /proc/sys/net/${k}`), 'exec ip -batch -'].join(' && ');
  const script = 'printf "%s" "$1" | ip -batch - && printf "%s" "$2" | exec nsenter -t "$3" -n sh -c "$4"';
  return new Promise((resolve, reject) => {
    const p = spawn('sh', ['-c', script, 'sh', host.join('\n') + '\n', inner.join('\n') + '\n', String(pid), inNs], { stdio: ['ignore', 'ignore', 'pipe'] });
    let err = '';
    p.stderr.on('data', (b) => { err += b; });
    p.on('error', (e) => reject(new SystemError(`network setup: ${e.message}`)));
    p.on('close', (code) => (code === 0 ? resolve() : reject(new SystemError(`network setup failed: ${err.trim()}`))));
  });
}

/** Removes the host end of a veth pair (the peer in the container goes with it). */
export async function detach(hostIf: string): Promise<void> {
  await ipBatch([`link del ${hostIf}`], { force: true });
}

/** Host routes (IPv4 destinations, or IPv6 ones with family 6), so new networks never shadow one. */
export async function hostRoutes(family: 4 | 6 = 4): Promise<string[]> {
  return new Promise((resolve) => {
    const p = spawn('ip', [`-${family}`, '-j', 'route', 'show', 'table', 'all'], { stdio: ['ignore', 'pipe', 'ignore'] });
    let out = '';
    p.stdout.on('data', (b) => { out += b; });
    p.on('close', () => {
      try {
        resolve((JSON.parse(out) as Array<{ dst: string; type?: string }>)
          .filter((r) => r.dst && r.dst !== 'default' && (family === 6 ? r.dst.includes(':') && !/^f[ef]/i.test(r.dst) : /^\d/.test(r.dst))
            && (!r.type || r.type === 'unicast'))
          .map((r) => (r.dst.includes('/') ? r.dst : `${r.dst}/${family === 6 ? 128 : 32}`)));
      } catch { resolve([]); }
    });
    p.on('error', () => resolve([]));
  });
}
