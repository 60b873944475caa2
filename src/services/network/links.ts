// Bridges and veth pairs through iproute2's `ip -batch` (one process per step, not per command).
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { SystemError } from '../../errors.js';

/** Runs `ip -batch -` (optionally inside the network namespace of pid), feeding the commands on stdin. */
export function ipBatch(commands: string[], opts: { netnsPid?: number; force?: boolean } = {}): Promise<void> {
  const args = opts.netnsPid ? ['-t', String(opts.netnsPid), '-n', 'ip'] : [];
  const cmd = opts.netnsPid ? 'nsenter' : 'ip';
  const ipArgs = [...(opts.force ? ['-force'] : []), '-batch', '-'];
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

export async function ensureBridge(name: string, gatewayCidr: string, mtu: number): Promise<void> {
  if (await linkExists(name)) {
    // after a daemon restart: make sure it carries the gateway address and is up
    await ipBatch([`addr replace ${gatewayCidr} dev ${name}`, `link set ${name} up`]);
    return;
  }
  await ipBatch([`link add name ${name} type bridge`, `link set ${name} mtu ${mtu}`, `addr add ${gatewayCidr} dev ${name}`, `link set ${name} up`]);
}

export async function deleteBridge(name: string): Promise<void> {
  if (await linkExists(name)) await ipBatch([`link del ${name}`], { force: true });
}

export interface Attachment { hostIf: string; containerIf: string }

/**
 * A veth pair: the host end into the bridge, the other end into the namespace of pid, renamed
 * to ifName with its address, MAC and MTU, plus the default route when `gateway` is given.
 */
export async function attach(o: { pid: number; bridge: string; ifName: string; cidr: string; mac: string; mtu: number; gateway?: string }): Promise<Attachment> {
  const hostIf = `veth${randomBytes(3).toString('hex')}`;
  // the peer is created inside the container's namespace: moving an interface there later
  // costs a kernel synchronisation (~20 ms), creating it there does not
  await ipBatch([
    `link add ${hostIf} mtu ${o.mtu} type veth peer name ${o.ifName} mtu ${o.mtu} netns ${o.pid}`,
    `link set ${hostIf} master ${o.bridge}`,
    `link set ${hostIf} up`,
  ]);
  try {
    await ipBatch([
      `link set ${o.ifName} address ${o.mac}`,
      `addr add ${o.cidr} dev ${o.ifName}`,
      `link set lo up`,
      `link set ${o.ifName} up`,
      ...(o.gateway ? [`route replace default via ${o.gateway} dev ${o.ifName}`] : []),
    ], { netnsPid: o.pid });
  } catch (err) {
    await ipBatch([`link del ${hostIf}`], { force: true });
    throw err;
  }
  return { hostIf, containerIf: o.ifName };
}

/** Removes the host end of a veth pair (the peer in the container goes with it). */
export async function detach(hostIf: string): Promise<void> {
  await ipBatch([`link del ${hostIf}`], { force: true });
}

/** Host routes (IPv4 destinations), so new networks never shadow one. */
export async function hostRoutes(): Promise<string[]> {
  return new Promise((resolve) => {
    const p = spawn('ip', ['-4', '-j', 'route', 'show', 'table', 'all'], { stdio: ['ignore', 'pipe', 'ignore'] });
    let out = '';
    p.stdout.on('data', (b) => { out += b; });
    p.on('close', () => {
      try {
        resolve((JSON.parse(out) as Array<{ dst: string; type?: string }>)
          .filter((r) => r.dst && r.dst !== 'default' && /^\d/.test(r.dst) && (!r.type || r.type === 'unicast'))
          .map((r) => (r.dst.includes('/') ? r.dst : `${r.dst}/32`)));
      } catch { resolve([]); }
    });
    p.on('error', () => resolve([]));
  });
}
