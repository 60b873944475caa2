// NetworkService: the default networks (bridge on berth0, host, none), user-defined bridge
// networks, and a container's endpoints on them: addresses, veth pairs, published ports,
// firewall rules and the embedded DNS. Address use is derived from container records (running
// containers hold their addresses), so a crash cannot leak an allocation.
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { ConflictError, ForbiddenError, InvalidParameterError, NotFoundError } from '../errors.js';
import { RecordStore } from '../store/records.js';
import type { ContainerRecord } from '../store/containers.js';
import type { EventPublisher } from './containers.js';
import type { DaemonConfig } from './index.js';
import {
  allocate, allocate6, bigToIp6, contains, contains6, defaultPools, intToIp, ip6ToBig, ipToInt, isV6, macFor, overlaps6, parseSubnet,
  parseSubnet6, pickSubnet, pickSubnet6, pools6, poolsFrom, subnet6String, subnetString, type Subnet, type Subnet6,
} from './network/ipam.js';
import { attach, deleteBridge, detach, ensureBridge, hostRoutes } from './network/links.js';
import { initFirewall, removeFirewall, restore, rules, type PortMapping } from './network/firewall.js';
import { createHash } from 'node:crypto';
import { mkdir, rmdir, stat } from 'node:fs/promises';
import { NetworkDns, type DnsRecord } from './network/dns.js';
import { startProxy, type Proxy } from './network/proxy.js';

export interface NetworkRecord {
  Name: string; Id: string; Created: string; Scope: 'local'; Driver: string;
  EnableIPv4: boolean; EnableIPv6: boolean; Internal: boolean; Attachable: boolean; Ingress: boolean;
  IPAM: { Driver: string; Options: Record<string, string> | null; Config: Array<{ Subnet: string; Gateway: string; IPRange?: string; AuxiliaryAddresses?: Record<string, string> }> };
  ConfigFrom: { Network: string }; ConfigOnly: boolean;
  Options: Record<string, string>; Labels: Record<string, string>;
}

/** A container's endpoint on one network, kept in its record's NetworkSettings.Networks. */
export interface Endpoint {
  IPAMConfig: { IPv4Address?: string; IPv6Address?: string } | null; Links: string[] | null; Aliases: string[] | null; MacAddress: string;
  NetworkID: string; EndpointID: string; Gateway: string; IPAddress: string; IPPrefixLen: number;
  IPv6Gateway: string; GlobalIPv6Address: string; GlobalIPv6PrefixLen: number; DriverOpts: Record<string, string> | null; DNSNames: string[] | null;
  /** Host end of the veth pair while running (not part of the Engine's shape). */
  HostIf?: string;
}

export interface ContainerNetworking {
  Networks: Record<string, Endpoint>;
  Ports: Record<string, Array<{ HostIp: string; HostPort: string }> | null>;
  SandboxKey: string;
}

const BUILTIN = new Set(['bridge', 'host', 'none']);
const DEFAULT_MTU = 1500;
const OPT_BRIDGE_NAME = 'com.docker.network.bridge.name';
const OPT_ICC = 'com.docker.network.bridge.enable_icc';
const OPT_MASQ = 'com.docker.network.bridge.enable_ip_masquerade';
const OPT_MTU = 'com.docker.network.driver.mtu';

const DEFAULT_DATA_ROOT = '/var/lib/berth';

/**
 * Host-wide names of one daemon's network objects. The daemon on the default data-root uses
 * berth0 and BERTH-*; another (a test daemon) gets names derived from its data-root, so
 * daemons side by side never share a bridge or a chain.
 */
export function hostNamesFor(dataRoot: string): { suffix: string; defaultBridge: string } {
  if (dataRoot === DEFAULT_DATA_ROOT) return { suffix: '', defaultBridge: 'berth0' };
  const h = createHash('sha256').update(dataRoot).digest('hex').slice(0, 6);
  return { suffix: `-${h}`, defaultBridge: `berth${h}` };
}

/** Removes the default bridge and chains of a daemon that is gone (test clean-up). */
export async function removeHostNetworkObjects(dataRoot: string, bridges: string[] = []): Promise<void> {
  const n = hostNamesFor(dataRoot);
  await removeFirewall(n.suffix);
  for (const b of [n.defaultBridge, ...bridges]) await deleteBridge(b);
}

/** Serialises subnet choice and bridge creation between daemons on one host (mkdir is atomic). */
async function withHostLock<T>(fn: () => Promise<T>): Promise<T> {
  const lock = '/run/berth-network.lock';
  for (let i = 0; ; i++) {
    try { await mkdir(lock); break; } catch (e: any) {
      if (e.code !== 'EEXIST') break; // no /run: go on unlocked
      const st = await stat(lock).catch(() => null);
      if (st && Date.now() - st.mtimeMs > 10_000) { await rmdir(lock).catch(() => {}); continue; }
      if (i > 500) break;
      await new Promise((r) => setTimeout(r, 20));
    }
  }
  try { return await fn(); } finally { await rmdir(lock).catch(() => {}); }
}

export class NetworkService {
  private readonly store: RecordStore<NetworkRecord>;
  private readonly names: { suffix: string; defaultBridge: string };
  private readonly dns = new Map<string, NetworkDns>();       // network id -> DNS server
  private readonly proxies = new Map<string, Proxy[]>();      // container id -> port proxies
  private readonly ports = new Map<string, PortMapping[]>();  // container id -> mappings
  private containers: () => ContainerRecord[] = () => [];
  /** The rule set last written, to skip identical rewrites. */
  private appliedRules = '';
  /** Addresses handed to containers that are starting (not yet recorded as running). */
  private readonly reserved = new Map<string, Map<number, string>>(); // network name -> ip -> container id
  private readonly reserved6 = new Map<string, Map<bigint, string>>(); // the same for IPv6 addresses
  /** Whether ip6tables (with its nat table) works here; IPv6 networks need it. */
  private ip6tables = false;

  constructor(private readonly config: DaemonConfig, private readonly events: EventPublisher) {
    this.store = new RecordStore<NetworkRecord>(join(config.dataRoot, 'network', 'records'));
    this.names = hostNamesFor(config.dataRoot);
  }

  setContainerSource(fn: () => ContainerRecord[]): void { this.containers = fn; }

  // ---- start-up ------------------------------------------------------------------------------

  async init(): Promise<void> {
    await this.store.load();
    await withHostLock(async () => {
      await this.ensureDefaults();
      for (const n of this.store.values()) {
        if (n.Driver !== 'bridge') continue;
        await ensureBridge(bridgeName(n), gatewayCidr(v4Config(n)!), mtuOf(n), v6Config(n) ? gatewayCidr(v6Config(n)!) : undefined);
      }
    });
    this.ip6tables = (await initFirewall(this.names.suffix)).ipv6;
    for (const n of this.store.values()) if (n.Driver === 'bridge' && n.Name !== 'bridge') await this.startDns(n);
  }

  /** After containers are loaded: running ones get their ports, DNS names and rules back. */
  async restoreRunning(): Promise<void> {
    for (const rec of this.containers()) {
      if (!rec.State.Running || !rec.NetworkSettings) continue;
      await this.publishPorts(rec, this.primaryEndpoint(rec)).catch(() => {});
    }
    this.refreshDns();
    await this.applyFirewall();
  }

  private async ensureDefaults(): Promise<void> {
    const f = this.config.file as Record<string, any>;
    if (!this.byName('bridge')) {
      let subnet: Subnet, gateway: string;
      if (f.bip) {
        const s = parseSubnet(String(f.bip));
        subnet = s; gateway = String(f.bip).split('/')[0]!;
      } else {
        subnet = await this.freeSubnet(parseSubnet('172.17.0.0/16'));
        gateway = intToIp(subnet.base + 1);
      }
      await this.put({
        ...blank('bridge', 'bridge'),
        IPAM: { Driver: 'default', Options: null, Config: [{ Subnet: subnetString(subnet), Gateway: gateway, ...(f['fixed-cidr'] ? { IPRange: String(f['fixed-cidr']) } : {}) }] },
        Options: {
          'com.docker.network.bridge.default_bridge': 'true', [OPT_ICC]: 'true', [OPT_MASQ]: 'true',
          'com.docker.network.bridge.host_binding_ipv4': '0.0.0.0', [OPT_BRIDGE_NAME]: this.names.defaultBridge, [OPT_MTU]: String(f.mtu ?? DEFAULT_MTU),
        },
      });
    }
    await this.defaultBridgeIpv6(f);
    if (!this.byName('host')) await this.put({ ...blank('host', 'host'), IPAM: { Driver: 'default', Options: null, Config: [] } });
    if (!this.byName('none')) await this.put({ ...blank('none', 'null'), IPAM: { Driver: 'default', Options: null, Config: [] } });
  }

  /**
   * The default bridge follows daemon.json at every start, as the Engine's does: with `ipv6`
   * and `fixed-cidr-v6` it has that IPv6 subnet (gateway its first address), otherwise none.
   */
  private async defaultBridgeIpv6(f: Record<string, any>): Promise<void> {
    const n = this.byName('bridge')!;
    let want: { Subnet: string; Gateway: string } | undefined;
    if (f.ipv6 === true) {
      if (!f['fixed-cidr-v6']) throw new InvalidParameterError('ipv6 on the default bridge needs fixed-cidr-v6 in the daemon configuration');
      const s = parseSubnet6(String(f['fixed-cidr-v6']));
      want = { Subnet: subnet6String(s), Gateway: bigToIp6(s.base + 1n) };
    }
    const have = v6Config(n);
    if (have?.Subnet === want?.Subnet && have?.Gateway === want?.Gateway) return;
    await this.put({ ...n, EnableIPv6: !!want, IPAM: { ...n.IPAM, Config: [...n.IPAM.Config.filter((c) => !isV6(c.Subnet)), ...(want ? [want] : [])] } });
  }

  /** `preferred` if free, else the first free pool subnet (none overlapping networks or host routes). */
  private async freeSubnet(preferred?: Subnet): Promise<Subnet> {
    const taken = [...this.store.values()].flatMap((n) => n.IPAM.Config.filter((c) => !isV6(c.Subnet)).map((c) => parseSubnet(c.Subnet)));
    const ours = new Set([...this.store.values()].map((n) => bridgeName(n)));
    const routes = (await hostRoutes()).map(parseSubnet);
    const f = this.config.file as Record<string, any>;
    const pools = Array.isArray(f['default-address-pools']) ? poolsFrom(f['default-address-pools']) : defaultPools();
    const candidates = preferred ? [preferred, ...pools] : pools;
    void ours;
    return pickSubnet(candidates, [...taken, ...routes]);
  }

  /** The first free /64 (or default-address-pools size) of the IPv6 pools. */
  private async freeSubnet6(): Promise<Subnet6> {
    const taken = [...this.store.values()].flatMap((n) => n.IPAM.Config.filter((c) => isV6(c.Subnet)).map((c) => parseSubnet6(c.Subnet)));
    const routes = (await hostRoutes(6)).map(parseSubnet6);
    const f = this.config.file as Record<string, any>;
    const seed = createHash('sha256').update(`berth-ula:${this.config.dataRoot}`).digest('hex');
    return pickSubnet6(pools6(seed, Array.isArray(f['default-address-pools']) ? f['default-address-pools'] : []), [...taken, ...routes]);
  }

  private async put(n: NetworkRecord): Promise<void> { await this.store.put(n.Id, n); }

  // ---- lookup --------------------------------------------------------------------------------

  private byName(name: string): NetworkRecord | undefined {
    return [...this.store.values()].find((n) => n.Name === name);
  }

  /** By full ID, name, or unique ID prefix, as the Engine looks networks up. */
  find(ref: string): NetworkRecord {
    const byId = this.store.get(ref);
    if (byId) return byId;
    const byName = this.byName(ref);
    if (byName) return byName;
    const hits = [...this.store.values()].filter((n) => n.Id.startsWith(ref));
    if (hits.length === 1 && ref.length > 0) return hits[0]!;
    if (hits.length > 1) throw new InvalidParameterError(`network ${ref} is ambiguous (${hits.length} matches found on name)`);
    throw new NotFoundError(`network ${ref} not found`);
  }

  // ---- API -------------------------------------------------------------------------------------

  async create(body: Record<string, any>): Promise<{ Id: string; Warning: string }> {
    const name = String(body.Name ?? '');
    if (!name) throw new InvalidParameterError('network name must not be empty');
    if (!/^[a-zA-Z0-9][a-zA-Z0-9_.-]*$/.test(name)) throw new InvalidParameterError(`invalid network name "${name}"`);
    if (BUILTIN.has(name)) throw new ForbiddenError(`${name} is a pre-defined network and cannot be created`);
    if (this.byName(name)) throw new ConflictError(`network with name ${name} already exists`);
    const driver = body.Driver || 'bridge';
    if (driver !== 'bridge') throw new NotFoundError(`could not find plugin ${driver} in v1 plugin registry: plugin not found`);
    const ipamCfg = (body.IPAM?.Config ?? []) as Array<Record<string, any>>;
    const v4 = ipamCfg.filter((c) => !c.Subnet || !isV6(String(c.Subnet)));
    const v6 = ipamCfg.filter((c) => c.Subnet && isV6(String(c.Subnet)));
    if (v4.length > 1) throw new InvalidParameterError('berth supports one IPv4 subnet per network');
    if (v6.length > 1) throw new InvalidParameterError('berth supports one IPv6 subnet per network');
    if (v6.length && !body.EnableIPv6) throw new InvalidParameterError(`an IPv6 subnet (${v6[0]!.Subnet}) needs IPv6 enabled on the network (--ipv6)`);
    if (body.EnableIPv6 && !this.ip6tables) throw new InvalidParameterError('IPv6 networks need ip6tables with its nat table, which this host does not have');
    return withHostLock(() => this.createLocked(name, body, v4[0] ?? {}, body.EnableIPv6 ? v6[0] ?? {} : undefined));
  }

  /** An IPv6 network's IPAM entry: the subnet asked for (checked), or a free one from the pools. */
  private async ipv6Config(cfg: Record<string, any>): Promise<{ Subnet: string; Gateway: string; IPRange?: string; AuxiliaryAddresses?: Record<string, string> }> {
    let subnet: Subnet6;
    if (cfg.Subnet) {
      subnet = parseSubnet6(String(cfg.Subnet));
      if (subnet.prefix > 126) throw new InvalidParameterError(`invalid subnet ${cfg.Subnet}: too small for a gateway and containers`);
      for (const n of this.store.values()) {
        for (const c of n.IPAM.Config) {
          if (isV6(c.Subnet) && overlaps6(parseSubnet6(c.Subnet), subnet)) throw new ForbiddenError(`invalid pool request: Pool overlaps with other one on this address space`);
        }
      }
    } else {
      if (cfg.Gateway || cfg.IPRange) throw new InvalidParameterError('a gateway or ip-range needs a subnet');
      subnet = await this.freeSubnet6();
    }
    const gateway = cfg.Gateway ? bigToIp6(ip6ToBig(String(cfg.Gateway))) : bigToIp6(subnet.base + 1n);
    if (!contains6(subnet, ip6ToBig(gateway))) throw new InvalidParameterError(`invalid gateway ${gateway}: not in subnet ${subnet6String(subnet)}`);
    let ipRange: string | undefined;
    if (cfg.IPRange) {
      const r = parseSubnet6(String(cfg.IPRange));
      if (!contains6(subnet, r.base) || r.prefix < subnet.prefix) throw new InvalidParameterError(`invalid ip-range ${cfg.IPRange}: not in subnet ${subnet6String(subnet)}`);
      ipRange = subnet6String(r);
    }
    for (const a of Object.values(cfg.AuxiliaryAddresses ?? {})) {
      if (!contains6(subnet, ip6ToBig(String(a)))) throw new InvalidParameterError(`invalid auxiliary address ${a}: not in subnet ${subnet6String(subnet)}`);
    }
    return { Subnet: subnet6String(subnet), Gateway: gateway, ...(ipRange ? { IPRange: ipRange } : {}), ...(cfg.AuxiliaryAddresses ? { AuxiliaryAddresses: cfg.AuxiliaryAddresses } : {}) };
  }

  private async createLocked(name: string, body: Record<string, any>, cfg: Record<string, any>, cfg6?: Record<string, any>): Promise<{ Id: string; Warning: string }> {
    let subnet: Subnet;
    let gateway: string;
    let ipRange: string | undefined;
    if (cfg.Subnet) {
      subnet = parseSubnet(cfg.Subnet);
      for (const n of this.store.values()) {
        for (const c of n.IPAM.Config) {
          if (!isV6(c.Subnet) && overlapsCidr(c.Subnet, subnetString(subnet))) throw new ForbiddenError(`invalid pool request: Pool overlaps with other one on this address space`);
        }
      }
      gateway = cfg.Gateway || intToIp(subnet.base + 1);
      if (!contains(subnet, ipToInt(gateway))) throw new InvalidParameterError(`invalid gateway ${gateway}: not in subnet ${subnetString(subnet)}`);
      if (cfg.IPRange) {
        const r = parseSubnet(cfg.IPRange);
        if (!contains(subnet, r.base)) throw new InvalidParameterError(`invalid ip-range ${cfg.IPRange}: not in subnet ${subnetString(subnet)}`);
        ipRange = subnetString(r);
      }
    } else {
      if (cfg.Gateway || cfg.IPRange) throw new InvalidParameterError('a gateway or ip-range needs a subnet');
      subnet = await this.freeSubnet();
      gateway = intToIp(subnet.base + 1);
    }
    const v6 = cfg6 ? await this.ipv6Config(cfg6) : undefined;
    const opts = { ...(body.Options ?? {}) } as Record<string, string>;
    const id = randomBytes(32).toString('hex');
    const bridge = opts[OPT_BRIDGE_NAME] || `br-${id.slice(0, 12)}`;
    if (bridge.length > 15 || !/^[a-zA-Z0-9_.-]+$/.test(bridge)) throw new InvalidParameterError(`invalid bridge name "${bridge}"`);
    const rec: NetworkRecord = {
      ...blank(name, 'bridge'), Id: id,
      Internal: !!body.Internal, Attachable: !!body.Attachable, EnableIPv6: !!v6,
      IPAM: {
        Driver: 'default', Options: body.IPAM?.Options ?? {},
        Config: [
          { Subnet: subnetString(subnet), Gateway: gateway, ...(ipRange ? { IPRange: ipRange } : {}), ...(cfg.AuxiliaryAddresses ? { AuxiliaryAddresses: cfg.AuxiliaryAddresses } : {}) },
          ...(v6 ? [v6] : []),
        ],
      },
      Options: opts, Labels: { ...(body.Labels ?? {}) },
    };
    // the record first: a crash after it leaves a network whose bridge the next start creates,
    // never a bridge nobody knows about
    await this.put(rec);
    try {
      await ensureBridge(bridge, `${gateway}/${subnet.prefix}`, mtuOf(rec), v6 ? gatewayCidr(v6) : undefined);
      await this.startDns(rec);
      await this.applyFirewall();
    } catch (err) {
      await this.store.delete(id).catch(() => {});
      await deleteBridge(bridge);
      throw err;
    }
    this.publish(rec, 'create');
    return { Id: id, Warning: '' };
  }

  inspect(ref: string): Record<string, unknown> {
    const n = this.find(ref);
    const containers: Record<string, unknown> = {};
    for (const c of this.containers()) {
      const ep = c.State.Running ? c.NetworkSettings?.Networks?.[n.Name] : undefined;
      if (!ep || !ep.IPAddress) continue;
      containers[c.Id] = { Name: c.Name.slice(1), EndpointID: ep.EndpointID, MacAddress: ep.MacAddress, IPv4Address: `${ep.IPAddress}/${ep.IPPrefixLen}`,
        IPv6Address: ep.GlobalIPv6Address ? `${ep.GlobalIPv6Address}/${ep.GlobalIPv6PrefixLen}` : '' };
    }
    return { ...n, Containers: containers };
  }

  list(filters: Record<string, string[]> = {}): Record<string, unknown>[] {
    for (const k of Object.keys(filters)) {
      if (!['driver', 'id', 'label', 'name', 'scope', 'type', 'dangling'].includes(k)) throw new InvalidParameterError(`invalid filter '${k}'`);
    }
    const used = (n: NetworkRecord) => this.containers().some((c) => c.NetworkSettings?.Networks?.[n.Name] || c.HostConfig.NetworkMode === n.Name);
    return [...this.store.values()].filter((n) => {
      const any = (k: string, p: (v: string) => boolean) => !filters[k]?.length || filters[k]!.some(p);
      return any('driver', (v) => n.Driver === v) && any('id', (v) => n.Id.startsWith(v)) && any('name', (v) => n.Name.includes(v))
        && (!filters.label?.length || filters.label.every((l) => labelMatches(n.Labels, l)))
        && any('scope', (v) => v === 'local') && any('type', (v) => (v === 'builtin') === BUILTIN.has(n.Name))
        && any('dangling', (v) => (v === 'true' || v === '1') === (!BUILTIN.has(n.Name) && !used(n)));
    }).map((n) => this.inspect(n.Id)).sort((a, b) => String(a.Name).localeCompare(String(b.Name)));
  }

  async remove(ref: string): Promise<void> {
    const n = this.find(ref);
    if (BUILTIN.has(n.Name)) throw new ForbiddenError(`${n.Name} is a pre-defined network and cannot be removed`);
    const active = this.containers().filter((c) => c.State.Running && c.NetworkSettings?.Networks?.[n.Name]);
    if (active.length) throw new ForbiddenError(`error while removing network: network ${n.Name} id ${n.Id} has active endpoints`);
    await this.dns.get(n.Id)?.stop();
    this.dns.delete(n.Id);
    // the bridge before the record: a crash in between leaves the network, whose bridge the
    // next start re-creates, rather than a bridge nobody knows about
    await deleteBridge(bridgeName(n));
    await this.store.delete(n.Id);
    await this.applyFirewall();
    this.publish(n, 'destroy');
  }

  async prune(filters: Record<string, string[]> = {}): Promise<{ NetworksDeleted: string[] }> {
    const until = filters.until?.[0] ? Date.parse(filters.until[0]) || Date.now() - parseDurationMs(filters.until[0]) : undefined;
    const deleted: string[] = [];
    for (const n of [...this.store.values()]) {
      if (BUILTIN.has(n.Name)) continue;
      if (this.containers().some((c) => c.NetworkSettings?.Networks?.[n.Name] || c.HostConfig.NetworkMode === n.Name)) continue;
      if (filters.label?.length && !filters.label.every((l) => labelMatches(n.Labels, l))) continue;
      if (until !== undefined && Date.parse(n.Created) >= until) continue;
      await this.remove(n.Id).then(() => deleted.push(n.Name), () => {});
    }
    this.events.publish({ Type: 'network', Action: 'prune', Actor: { ID: '', Attributes: {} } });
    return { NetworksDeleted: deleted };
  }

  private publish(n: NetworkRecord, action: string, extra: Record<string, string> = {}): void {
    this.events.publish({ Type: 'network', Action: action, Actor: { ID: n.Id, Attributes: { name: n.Name, type: n.Driver, ...extra } } });
  }

  // ---- containers ------------------------------------------------------------------------------

  /**
   * At container create: the network mode checked and the endpoints to have (bridge, or user
   * networks with their aliases and static addresses), without addresses yet.
   */
  configure(hostConfig: Record<string, any>, endpointsConfig: Record<string, any> | undefined, lookup: (ref: string) => ContainerRecord): ContainerNetworking {
    let mode = String(hostConfig.NetworkMode ?? '');
    if (mode === '' || mode === 'default') mode = 'bridge';
    const out: ContainerNetworking = { Networks: {}, Ports: {}, SandboxKey: '' };
    if (mode.startsWith('container:')) {
      const other = lookup(mode.slice('container:'.length));
      hostConfig.NetworkMode = `container:${other.Id}`;
      if (hostConfig.PortBindings && Object.keys(hostConfig.PortBindings).length) throw new InvalidParameterError('conflicting options: port publishing and the container type network mode');
      return out;
    }
    const primary = this.find(mode);
    hostConfig.NetworkMode = primary.Name === mode || BUILTIN.has(primary.Name) ? primary.Name : mode;
    if (primary.Driver !== 'bridge') {
      if (Object.keys(hostConfig.PortBindings ?? {}).length && primary.Name === 'host') { /* ignored on host, as the Engine warns */ }
      out.Networks[primary.Name] = emptyEndpoint(primary.Id);
      return out;
    }
    const wanted = new Map<string, Record<string, any>>([[primary.Name, {}]]);
    for (const [ref, cfg] of Object.entries(endpointsConfig ?? {})) {
      // the CLI keys the endpoint of the default network mode as "default"
      const n = ref === 'default' ? primary : this.find(ref);
      if (n.Driver !== 'bridge') throw new InvalidParameterError(`container cannot be connected to network "${n.Name}" with the ${hostConfig.NetworkMode} network mode`);
      wanted.set(n.Name, { ...(wanted.get(n.Name) ?? {}), ...(cfg ?? {}) });
    }
    for (const [name, cfg] of wanted) {
      const n = this.byName(name)!;
      if (n.Name === 'bridge' && cfg.Aliases?.length) throw new InvalidParameterError('network-scoped alias is supported only for containers in user defined networks');
      out.Networks[name] = { ...emptyEndpoint(n.Id), IPAMConfig: staticAddresses(n, cfg), Aliases: cfg.Aliases?.length ? [...cfg.Aliases] : null, Links: cfg.Links ?? null, DriverOpts: cfg.DriverOpts ?? null };
    }
    checkPortBindings(hostConfig.PortBindings);
    return out;
  }

  /** Addresses for the container's endpoints, before its spec and /etc files are written. */
  allocateAddresses(rec: ContainerRecord): void {
    const ns = rec.NetworkSettings;
    if (!ns) return;
    for (const [name, ep] of Object.entries(ns.Networks)) {
      const n = this.byName(name);
      if (!n) throw new NotFoundError(`network ${name} not found`);
      if (n.Driver !== 'bridge') continue;
      const cfg = v4Config(n)!;
      const subnet = parseSubnet(cfg.Subnet);
      const used = this.usedAddresses(n, rec.Id);
      let ip: number;
      if (ep.IPAMConfig?.IPv4Address) {
        ip = ipToInt(ep.IPAMConfig.IPv4Address);
        if (used.has(ip)) throw new ConflictError(`Address already in use`);
      } else {
        ip = allocate(subnet, used, cfg.IPRange ? parseSubnet(cfg.IPRange) : subnet);
      }
      if (!this.reserved.has(n.Name)) this.reserved.set(n.Name, new Map());
      this.reserved.get(n.Name)!.set(ip, rec.Id);
      Object.assign(ep, {
        NetworkID: n.Id, EndpointID: randomBytes(32).toString('hex'), Gateway: n.Internal ? '' : cfg.Gateway,
        IPAddress: intToIp(ip), IPPrefixLen: subnet.prefix, MacAddress: macFor(ip),
        DNSNames: n.Name === 'bridge' ? null : dnsNames(rec, ep),
      });
      const cfg6 = v6Config(n);
      if (!cfg6) continue;
      const subnet6 = parseSubnet6(cfg6.Subnet);
      const used6 = this.usedAddresses6(n, cfg6, rec.Id);
      let ip6: bigint;
      if (ep.IPAMConfig?.IPv6Address) {
        ip6 = ip6ToBig(ep.IPAMConfig.IPv6Address);
        if (used6.has(ip6)) throw new ConflictError(`Address already in use`);
      } else {
        ip6 = allocate6(subnet6, used6, cfg6.IPRange ? parseSubnet6(cfg6.IPRange) : subnet6);
      }
      if (!this.reserved6.has(n.Name)) this.reserved6.set(n.Name, new Map());
      this.reserved6.get(n.Name)!.set(ip6, rec.Id);
      Object.assign(ep, { GlobalIPv6Address: bigToIp6(ip6), GlobalIPv6PrefixLen: subnet6.prefix, IPv6Gateway: n.Internal ? '' : cfg6.Gateway });
    }
  }

  private usedAddresses6(n: NetworkRecord, cfg: { Gateway: string; AuxiliaryAddresses?: Record<string, string> }, except: string): Set<bigint> {
    const used = new Set<bigint>([ip6ToBig(cfg.Gateway)]);
    for (const a of Object.values(cfg.AuxiliaryAddresses ?? {})) used.add(ip6ToBig(a));
    for (const [ip, owner] of this.reserved6.get(n.Name) ?? []) if (owner !== except) used.add(ip);
    for (const c of this.containers()) {
      if (c.Id === except) continue;
      const ep = c.NetworkSettings?.Networks?.[n.Name];
      if (c.State.Running && ep?.GlobalIPv6Address) used.add(ip6ToBig(ep.GlobalIPv6Address));
      else if (ep?.IPAMConfig?.IPv6Address) used.add(ip6ToBig(ep.IPAMConfig.IPv6Address));
    }
    return used;
  }

  private usedAddresses(n: NetworkRecord, except: string): Set<number> {
    const cfg = v4Config(n)!;
    const used = new Set<number>([ipToInt(cfg.Gateway)]);
    for (const a of Object.values(cfg.AuxiliaryAddresses ?? {})) if (!isV6(a)) used.add(ipToInt(a));
    for (const [ip, owner] of this.reserved.get(n.Name) ?? []) if (owner !== except) used.add(ip);
    for (const c of this.containers()) {
      if (c.Id === except) continue;
      const ep = c.NetworkSettings?.Networks?.[n.Name];
      if (c.State.Running && ep?.IPAddress) used.add(ipToInt(ep.IPAddress));
      else if (ep?.IPAMConfig?.IPv4Address) used.add(ipToInt(ep.IPAMConfig.IPv4Address)); // static addresses stay reserved
    }
    return used;
  }

  /** What the container's /etc/hosts and /etc/resolv.conf need. */
  etcInfo(rec: ContainerRecord): { ip?: string; ip6?: string; aliases: string[]; dnsServer?: string; gatewayForHost?: string } {
    const ep = this.primaryEndpoint(rec);
    const bridge = this.byName('bridge');
    const gatewayForHost = bridge ? v4Config(bridge)?.Gateway : undefined;
    if (!ep) return { aliases: [], gatewayForHost };
    const [name, e] = ep;
    const n = this.byName(name)!;
    return {
      ip: e.IPAddress || undefined, ip6: e.GlobalIPv6Address || undefined, aliases: [],
      dnsServer: n.Name !== 'bridge' && n.Driver === 'bridge' ? v4Config(n)!.Gateway : undefined,
      gatewayForHost,
    };
  }

  private primaryEndpoint(rec: ContainerRecord): [string, Endpoint] | undefined {
    const nets = rec.NetworkSettings?.Networks ?? {};
    const mode = rec.HostConfig.NetworkMode;
    if (nets[mode]) return [mode, nets[mode]!];
    const first = Object.entries(nets)[0];
    return first;
  }

  /**
   * Once the runtime created the container (its network namespace exists as /proc/<pid>/ns/net)
   * and before it starts: veths, ports, DNS, firewall.
   */
  async connectRunning(rec: ContainerRecord, pid: number): Promise<void> {
    const ns = rec.NetworkSettings;
    if (!ns) return;
    ns.SandboxKey = `/proc/${pid}/ns/net`;
    let index = 0;
    let routed = false, routed6 = false;
    for (const [name, ep] of Object.entries(ns.Networks)) {
      const n = this.byName(name)!;
      if (n.Driver !== 'bridge') continue;
      const gateway = !routed && !n.Internal ? v4Config(n)!.Gateway : undefined;
      if (gateway) routed = true;
      // the IPv6 default route: through the first non-internal IPv6 network
      const gateway6 = !routed6 && ep.IPv6Gateway ? ep.IPv6Gateway : undefined;
      if (gateway6) routed6 = true;
      const a = await attach({
        pid, bridge: bridgeName(n), ifName: `eth${index++}`, cidr: `${ep.IPAddress}/${ep.IPPrefixLen}`, mac: ep.MacAddress, mtu: mtuOf(n), gateway,
        ...(ep.GlobalIPv6Address ? { cidr6: `${ep.GlobalIPv6Address}/${ep.GlobalIPv6PrefixLen}`, gateway6 } : {}),
      });
      ep.HostIf = a.hostIf;
    }
    await this.publishPorts(rec, this.primaryEndpoint(rec));
    this.refreshDns();
    await this.applyFirewall();
    for (const [name] of Object.entries(ns.Networks)) {
      const n = this.byName(name);
      if (n && n.Driver === 'bridge') this.publish(n, 'connect', { container: rec.Id });
    }
  }

  private async publishPorts(rec: ContainerRecord, primary: [string, Endpoint] | undefined): Promise<void> {
    const bindings = (rec.HostConfig.PortBindings ?? {}) as Record<string, Array<{ HostIp?: string; HostPort?: string }> | null>;
    const exposed = Object.keys(rec.Config.ExposedPorts ?? {});
    const all: Record<string, Array<{ HostIp?: string; HostPort?: string }>> = {};
    for (const [k, v] of Object.entries(bindings)) all[normPort(k)] = v?.length ? v : [{}];
    if (rec.HostConfig.PublishAllPorts) for (const k of exposed) all[normPort(k)] ??= [{}];
    const ns = rec.NetworkSettings!;
    ns.Ports = {};
    for (const k of [...exposed.map(normPort), ...Object.keys(all)]) ns.Ports[k] = null;
    if (!primary || !primary[1].IPAddress || !Object.keys(all).length) return;
    const n = this.byName(primary[0])!;
    const proxies: Proxy[] = [];
    const maps: PortMapping[] = [];
    try {
      for (const [key, list] of Object.entries(all)) {
        const [cport, proto] = key.split('/') as [string, 'tcp' | 'udp'];
        for (const b of list) {
          const hostIp = b.HostIp || '';
          const [lo, hi] = (b.HostPort || '0').split('-').map(Number) as [number, number?];
          const cRange = cport.split('-').map(Number);
          const count = hi ? hi - lo + 1 : 1;
          for (let i = 0; i < count; i++) {
            const targetPort = cRange.length > 1 ? cRange[0]! + i : Number(cport);
            const p = await startProxy({ proto, hostIp, hostPort: lo ? lo + i : 0, targetIp: primary[1].IPAddress, targetPort });
            proxies.push(p);
            maps.push({
              bridge: bridgeName(n), proto, hostIp, hostPort: p.hostPort, containerIp: primary[1].IPAddress, containerPort: targetPort,
              ...(primary[1].GlobalIPv6Address ? { containerIp6: primary[1].GlobalIPv6Address } : {}),
            });
            (ns.Ports[key] ??= []).push({ HostIp: hostIp || '0.0.0.0', HostPort: String(p.hostPort) });
          }
        }
      }
    } catch (err) {
      for (const p of proxies) p.close();
      throw err;
    }
    this.proxies.set(rec.Id, proxies);
    this.ports.set(rec.Id, maps);
  }

  /** When the container stopped (its namespace, and so its veths, are gone). */
  async disconnectStopped(rec: ContainerRecord): Promise<void> {
    for (const p of this.proxies.get(rec.Id) ?? []) p.close();
    this.proxies.delete(rec.Id);
    this.ports.delete(rec.Id);
    const ns = rec.NetworkSettings;
    if (!ns) return;
    const shared = this.containers().some((c) => c.State.Running && c.HostConfig.NetworkMode === `container:${rec.Id}`);
    for (const [name, ep] of Object.entries(ns.Networks)) {
      // a second call for the same stop (exit seen twice, or the removal after it) says nothing again
      const wasConnected = !!(ep.EndpointID || ep.IPAddress || ep.HostIf);
      if (ep.IPAddress) this.reserved.get(name)?.delete(ipToInt(ep.IPAddress));
      if (ep.GlobalIPv6Address) this.reserved6.get(name)?.delete(ip6ToBig(ep.GlobalIPv6Address));
      // the veth pair goes with the container's namespace, unless another container joined it
      if (ep.HostIf && shared) await detach(ep.HostIf).catch(() => {});
      Object.assign(ep, {
        EndpointID: '', Gateway: '', IPAddress: '', IPPrefixLen: 0, MacAddress: '', HostIf: undefined, DNSNames: null,
        IPv6Gateway: '', GlobalIPv6Address: '', GlobalIPv6PrefixLen: 0,
      });
      const n = this.byName(name);
      if (n && n.Driver === 'bridge' && wasConnected) this.publish(n, 'disconnect', { container: rec.Id });
    }
    ns.SandboxKey = '';
    for (const k of Object.keys(ns.Ports)) ns.Ports[k] = null;
    this.refreshDns();
    await this.applyFirewall().catch(() => {});
  }

  /** docker network connect: a new endpoint; live when the container runs. */
  async connect(rec: ContainerRecord, ref: string, cfg: Record<string, any> = {}): Promise<void> {
    const n = this.find(ref);
    const mode = rec.HostConfig.NetworkMode;
    if (n.Driver !== 'bridge' || mode === 'host' || mode === 'none' || mode.startsWith('container:')) {
      throw new InvalidParameterError(`container cannot be disconnected from host network or connected to host network`);
    }
    const ns = rec.NetworkSettings ??= { Networks: {}, Ports: {}, SandboxKey: '' };
    if (ns.Networks[n.Name]) throw new ForbiddenError(`endpoint with name ${rec.Name.slice(1)} already exists in network ${n.Name}`);
    ns.Networks[n.Name] = { ...emptyEndpoint(n.Id), IPAMConfig: staticAddresses(n, cfg), Aliases: cfg.Aliases?.length ? [...cfg.Aliases] : null };
    if (!rec.State.Running) return;
    const pid = rec.State.Pid;
    const only = { ...rec, NetworkSettings: { ...ns, Networks: { [n.Name]: ns.Networks[n.Name]! } } } as ContainerRecord;
    this.allocateAddresses(only);
    const ep = ns.Networks[n.Name]!;
    const index = Object.keys(ns.Networks).length - 1;
    // no default routes: the container keeps the ones it has
    const a = await attach({
      pid, bridge: bridgeName(n), ifName: `eth${index}`, cidr: `${ep.IPAddress}/${ep.IPPrefixLen}`, mac: ep.MacAddress, mtu: mtuOf(n),
      ...(ep.GlobalIPv6Address ? { cidr6: `${ep.GlobalIPv6Address}/${ep.GlobalIPv6PrefixLen}` } : {}),
    });
    ep.HostIf = a.hostIf;
    this.refreshDns();
    await this.applyFirewall();
    this.publish(n, 'connect', { container: rec.Id });
  }

  async disconnect(rec: ContainerRecord, ref: string): Promise<void> {
    const n = this.find(ref);
    const ns = rec.NetworkSettings;
    const ep = ns?.Networks[n.Name];
    if (!ns || !ep) throw new ForbiddenError(`container ${rec.Id} is not connected to network ${n.Name}`);
    if (ep.HostIf) await detach(ep.HostIf);
    if (ep.IPAddress) this.reserved.get(n.Name)?.delete(ipToInt(ep.IPAddress));
    if (ep.GlobalIPv6Address) this.reserved6.get(n.Name)?.delete(ip6ToBig(ep.GlobalIPv6Address));
    delete ns.Networks[n.Name];
    this.refreshDns();
    await this.applyFirewall();
    this.publish(n, 'disconnect', { container: rec.Id });
  }

  // ---- DNS and firewall --------------------------------------------------------------------

  private async startDns(n: NetworkRecord): Promise<void> {
    if (this.dns.has(n.Id)) return;
    const dns = new NetworkDns(v4Config(n)!.Gateway);
    const id = n.Id;
    dns.setProvider((source) => { const cur = this.store.get(id); return cur ? this.dnsScope(cur, source) : []; });
    await dns.start();
    this.dns.set(n.Id, dns);
  }

  private refreshDns(): void {
    // answers are computed per query (from current records), so there is nothing to push
  }

  /**
   * What a container asking from `source` on network `n` may resolve: names on every user
   * network it is attached to (as the Engine's resolver answers), or on `n` for an unknown asker.
   */
  private dnsScope(n: NetworkRecord, source: string): DnsRecord[] {
    const running = this.containers().filter((c) => c.State.Running && c.NetworkSettings);
    const asker = running.find((c) => {
      const ep = c.NetworkSettings!.Networks[n.Name];
      return !!ep && (ep.IPAddress === source || (!!ep.GlobalIPv6Address && ep.GlobalIPv6Address === source));
    });
    const nets = asker ? Object.keys(asker.NetworkSettings!.Networks).filter((x) => x !== 'bridge') : [n.Name];
    const out: DnsRecord[] = [];
    for (const c of running) {
      for (const net of nets) {
        const ep = c.NetworkSettings!.Networks[net];
        if (ep?.IPAddress) out.push({ names: dnsNames(c, ep).map((x) => x.toLowerCase()), ip: ep.IPAddress, ...(ep.GlobalIPv6Address ? { ip6: ep.GlobalIPv6Address } : {}) });
      }
    }
    return out;
  }

  private async applyFirewall(): Promise<void> {
    const nets = [...this.store.values()].filter((n) => n.Driver === 'bridge').map((n) => ({
      bridge: bridgeName(n), subnet: v4Config(n)!.Subnet, internal: n.Internal,
      icc: n.Options[OPT_ICC] !== 'false', masquerade: n.Options[OPT_MASQ] !== 'false',
      ...(v6Config(n) ? { subnet6: v6Config(n)!.Subnet } : {}),
    }));
    const ports = [...this.ports.values()].flat();
    const text = rules(nets, ports, this.names.suffix);
    const text6 = this.ip6tables ? rules(nets, ports, this.names.suffix, 6) : '';
    if (text + text6 === this.appliedRules) return; // most starts and stops change no rule
    await restore(text);
    if (text6) await restore(text6, 6);
    this.appliedRules = text + text6;
  }

  async shutdown(): Promise<void> {
    for (const p of [...this.proxies.values()].flat()) p.close();
    for (const d of this.dns.values()) await d.stop();
  }
}

function blank(name: string, driver: string): NetworkRecord {
  return {
    Name: name, Id: randomBytes(32).toString('hex'), Created: new Date().toISOString(), Scope: 'local', Driver: driver,
    EnableIPv4: true, EnableIPv6: false, Internal: false, Attachable: false, Ingress: false,
    IPAM: { Driver: 'default', Options: null, Config: [] }, ConfigFrom: { Network: '' }, ConfigOnly: false, Options: {}, Labels: {},
  };
}

function emptyEndpoint(networkId: string): Endpoint {
  return {
    IPAMConfig: null, Links: null, Aliases: null, MacAddress: '', NetworkID: networkId, EndpointID: '', Gateway: '', IPAddress: '',
    IPPrefixLen: 0, IPv6Gateway: '', GlobalIPv6Address: '', GlobalIPv6PrefixLen: 0, DriverOpts: null, DNSNames: null,
  };
}

/** Names the embedded DNS answers for: container name, aliases, short ID. */
function dnsNames(c: ContainerRecord, ep: Endpoint): string[] {
  return [c.Name.slice(1), ...(ep.Aliases ?? []), c.Id.slice(0, 12)];
}

type IpamConfig = NetworkRecord['IPAM']['Config'][number];
/** A network's IPv4 and IPv6 IPAM entries (IPv4 first, as the Engine lists them). */
const v4Config = (n: NetworkRecord): IpamConfig | undefined => n.IPAM.Config.find((c) => !isV6(c.Subnet));
const v6Config = (n: NetworkRecord): IpamConfig | undefined => n.IPAM.Config.find((c) => isV6(c.Subnet));
const gatewayCidr = (c: IpamConfig): string => `${c.Gateway}/${c.Subnet.split('/')[1]}`;

/** --ip / --ip6: checked against the network's subnets, kept as the endpoint's IPAMConfig. */
function staticAddresses(n: NetworkRecord, cfg: Record<string, any>): Endpoint['IPAMConfig'] {
  const ip = cfg.IPAMConfig?.IPv4Address as string | undefined;
  const ip6 = cfg.IPAMConfig?.IPv6Address as string | undefined;
  if (!ip && !ip6) return null;
  if (n.Name === 'bridge' || !n.IPAM.Config.length) throw new InvalidParameterError('user specified IP address is supported on user defined networks only');
  if (ip && !contains(parseSubnet(v4Config(n)!.Subnet), ipToInt(ip))) throw new InvalidParameterError(`no configured subnet or ip-range contain the IP address ${ip}`);
  if (ip6) {
    const c6 = v6Config(n);
    if (!c6) throw new InvalidParameterError(`invalid IPv6 address ${ip6}: network ${n.Name} does not have IPv6 enabled`);
    if (!contains6(parseSubnet6(c6.Subnet), ip6ToBig(ip6))) throw new InvalidParameterError(`no configured subnet or ip-range contain the IP address ${ip6}`);
  }
  return { ...(ip ? { IPv4Address: ip } : {}), ...(ip6 ? { IPv6Address: bigToIp6(ip6ToBig(ip6)) } : {}) };
}

const bridgeName = (n: NetworkRecord): string => n.Options[OPT_BRIDGE_NAME] || `br-${n.Id.slice(0, 12)}`;
const mtuOf = (n: NetworkRecord): number => Number(n.Options[OPT_MTU]) || DEFAULT_MTU;
const normPort = (k: string): string => (k.includes('/') ? k : `${k}/tcp`);
const overlapsCidr = (a: string, b: string): boolean => {
  const x = parseSubnet(a), y = parseSubnet(b);
  return x.base < y.base + 2 ** (32 - y.prefix) && y.base < x.base + 2 ** (32 - x.prefix);
};

function labelMatches(labels: Record<string, string>, filter: string): boolean {
  const i = filter.indexOf('=');
  return i < 0 ? filter in labels : labels[filter.slice(0, i)] === filter.slice(i + 1);
}

function parseDurationMs(v: string): number {
  const m = /^(\d+)(s|m|h)$/.exec(v);
  return m ? Number(m[1]) * { s: 1000, m: 60_000, h: 3_600_000 }[m[2] as 's' | 'm' | 'h'] : 0;
}

function checkPortBindings(b: Record<string, Array<{ HostIp?: string; HostPort?: string }> | null> | undefined): void {
  for (const [k, list] of Object.entries(b ?? {})) {
    const m = /^(\d+)(?:-(\d+))?(?:\/(tcp|udp|sctp))?$/.exec(k);
    if (!m) throw new InvalidParameterError(`invalid port specification: "${k}"`);
    if (m[3] === 'sctp') throw new InvalidParameterError('sctp ports are not supported by berth');
    for (const e of list ?? []) {
      if (e.HostPort && !/^\d+(-\d+)?$/.test(e.HostPort)) throw new InvalidParameterError(`invalid port specification: "${e.HostPort}"`);
      if (e.HostIp && isV6(e.HostIp)) ip6ToBig(e.HostIp); // throws for a malformed one
      else if (e.HostIp && !/^\d+\.\d+\.\d+\.\d+$/.test(e.HostIp)) throw new InvalidParameterError(`invalid IP address: ${e.HostIp}`);
    }
  }
}
