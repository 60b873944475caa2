// /etc/hostname, /etc/hosts and /etc/resolv.conf that the Engine writes per container and
// bind-mounts into it.
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';

export interface EtcFiles { hostnamePath: string; hostsPath: string; resolvConfPath: string }

export function etcFilePaths(containerDir: string): EtcFiles {
  return {
    hostnamePath: join(containerDir, 'hostname'),
    hostsPath: join(containerDir, 'hosts'),
    resolvConfPath: join(containerDir, 'resolv.conf'),
  };
}

/** The host's resolv.conf without loopback resolvers (they would point at the container itself). */
export function containerResolvConf(hostText: string, dns?: string[], search?: string[], options?: string[]): string {
  const lines = hostText.split('\n');
  const kept = lines.filter((l) => {
    const m = /^\s*nameserver\s+(\S+)/.exec(l);
    return !(m && (/^127\./.test(m[1]) || m[1] === '::1'));
  });
  let out = kept.filter((l) => !(dns?.length && /^\s*nameserver\s/.test(l))
    && !(search?.length && /^\s*(search|domain)\s/.test(l))
    && !(options?.length && /^\s*options\s/.test(l)));
  if (search?.length) out.push(`search ${search.join(' ')}`);
  if (dns?.length) for (const d of dns) out.push(`nameserver ${d}`);
  if (options?.length) out.push(`options ${options.join(' ')}`);
  out = out.filter((l, i) => l.trim() !== '' || i < out.length - 1);
  // Docker falls back to public resolvers when none is left; with no network here we leave none.
  return out.join('\n').replace(/\n*$/, '\n');
}

export async function writeEtcFiles(containerDir: string, c: {
  hostname: string; domainname?: string; extraHosts?: string[]; dns?: string[]; dnsSearch?: string[]; dnsOptions?: string[];
  /** The container's address on its primary network, for its own /etc/hosts line. */
  ip?: string;
  /** Its IPv6 address there, on an IPv6 network. */
  ip6?: string;
  /** The embedded DNS of a user-defined network, used instead of the host's resolvers. */
  dnsServer?: string;
  /** What `host-gateway` in ExtraHosts stands for (the default bridge's gateway). */
  hostGateway?: string;
  /** Legacy --link entries: the linked container's address and the names it answers to. */
  links?: Array<{ ip: string; names: string[] }>;
}): Promise<EtcFiles> {
  const paths = etcFilePaths(containerDir);
  await writeFile(paths.hostnamePath, `${c.hostname}\n`);
  const hosts = [
    '127.0.0.1\tlocalhost',
    '::1\tlocalhost ip6-localhost ip6-loopback',
    'fe00::\tip6-localnet',
    'ff00::\tip6-mcastprefix',
    'ff02::1\tip6-allnodes',
    'ff02::2\tip6-allrouters',
  ];
  for (const e of c.extraHosts ?? []) {
    const i = e.search(/[:=]/);
    if (i <= 0) continue;
    const addr = e.slice(i + 1);
    hosts.push(`${addr === 'host-gateway' ? c.hostGateway ?? addr : addr}\t${e.slice(0, i)}`);
  }
  for (const l of c.links ?? []) hosts.push(`${l.ip}\t${l.names.join(' ')}`);
  const self = `${c.domainname ? `${c.hostname}.${c.domainname} ` : ''}${c.hostname}`;
  if (c.ip) hosts.push(`${c.ip}\t${self}`);
  if (c.ip6) hosts.push(`${c.ip6}\t${self}`);
  await writeFile(paths.hostsPath, hosts.join('\n') + '\n');
  const host = await readFile('/etc/resolv.conf', 'utf8').catch(() => '');
  const resolv = c.dnsServer && !c.dns?.length
    // user-defined networks: the embedded DNS answers (and forwards what it does not know)
    ? containerResolvConf(host, [c.dnsServer], c.dnsSearch, [...(c.dnsOptions ?? []), 'ndots:0'])
    : containerResolvConf(host, c.dns, c.dnsSearch, c.dnsOptions);
  await writeFile(paths.resolvConfPath, resolv);
  return paths;
}
