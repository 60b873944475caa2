// SystemService: /version, /info and /system/df. Counts and disk usage come from providers that
// other services register (containers, images, volumes, build cache), so this module does not
// depend on them: `system.provide({ containerCounts: () => ..., imageCount: () => ... })`.
import { randomUUID } from 'node:crypto';
import { access, readdir, readFile } from 'node:fs/promises';
import { arch, availableParallelism, hostname, release, totalmem } from 'node:os';
import { join } from 'node:path';
import { ensureDir, writeFileAtomic } from '../store/atomic.js';
import { ENGINE_VERSION, MAX_API_VERSION, MIN_API_VERSION, versionAtLeast } from '../server/version.js';
import type { DaemonConfig } from './index.js';

export interface ContainerCounts { running: number; paused: number; stopped: number }

/** Disk usage rows in the Engine's list shapes (ImageSummary, ContainerSummary, Volume, CacheRecord). */
export interface DiskUsageProviders {
  /** Image summaries (with Size, SharedSize, Containers) and the total size of all layers. */
  images?: () => Promise<{ items: Array<Record<string, any>>; layersSize: number }>;
  /** Container summaries with SizeRw / SizeRootFs and State. */
  containers?: () => Promise<Array<Record<string, any>>>;
  /** Volumes with UsageData { Size, RefCount }. */
  volumes?: () => Promise<Array<Record<string, any>>>;
  /** Build cache records with Size, InUse, Shared. */
  buildCache?: () => Promise<Array<Record<string, any>>>;
}

export interface SystemProviders {
  containerCounts?: () => ContainerCounts;
  imageCount?: () => number;
  eventListeners?: () => number;
  /** Version of the bundled OCI runtime, for /version's component list. */
  runtimeVersion?: () => string;
  diskUsage?: DiskUsageProviders;
}

export const goArch = (a = arch()): string => ({ x64: 'amd64', ia32: '386', arm64: 'arm64', arm: 'arm', ppc64: 'ppc64le', s390x: 's390x', riscv64: 'riscv64' } as Record<string, string>)[a] ?? a;
const unameMachine = (a = arch()): string => ({ x64: 'x86_64', ia32: 'i686', arm64: 'aarch64', arm: 'armv7l' } as Record<string, string>)[a] ?? a;

const exists = (p: string): Promise<boolean> => access(p).then(() => true, () => false);

async function osRelease(): Promise<Record<string, string>> {
  const text = await readFile('/etc/os-release', 'utf8').catch(() => readFile('/usr/lib/os-release', 'utf8').catch(() => ''));
  const out: Record<string, string> = {};
  for (const line of text.split('\n')) {
    const m = /^([A-Z_]+)=(.*)$/.exec(line.trim());
    if (m) out[m[1]] = m[2].replace(/^"(.*)"$/, '$1');
  }
  return out;
}

export async function detectCgroupVersion(root = '/sys/fs/cgroup'): Promise<'1' | '2'> {
  return (await exists(join(root, 'cgroup.controllers'))) ? '2' : '1';
}

/** Facts about the host that do not change while the daemon runs. */
interface HostFacts {
  os: Record<string, string>;
  cgroupVersion: '1' | '2';
  swapLimit: boolean;
}

export class SystemService {
  private providers: SystemProviders = {};
  private engineId = '';
  private facts?: HostFacts;
  private readonly startedAt = new Date().toISOString();

  constructor(private readonly config: DaemonConfig) {}

  /** Plugs counters and disk-usage sources in; later calls add to or replace earlier ones. */
  provide(p: SystemProviders): void {
    this.providers = { ...this.providers, ...p, diskUsage: { ...this.providers.diskUsage, ...p.diskUsage } };
  }

  /** Loads (or creates) the engine ID kept in data-root, so it survives restarts. */
  async init(): Promise<void> {
    await ensureDir(this.config.dataRoot);
    const file = join(this.config.dataRoot, 'engine-id');
    const saved = (await readFile(file, 'utf8').catch(() => '')).trim();
    if (/^[0-9a-f-]{36}$/.test(saved)) this.engineId = saved;
    else {
      this.engineId = randomUUID();
      await writeFileAtomic(file, this.engineId + '\n', 0o600);
    }
  }

  get id(): string { return this.engineId; }

  private async hostFacts(): Promise<HostFacts> {
    if (!this.facts) {
      const cgroupVersion = await detectCgroupVersion();
      this.facts = {
        os: await osRelease(),
        cgroupVersion,
        swapLimit: cgroupVersion === '2' || await exists('/sys/fs/cgroup/memory/memory.memsw.limit_in_bytes'),
      };
    }
    return this.facts;
  }

  version(): Record<string, unknown> {
    const details = {
      ApiVersion: MAX_API_VERSION, Arch: goArch(), BuildTime: this.startedAt, Experimental: 'false',
      GitCommit: 'berth', GoVersion: `node${process.versions.node}`, KernelVersion: release(),
      MinAPIVersion: MIN_API_VERSION, Os: 'linux',
    };
    const components: Array<Record<string, unknown>> = [{ Name: 'Engine', Version: ENGINE_VERSION, Details: details }];
    const rt = this.providers.runtimeVersion?.();
    if (rt) components.push({ Name: 'berth-runtime', Version: rt, Details: { GitCommit: '' } });
    return {
      Platform: { Name: 'Berth' },
      Components: components,
      Version: ENGINE_VERSION,
      ApiVersion: MAX_API_VERSION,
      MinAPIVersion: MIN_API_VERSION,
      GitCommit: 'berth',
      GoVersion: details.GoVersion,
      Os: 'linux',
      Arch: goArch(),
      KernelVersion: release(),
      BuildTime: this.startedAt,
    };
  }

  async info(): Promise<Record<string, unknown>> {
    const f = await this.hostFacts();
    const c = this.providers.containerCounts?.() ?? { running: 0, paused: 0, stopped: 0 };
    const file = this.config.file;
    const insecure = (file['insecure-registries'] as string[] | undefined) ?? [];
    const indexConfigs: Record<string, unknown> = { 'docker.io': { Name: 'docker.io', Mirrors: (file['registry-mirrors'] as string[] | undefined) ?? [], Secure: true, Official: true } };
    for (const r of insecure) if (!r.includes('/')) indexConfigs[r] = { Name: r, Mirrors: [], Secure: false, Official: false };
    const nfd = await readdir('/proc/self/fd').then((l) => l.length, () => 0);
    const ipForward = (await readFile('/proc/sys/net/ipv4/ip_forward', 'utf8').catch(() => '0')).trim() === '1';
    const runtimes: Record<string, unknown> = {};
    for (const [name, r] of Object.entries(this.config.runtimes)) runtimes[name] = { path: r.path, ...(r.runtimeArgs?.length ? { runtimeArgs: r.runtimeArgs } : {}) };
    const warnings: string[] = [];
    if (!ipForward) warnings.push('WARNING: IPv4 forwarding is disabled');
    if (!f.swapLimit) warnings.push('WARNING: No swap limit support');
    return {
      ID: this.engineId,
      Containers: c.running + c.paused + c.stopped,
      ContainersRunning: c.running,
      ContainersPaused: c.paused,
      ContainersStopped: c.stopped,
      Images: this.providers.imageCount?.() ?? 0,
      Driver: 'overlay2',
      DriverStatus: [['Backing Filesystem', 'extfs'], ['Supports d_type', 'true'], ['Using metacopy', 'false'], ['Native Overlay Diff', 'true'], ['userxattr', 'false']],
      DockerRootDir: this.config.dataRoot,
      Plugins: { Volume: ['local'], Network: ['bridge', 'host', 'null'], Authorization: null, Log: ['json-file'] },
      MemoryLimit: true,
      SwapLimit: f.swapLimit,
      CpuCfsPeriod: true,
      CpuCfsQuota: true,
      CPUShares: true,
      CPUSet: true,
      PidsLimit: true,
      OomKillDisable: f.cgroupVersion === '1',
      IPv4Forwarding: ipForward,
      Debug: this.config.logLevel === 'debug',
      NFd: nfd,
      NGoroutines: 0,
      SystemTime: new Date().toISOString(),
      LoggingDriver: 'json-file',
      CgroupDriver: 'cgroupfs',
      CgroupVersion: f.cgroupVersion,
      NEventsListener: this.providers.eventListeners?.() ?? 0,
      KernelVersion: release(),
      OperatingSystem: f.os.PRETTY_NAME ?? 'Linux',
      OSVersion: f.os.VERSION_ID ?? '',
      OSType: 'linux',
      Architecture: unameMachine(),
      NCPU: availableParallelism(),
      MemTotal: totalmem(),
      IndexServerAddress: 'https://index.docker.io/v1/',
      RegistryConfig: {
        InsecureRegistryCIDRs: ['::1/128', '127.0.0.0/8', ...insecure.filter((r) => r.includes('/'))],
        IndexConfigs: indexConfigs,
        Mirrors: (file['registry-mirrors'] as string[] | undefined) ?? [],
      },
      GenericResources: null,
      HttpProxy: process.env.HTTP_PROXY ?? process.env.http_proxy ?? '',
      HttpsProxy: process.env.HTTPS_PROXY ?? process.env.https_proxy ?? '',
      NoProxy: process.env.NO_PROXY ?? process.env.no_proxy ?? '',
      Name: hostname(),
      Labels: (file.labels as string[] | undefined) ?? [],
      ExperimentalBuild: false,
      ServerVersion: ENGINE_VERSION,
      Runtimes: runtimes,
      DefaultRuntime: this.config.defaultRuntime,
      Swarm: { NodeID: '', NodeAddr: '', LocalNodeState: 'inactive', ControlAvailable: false, Error: '', RemoteManagers: null },
      // Containers are held by their own monitor processes and outlive a daemon restart.
      LiveRestoreEnabled: true,
      Isolation: '',
      InitBinary: 'docker-init',
      ContainerdCommit: { ID: '' },
      RuncCommit: { ID: '' },
      InitCommit: { ID: '' },
      SecurityOptions: ['name=seccomp,profile=builtin', ...(f.cgroupVersion === '2' ? ['name=cgroupns'] : [])],
      DefaultAddressPools: [{ Base: '172.17.0.0/16', Size: 16 }, { Base: '172.18.0.0/16', Size: 16 }],
      FirewallBackend: { Driver: 'iptables' },
      CDISpecDirs: [],
      Containerd: null,
      Warnings: warnings,
    };
  }

  /** GET /system/df in the shape of the caller's API version (1.52 changed it). */
  async dataUsage(opts: { types?: string[]; verbose?: boolean; apiVersion: string }): Promise<Record<string, unknown>> {
    const want = (t: string): boolean => !opts.types?.length || opts.types.includes(t);
    const du = this.providers.diskUsage ?? {};
    const img = want('image') && du.images ? await du.images() : { items: [], layersSize: 0 };
    const containers = want('container') && du.containers ? await du.containers() : [];
    const volumes = want('volume') && du.volumes ? await du.volumes() : [];
    const cache = want('build-cache') && du.buildCache ? await du.buildCache() : [];
    if (!versionAtLeast(opts.apiVersion, '1.52')) {
      const out: Record<string, unknown> = {};
      if (want('image')) { out.LayersSize = img.layersSize; out.Images = img.items; }
      if (want('container')) out.Containers = containers;
      if (want('volume')) out.Volumes = volumes;
      if (want('build-cache')) out.BuildCache = cache;
      return out;
    }
    const summary = (items: Array<Record<string, any>>, active: (x: any) => boolean, size: (x: any) => number, total?: number) => {
      const tot = total ?? items.reduce((s, x) => s + size(x), 0);
      const reclaimable = items.filter((x) => !active(x)).reduce((s, x) => s + size(x), 0);
      return { ActiveCount: items.filter(active).length, TotalCount: items.length, Reclaimable: reclaimable, TotalSize: tot, ...(opts.verbose ? { Items: items } : {}) };
    };
    const out: Record<string, unknown> = {};
    if (want('image')) out.ImageUsage = summary(img.items, (i) => (i.Containers ?? 0) > 0, (i) => i.Size ?? 0, img.layersSize);
    if (want('container')) out.ContainerUsage = summary(containers, (c) => c.State === 'running' || c.State === 'paused', (c) => c.SizeRw ?? 0);
    if (want('volume')) out.VolumeUsage = summary(volumes, (v) => (v.UsageData?.RefCount ?? 0) > 0, (v) => Math.max(0, v.UsageData?.Size ?? 0));
    if (want('build-cache')) out.BuildCacheUsage = summary(cache, (b) => !!b.InUse, (b) => b.Size ?? 0);
    return out;
  }
}
