// buildSpec: a container's Docker Config + HostConfig -> OCI runtime config.json, following the
// Engine's createSpec (daemon/oci_linux.go) for the single-host features Berth supports so far.
import { existsSync } from 'node:fs';
import { hostname as osHostname } from 'node:os';
import { posix } from 'node:path';
import { InvalidParameterError } from '../errors.js';
import { tweakCapabilities } from './capabilities.js';
import {
  DEFAULT_CAPABILITIES, DEFAULT_CGROUP_PARENT, DEFAULT_PATH_ENV, DEFAULT_SHM_SIZE, IPC_SYSCTLS, IPC_SYSCTL_PREFIXES,
  NET_SYSCTL_PREFIXES, OCI_VERSION, UTS_SYSCTLS, defaultDeviceRules, defaultMaskedPaths, defaultMounts,
  defaultNetworkSysctls, defaultReadonlyPaths,
} from './defaults.js';
import { devicesFromMapping, hostDevices, parseDeviceCgroupRule } from './devices.js';
import type { ContainerConfig, HostConfig } from './docker-types.js';
import { DEFAULT_PROPAGATION, sortByDepth, userMounts, type UserMount } from './mounts.js';
import type { OciDevice, OciDeviceRule, OciMount, OciNamespace, OciResources, OciRlimit, OciSpec } from './runtime-spec.js';
import { seccompFromDockerProfile } from './seccomp.js';

export interface SpecInput {
  id: string;
  rootfs: string;
  /** Config already merged with the image config (mergeImageConfig). */
  config: ContainerConfig;
  hostConfig: HostConfig;
  /** From resolveUser: additionalGids already holds [gid, supplementary groups, GroupAdd]. */
  user: { uid: number; gid: number; additionalGids: number[]; home?: string };
  files: { hostsPath?: string; resolvConfPath?: string; hostnamePath?: string };
  cgroupParent?: string;
  netnsPath?: string;
  /** The profile given with --security-opt seccomp=<profile> (the CLI sends the JSON content). */
  seccompProfileJson?: string;
  /** Host facts, overridable for tests. */
  host?: HostFacts;
}

export interface HostFacts {
  /** Node arch name (process.arch) for seccomp. */
  arch?: string;
  /** Kernel release for seccomp minKernel. */
  kernel?: string;
  /** The namespace mode when CgroupnsMode is "": "private" on cgroup v2 hosts, "host" on v1. */
  defaultCgroupnsMode?: 'private' | 'host';
  /** The host's hostname, for NetworkMode host. */
  hostname?: string;
  /** Lists the host's devices for --privileged (default: walk /dev). */
  hostDevices?: () => OciDevice[];
}

interface SecurityOptions { noNewPrivileges: boolean; seccomp?: string; writableCgroups?: boolean }

/** HostConfig.SecurityOpt as the Engine parses it (label/apparmor accepted and ignored). */
export function parseSecurityOpt(opts: readonly string[] | null | undefined): SecurityOptions {
  const out: SecurityOptions = { noNewPrivileges: false };
  for (const opt of opts ?? []) {
    if (opt === 'no-new-privileges') { out.noNewPrivileges = true; continue; }
    if (opt === 'writable-cgroups') { out.writableCgroups = true; continue; }
    if (opt === 'disable') continue;
    const sep = opt.includes('=') ? '=' : opt.includes(':') ? ':' : '';
    if (!sep) throw new InvalidParameterError(`invalid --security-opt 1: "${opt}"`);
    const i = opt.indexOf(sep);
    const k = opt.slice(0, i), v = opt.slice(i + 1);
    switch (k) {
      case 'label': case 'apparmor': break;
      case 'seccomp': out.seccomp = v; break;
      case 'no-new-privileges': out.noNewPrivileges = parseBool(v, opt); break;
      case 'writable-cgroups': out.writableCgroups = parseBool(v, opt); break;
      default: throw new InvalidParameterError(`invalid --security-opt 2: "${opt}"`);
    }
  }
  return out;
}

function parseBool(v: string, opt: string): boolean {
  if (['1', 't', 'T', 'true', 'TRUE', 'True'].includes(v)) return true;
  if (['0', 'f', 'F', 'false', 'FALSE', 'False'].includes(v)) return false;
  throw new InvalidParameterError(`invalid --security-opt 2: "${opt}"`);
}

/** The container's process environment: PATH, HOSTNAME, TERM (tty), then Config.Env over them. */
export function containerEnv(config: ContainerConfig, home?: string): string[] {
  const base = [`PATH=${DEFAULT_PATH_ENV}`, `HOSTNAME=${config.Hostname ?? ''}`];
  if (config.Tty) base.push('TERM=xterm');
  const env = replaceOrAppendEnv(base, config.Env ?? []);
  // runc fills HOME from the image's passwd when absent; do the same so any runtime agrees.
  if (!env.some((e) => e.startsWith('HOME='))) env.push(`HOME=${home || '/'}`);
  return env;
}

/** Overrides replace same-key defaults or are appended; a bare "KEY" (no "=") removes KEY. */
export function replaceOrAppendEnv(defaults: string[], overrides: string[]): string[] {
  const env = [...defaults];
  const key = (e: string): string => (e.includes('=') ? e.slice(0, e.indexOf('=')) : e);
  for (const o of overrides) {
    const i = env.findIndex((e) => key(e) === key(o));
    if (!o.includes('=')) { if (i >= 0) env.splice(i, 1); continue; }
    if (i >= 0) env[i] = o; else env.push(o);
  }
  return env;
}

type NsMode = 'private' | 'host' | 'none';

/** Validate a namespace mode; "container:<id>" sharing is not implemented yet. */
function nsMode(kind: string, value: string | undefined, extra: string[] = []): NsMode | string {
  const v = value ?? '';
  if (v === '' || v === 'private' || extra.includes(v)) return v === '' ? 'private' : v;
  if (v === 'host') return 'host';
  if (v.startsWith('container:')) {
    throw new InvalidParameterError(`${kind} mode "${v}" (sharing another container's namespace) is not supported yet`);
  }
  throw new InvalidParameterError(`invalid ${kind} mode: ${v}`);
}

function namespaces(input: SpecInput): { list: OciNamespace[]; privateNet: boolean; hostUts: boolean; hostIpc: boolean; ipcMode: string } {
  const h = input.hostConfig;
  const list: OciNamespace[] = [{ type: 'mount' }];
  const net = h.NetworkMode ?? '';
  let privateNet = false;
  if (input.config.NetworkDisabled) {
    list.push({ type: 'network' });
    privateNet = true;
  } else if (net === 'host') {
    // no network namespace: the host's
  } else if (input.netnsPath) {
    // container:<id>: the other container's namespace, found by the caller
    list.push({ type: 'network', path: input.netnsPath });
    privateNet = true;
  } else if (net.startsWith('container:')) {
    throw new InvalidParameterError(`network mode "${net}": the container's network namespace is unknown`);
  } else {
    // bridge, none, or a user-defined network (validated by the network service): a new namespace
    list.push({ type: 'network' });
    privateNet = true;
  }
  const uts = nsMode('UTS', h.UTSMode);
  if (uts !== 'host') list.push({ type: 'uts' });
  const pid = nsMode('PID', h.PidMode);
  if (pid !== 'host') list.push({ type: 'pid' });
  const ipc = nsMode('IPC', h.IpcMode, ['shareable', 'none']);
  if (ipc !== 'host') list.push({ type: 'ipc' });
  const cg = nsMode('cgroup namespace', h.CgroupnsMode);
  const cgMode = (h.CgroupnsMode ?? '') === '' ? (input.host?.defaultCgroupnsMode ?? hostCgroupnsDefault()) : cg;
  if (cgMode === 'private') list.push({ type: 'cgroup' });
  return { list, privateNet, hostUts: uts === 'host', hostIpc: ipc === 'host', ipcMode: ipc };
}

/** The Engine's default: a private cgroup namespace on cgroup v2 hosts, the host's on v1. */
function hostCgroupnsDefault(): 'private' | 'host' {
  return existsSync('/sys/fs/cgroup/cgroup.controllers') ? 'private' : 'host';
}

/** Only namespaced sysctls, and only when the container has its own namespace for them. */
function checkSysctls(sysctls: Record<string, string>, ns: { privateNet: boolean; hostIpc: boolean; hostUts: boolean }): void {
  for (const k of Object.keys(sysctls)) {
    if (IPC_SYSCTLS.includes(k) || IPC_SYSCTL_PREFIXES.some((p) => k.startsWith(p))) {
      if (ns.hostIpc) throw new InvalidParameterError(`sysctl "${k}" is not allowed in host IPC namespace`);
    } else if (NET_SYSCTL_PREFIXES.some((p) => k.startsWith(p))) {
      if (!ns.privateNet) throw new InvalidParameterError(`sysctl "${k}" is not allowed in host network namespace`);
    } else if (UTS_SYSCTLS.includes(k)) {
      if (ns.hostUts) throw new InvalidParameterError(`sysctl "${k}" is not allowed in host UTS namespace`);
    } else {
      throw new InvalidParameterError(`sysctl "${k}" is not allowed: only namespaced sysctls (kernel.msg*, kernel.sem, kernel.shm*, fs.mqueue.*, net.*) can be set`);
    }
  }
}

function rlimits(h: HostConfig): OciRlimit[] {
  return (h.Ulimits ?? []).map((u) => {
    if (!u.Name || !/^[a-z]+$/.test(u.Name)) throw new InvalidParameterError(`invalid ulimit type: ${u.Name}`);
    const soft = u.Soft ?? 0, hard = u.Hard ?? 0;
    if (soft > hard && hard !== -1) throw new InvalidParameterError(`ulimit soft limit must be less than or equal to hard limit: ${soft} > ${hard}`);
    const conv = (n: number): number => (n < 0 ? 2 ** 64 - 1 : n);
    return { type: `RLIMIT_${u.Name.toUpperCase()}`, soft: conv(soft), hard: conv(hard) };
  });
}

function resources(h: HostConfig): OciResources {
  const r: OciResources = {};
  const mem: NonNullable<OciResources['memory']> = {};
  if ((h.Memory ?? 0) > 0) mem.limit = h.Memory;
  if ((h.MemoryReservation ?? 0) > 0) mem.reservation = h.MemoryReservation;
  if ((h.MemorySwap ?? 0) > 0) mem.swap = h.MemorySwap;
  // The Engine stores MemorySwap = 2 x Memory at create when only Memory is given.
  else if ((h.Memory ?? 0) > 0 && !h.MemorySwap) mem.swap = 2 * h.Memory!;
  if (h.MemorySwappiness != null && h.MemorySwappiness >= 0) mem.swappiness = h.MemorySwappiness;
  if (h.OomKillDisable != null) mem.disableOOMKiller = h.OomKillDisable;
  if (Object.keys(mem).length) r.memory = mem;

  const cpu: NonNullable<OciResources['cpu']> = {};
  if (h.CpuShares) {
    if (h.CpuShares < 0) throw new InvalidParameterError(`invalid CPU shares (${h.CpuShares}): value must be a positive integer`);
    cpu.shares = h.CpuShares;
  }
  if (h.CpusetCpus) cpu.cpus = h.CpusetCpus;
  if (h.CpusetMems) cpu.mems = h.CpusetMems;
  if ((h.NanoCpus ?? 0) > 0) {
    cpu.period = 100000;
    cpu.quota = Math.floor((h.NanoCpus! * 100000) / 1e9);
  }
  if (h.CpuPeriod) cpu.period = h.CpuPeriod;
  if (h.CpuQuota) cpu.quota = h.CpuQuota;
  if (h.CpuRealtimePeriod) cpu.realtimePeriod = h.CpuRealtimePeriod;
  if (h.CpuRealtimeRuntime) cpu.realtimeRuntime = h.CpuRealtimeRuntime;
  if (Object.keys(cpu).length) r.cpu = cpu;

  if (h.PidsLimit != null) r.pids = { limit: h.PidsLimit <= 0 ? -1 : h.PidsLimit };
  if (h.BlkioWeight) r.blockIO = { weight: h.BlkioWeight };
  return r;
}

/** The container's mounts: defaults (minus those the user overrides), then user mounts by depth. */
function mounts(input: SpecInput, user: UserMount[], ipcMode: string, hostIpc: boolean): { list: OciMount[]; rootPropagation: string } {
  const h = input.hostConfig;
  const readonlyRoot = !!h.ReadonlyRootfs;
  const extra: UserMount[] = [...user];
  const taken = new Set(user.map((m) => m.destination));
  // /etc/resolv.conf, /etc/hostname, /etc/hosts, unless the user mounts their own.
  const files: [string | undefined, string][] = [
    [input.files.resolvConfPath, '/etc/resolv.conf'], [input.files.hostnamePath, '/etc/hostname'], [input.files.hostsPath, '/etc/hosts'],
  ];
  for (const [src, dst] of files) {
    if (!src || taken.has(dst)) continue;
    extra.push({ destination: dst, type: 'bind', source: src, options: ['rbind', ...(readonlyRoot ? ['ro'] : []), DEFAULT_PROPAGATION], propagation: DEFAULT_PROPAGATION });
    taken.add(dst);
  }
  if (hostIpc && !taken.has('/dev/shm')) {
    extra.push({ destination: '/dev/shm', type: 'bind', source: '/dev/shm', options: ['rbind', DEFAULT_PROPAGATION], propagation: DEFAULT_PROPAGATION });
    taken.add('/dev/shm');
  }

  const userDev = taken.has('/dev');
  const shmSize = h.ShmSize && h.ShmSize > 0 ? h.ShmSize : DEFAULT_SHM_SIZE;
  const list: OciMount[] = [];
  for (const m of defaultMounts()) {
    if (taken.has(m.destination)) continue;
    if (userDev && m.destination.startsWith('/dev/')) continue;
    if (m.destination === '/dev/shm') {
      if (ipcMode === 'none') continue;
      m.options!.push(`size=${shmSize}`);
    }
    list.push(m);
  }

  let rootPropagation = DEFAULT_PROPAGATION;
  for (const m of sortByDepth(extra)) {
    const p = m.propagation;
    if (p === 'shared' || p === 'rshared') rootPropagation = 'shared';
    else if ((p === 'slave' || p === 'rslave') && rootPropagation !== 'shared') rootPropagation = 'rslave';
    const { propagation: _ignored, ...mount } = m;
    list.push(mount);
  }

  if (readonlyRoot) {
    for (const m of list) {
      if (['/proc', '/dev/pts', '/dev/shm', '/dev/mqueue', '/dev'].includes(m.destination) || taken.has(m.destination)) continue;
      if (!m.options?.includes('ro')) m.options = [...(m.options ?? []), 'ro'];
    }
  }
  const security = parseSecurityOpt(h.SecurityOpt);
  const writableCgroups = security.writableCgroups ?? !!h.Privileged;
  for (const m of list) {
    if ((h.Privileged && m.destination === '/sys') || (writableCgroups && m.type === 'cgroup')) {
      m.options = (m.options ?? []).filter((o) => o !== 'ro');
    }
  }
  return { list, rootPropagation };
}

function thermalThrottleDirs(): string[] {
  const out: string[] = [];
  for (let cpu = 0; cpu < 1024; cpu++) {
    const base = `/sys/devices/system/cpu/cpu${cpu}`;
    if (!existsSync(base)) break;
    if (existsSync(`${base}/thermal_throttle`)) out.push(`${base}/thermal_throttle`);
  }
  return out;
}

/** The cleaned absolute working directory ("/" when unset); relative ones are refused like the Engine does. */
function workingDir(dir: string | undefined): string {
  if (!dir) return '/';
  if (!dir.startsWith('/')) throw new InvalidParameterError(`the working directory '${dir}' is invalid, it needs to be an absolute path`);
  return posix.normalize(dir).replace(/(.)\/+$/, '$1');
}

/** Build the OCI runtime spec (config.json) for one container. Throws InvalidParameterError on bad input. */
export function buildSpec(input: SpecInput): OciSpec {
  const c = input.config, h = input.hostConfig;
  if (!/^[0-9a-f]{64}$/.test(input.id)) throw new InvalidParameterError(`invalid container id: ${input.id}`);
  const privileged = !!h.Privileged;
  const security = parseSecurityOpt(h.SecurityOpt);
  const ns = namespaces(input);

  const args = [...(c.Entrypoint ?? []), ...(c.Cmd ?? [])];
  if (args.length === 0) throw new InvalidParameterError('no command specified');

  let hostname = c.Hostname ?? '';
  if (!hostname && (h.NetworkMode ?? '') === 'host') hostname = input.host?.hostname ?? osHostname();
  const envConfig = { ...c, Hostname: hostname };
  if (ns.hostUts) hostname = '';

  const caps = tweakCapabilities(DEFAULT_CAPABILITIES, h.CapAdd ?? [], h.CapDrop ?? [], privileged);

  const sysctl: Record<string, string> = {};
  if (ns.privateNet) Object.assign(sysctl, defaultNetworkSysctls());
  if (c.Domainname && !ns.hostUts) sysctl['kernel.domainname'] = c.Domainname;
  if (h.Sysctls) {
    checkSysctls(h.Sysctls, ns);
    Object.assign(sysctl, h.Sysctls);
  }

  // Devices and their cgroup rules.
  let devices: OciDevice[] = [];
  let deviceRules: OciDeviceRule[] = defaultDeviceRules();
  if (privileged) {
    devices = (input.host?.hostDevices ?? hostDevices)();
    for (const d of h.Devices ?? []) {
      if (d.PathOnHost && d.PathOnHost !== (d.PathInContainer || d.PathOnHost)) devices.push(...devicesFromMapping({ ...d, CgroupPermissions: 'rwm' }).devices);
    }
    deviceRules = [{ allow: true, access: 'rwm' }];
  } else {
    for (const d of h.Devices ?? []) {
      const got = devicesFromMapping(d);
      devices.push(...got.devices);
      deviceRules.push(...got.rules);
    }
    for (const rule of h.DeviceCgroupRules ?? []) deviceRules.push(parseDeviceCgroupRule(rule));
  }

  const res = resources(h);
  res.devices = deviceRules;

  const user = userMounts(h);
  const { list: mountList, rootPropagation } = mounts(input, user, ns.ipcMode, ns.hostIpc);

  // Seccomp: none when unconfined, or when privileged without an explicit profile.
  const requested = security.seccomp;
  const custom = input.seccompProfileJson ?? (requested && requested !== 'unconfined' && requested !== 'builtin' ? requested : undefined);
  let seccomp;
  if (requested !== 'unconfined' && !(privileged && !custom)) {
    seccomp = seccompFromDockerProfile(custom ?? 'default', { capabilities: caps, arch: input.host?.arch, kernel: input.host?.kernel });
  }

  const rl = rlimits(h);
  const spec: OciSpec = {
    ociVersion: OCI_VERSION,
    process: {
      terminal: !!c.Tty,
      user: { uid: input.user.uid, gid: input.user.gid, additionalGids: [...new Set(input.user.additionalGids)] },
      args,
      env: containerEnv(envConfig, input.user.home),
      cwd: workingDir(c.WorkingDir),
      capabilities: { bounding: [...caps], effective: [...caps], permitted: [...caps], inheritable: [], ambient: [] },
      noNewPrivileges: security.noNewPrivileges,
      oomScoreAdj: h.OomScoreAdj ?? 0,
    },
    root: { path: input.rootfs, readonly: !!h.ReadonlyRootfs },
    mounts: mountList,
    linux: {
      namespaces: ns.list,
      devices,
      cgroupsPath: posix.join(input.cgroupParent || DEFAULT_CGROUP_PARENT, input.id),
      resources: res,
      rootfsPropagation: rootPropagation,
      maskedPaths: privileged ? [] : (h.MaskedPaths ?? defaultMaskedPaths(thermalThrottleDirs())),
      readonlyPaths: privileged ? [] : (h.ReadonlyPaths ?? defaultReadonlyPaths()),
    },
  };
  if (rl.length) spec.process.rlimits = rl;
  if (c.Tty && h.ConsoleSize && h.ConsoleSize[0] && h.ConsoleSize[1]) {
    spec.process.consoleSize = { height: h.ConsoleSize[0], width: h.ConsoleSize[1] };
  }
  if (hostname) spec.hostname = hostname;
  if (Object.keys(sysctl).length) spec.linux.sysctl = sysctl;
  if (seccomp) spec.linux.seccomp = seccomp;
  if (h.Annotations && Object.keys(h.Annotations).length) spec.annotations = { ...h.Annotations };
  return spec;
}
