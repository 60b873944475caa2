// The shapes GET /containers/{id}/json and GET /containers/json return, built from a record.
// Pure functions: no I/O except the optional size calculation done by the caller.
import type { ContainerRecord } from '../store/containers.js';
import { InvalidParameterError } from '../errors.js';
import { humanDuration, unixSeconds } from './time.js';
import { rootfsPaths } from './rootfs.js';

export function inspectView(rec: ContainerRecord, dir: string, layerDirs: string[], sizes?: { rw: number; rootFs: number }): Record<string, unknown> {
  const p = rootfsPaths(dir);
  const hostConfig = { ...rec.HostConfig };
  const netMode = hostConfig.NetworkMode as string;
  const view: Record<string, unknown> = {
    Id: rec.Id,
    Created: rec.Created,
    Path: rec.Path,
    Args: rec.Args,
    State: { ...rec.State },
    Image: rec.Image,
    ResolvConfPath: rec.ResolvConfPath,
    HostnamePath: rec.HostnamePath,
    HostsPath: rec.HostsPath,
    LogPath: rec.LogPath,
    Name: rec.Name,
    RestartCount: rec.RestartCount,
    Driver: rec.Driver,
    Platform: rec.Platform,
    MountLabel: '',
    ProcessLabel: '',
    AppArmorProfile: '',
    ExecIDs: rec.ExecIDs && rec.ExecIDs.length ? rec.ExecIDs : null,
    HostConfig: hostConfig,
    GraphDriver: {
      Name: 'overlay2',
      Data: { LowerDir: layerDirs.join(':'), UpperDir: p.upper, WorkDir: p.work, MergedDir: p.merged },
    },
    Mounts: mountsView(rec),
    Config: rec.Config,
    NetworkSettings: rec.NetworkSettings ? networkView(rec) : networkSettings(netMode),
  };
  if (sizes) { view.SizeRw = sizes.rw; view.SizeRootFs = sizes.rootFs; }
  return view;
}

function mountsView(rec: ContainerRecord): unknown[] {
  if (rec.MountPoints) {
    return rec.MountPoints.map((m) => ({
      Type: m.Type, ...(m.Type === 'volume' ? { Name: m.Name } : {}), Source: m.Source, Destination: m.Destination,
      ...(m.Type === 'volume' ? { Driver: m.Driver ?? 'local' } : {}), Mode: m.Mode, RW: m.RW, Propagation: m.Propagation,
    }));
  }
  const out: unknown[] = [];
  for (const b of (rec.HostConfig.Binds ?? []) as string[]) {
    const [src, dst, mode = ''] = b.split(':');
    out.push({ Type: 'bind', Source: src, Destination: dst, Mode: mode, RW: !mode.split(',').includes('ro'), Propagation: 'rprivate' });
  }
  for (const m of (rec.HostConfig.Mounts ?? []) as any[]) {
    out.push({ Type: m.Type, Source: m.Source ?? '', Destination: m.Target, Mode: '', RW: !m.ReadOnly, Propagation: m.BindOptions?.Propagation ?? (m.Type === 'bind' ? 'rprivate' : '') });
  }
  for (const [dst] of Object.entries((rec.HostConfig.Tmpfs ?? {}) as Record<string, string>)) {
    out.push({ Type: 'tmpfs', Source: '', Destination: dst, Mode: '', RW: true, Propagation: '' });
  }
  return out;
}

/** `docker ps` PORTS: one entry per binding, unbound exposed ports without a public side. */
function portsSummary(rec: ContainerRecord): unknown[] {
  const out: unknown[] = [];
  for (const [key, list] of Object.entries(rec.NetworkSettings?.Ports ?? {})) {
    const [port, type] = key.split('/');
    if (!list?.length) { out.push({ PrivatePort: Number(port), Type: type }); continue; }
    for (const b of list) out.push({ IP: b.HostIp, PrivatePort: Number(port), PublicPort: Number(b.HostPort), Type: type });
  }
  return out;
}

/** NetworkSettings as the Engine shows them; the default bridge's endpoint is also copied to the top level. */
function networkView(rec: ContainerRecord): { Networks: Record<string, unknown>; [k: string]: unknown } {
  const ns = rec.NetworkSettings!;
  const networks: Record<string, unknown> = {};
  for (const [name, ep] of Object.entries(ns.Networks)) {
    const { HostIf: _h, ...view } = ep as Record<string, unknown>;
    networks[name] = view;
  }
  const bridge = ns.Networks.bridge as Record<string, any> | undefined;
  return {
    Bridge: '', SandboxID: ns.SandboxKey ? rec.Id : '', SandboxKey: ns.SandboxKey, HairpinMode: false, LinkLocalIPv6Address: '', LinkLocalIPv6PrefixLen: 0,
    Ports: ns.Ports, SecondaryIPAddresses: null, SecondaryIPv6Addresses: null,
    EndpointID: bridge?.EndpointID ?? '', Gateway: bridge?.Gateway ?? '', GlobalIPv6Address: bridge?.GlobalIPv6Address ?? '', GlobalIPv6PrefixLen: bridge?.GlobalIPv6PrefixLen ?? 0,
    IPAddress: bridge?.IPAddress ?? '', IPPrefixLen: bridge?.IPPrefixLen ?? 0, IPv6Gateway: bridge?.IPv6Gateway ?? '', MacAddress: bridge?.MacAddress ?? '',
    Networks: networks,
  };
}

function networkSettings(mode: string): Record<string, unknown> {
  return {
    Bridge: '', SandboxID: '', SandboxKey: '', HairpinMode: false, LinkLocalIPv6Address: '', LinkLocalIPv6PrefixLen: 0,
    Ports: {}, SecondaryIPAddresses: null, SecondaryIPv6Addresses: null, EndpointID: '', Gateway: '',
    GlobalIPv6Address: '', GlobalIPv6PrefixLen: 0, IPAddress: '', IPPrefixLen: 0, IPv6Gateway: '', MacAddress: '',
    Networks: mode ? { [mode]: { IPAMConfig: null, Links: null, Aliases: null, MacAddress: '', NetworkID: '', EndpointID: '', Gateway: '', IPAddress: '', IPPrefixLen: 0, IPv6Gateway: '', GlobalIPv6Address: '', GlobalIPv6PrefixLen: 0, DriverOpts: null, DNSNames: null } } : {},
  };
}

export function statusText(rec: ContainerRecord, now = Date.now()): string {
  const s = rec.State;
  if (s.Status === 'removing') return 'Removal In Progress';
  if (s.Restarting) return `Restarting (${s.ExitCode}) ${humanDuration(now - Date.parse(s.FinishedAt))} ago`;
  if (s.Running) {
    const up = `Up ${humanDuration(now - Date.parse(s.StartedAt))}`;
    if (s.Paused) return `${up} (Paused)`;
    const h = s.Health?.Status;
    return h === 'starting' ? `${up} (health: starting)` : h ? `${up} (${h})` : up;
  }
  if (s.Status === 'created') return 'Created';
  if (s.Dead) return 'Dead';
  if (s.FinishedAt.startsWith('0001')) return 'Created';
  return `Exited (${s.ExitCode}) ${humanDuration(now - Date.parse(s.FinishedAt))} ago`;
}

function quoteCommand(rec: ContainerRecord): string {
  const parts = [rec.Path, ...rec.Args];
  return parts.map((p) => (/[\s"']/.test(p) ? JSON.stringify(p) : p)).join(' ');
}

export function summaryView(rec: ContainerRecord, imageRef: string, sizes?: { rw: number; rootFs: number }): Record<string, unknown> {
  const v: Record<string, unknown> = {
    Id: rec.Id,
    Names: [rec.Name],
    Image: imageRef,
    ImageID: rec.Image,
    Command: quoteCommand(rec),
    Created: unixSeconds(rec.Created),
    Ports: portsSummary(rec),
    Labels: rec.Config.Labels ?? {},
    State: rec.State.Status,
    Status: statusText(rec),
    HostConfig: { NetworkMode: rec.HostConfig.NetworkMode ?? 'bridge' },
    NetworkSettings: { Networks: rec.NetworkSettings ? networkView(rec).Networks : networkSettings(rec.HostConfig.NetworkMode).Networks },
    Mounts: mountsView(rec),
  };
  if (sizes) { v.SizeRw = sizes.rw; v.SizeRootFs = sizes.rootFs; }
  return v;
}

const KNOWN_FILTERS = new Set(['id', 'name', 'label', 'status', 'exited', 'ancestor', 'before', 'since', 'health',
  'network', 'volume', 'publish', 'expose', 'is-task']);
const STATUSES = new Set(['created', 'restarting', 'running', 'removing', 'paused', 'exited', 'dead']);

export interface ListContext {
  /** id of a container by reference, for before/since */
  lookup(ref: string): ContainerRecord;
  /** does the container's image match this ancestor reference (name, id, or an image built on it) */
  matchesAncestor(rec: ContainerRecord, ref: string): boolean;
}

export function labelMatches(labels: Record<string, string>, filter: string): boolean {
  const i = filter.indexOf('=');
  if (i < 0) return filter in labels;
  return labels[filter.slice(0, i)] === filter.slice(i + 1);
}

/** Applies GET /containers/json filters; validates them as the Engine does. */
export function filterContainers(recs: ContainerRecord[], filters: Record<string, string[]>, all: boolean, ctx: ListContext): ContainerRecord[] {
  for (const key of Object.keys(filters)) {
    if (!KNOWN_FILTERS.has(key)) throw new InvalidParameterError(`invalid filter '${key}'`);
  }
  for (const s of filters.status ?? []) {
    if (!STATUSES.has(s)) throw new InvalidParameterError(`invalid filter 'status=${s}'`);
  }
  const before = filters.before?.length ? ctx.lookup(filters.before[0]) : undefined;
  const since = filters.since?.length ? ctx.lookup(filters.since[0]) : undefined;
  // "all" is implied by filters that can only match stopped containers.
  const showAll = all || !!filters.status?.length || !!filters.exited?.length;
  return recs.filter((r) => {
    if (!showAll && !r.State.Running && !r.State.Restarting) return false;
    const any = (key: string, pred: (v: string) => boolean) => !filters[key]?.length || filters[key].some(pred);
    const every = (key: string, pred: (v: string) => boolean) => !filters[key]?.length || filters[key].every(pred);
    return any('id', (v) => r.Id.startsWith(v))
      && any('name', (v) => new RegExp(v.replace(/^\//, '')).test(r.Name.slice(1)))
      && every('label', (v) => labelMatches(r.Config.Labels ?? {}, v))
      && any('status', (v) => r.State.Status === v)
      && any('exited', (v) => !r.State.Running && !r.State.FinishedAt.startsWith('0001') && String(r.State.ExitCode) === v)
      && any('ancestor', (v) => ctx.matchesAncestor(r, v))
      && (!before || Date.parse(r.Created) < Date.parse(before.Created))
      && (!since || Date.parse(r.Created) > Date.parse(since.Created))
      && any('network', (v) => r.HostConfig.NetworkMode === v)
      && any('is-task', (v) => v === 'false')
      && any('health', (v) => (r.State.Health?.Status ?? 'none') === v);
  });
}
