// Builds every service with its dependencies passed explicitly (no globals).
// Each service adds its field to Services and its construction to createServices.

import { EventService } from './events.js';
import { ImageService } from './images.js';
import { SystemService } from './system.js';
import { ContainerService } from './containers.js';
import { AttachService } from './attach.js';
import { ExecService } from './exec.js';
import { VolumeService } from './volumes.js';
import { NetworkService } from './networks.js';
import { ContainerFs } from './container-fs.js';
import { ContainerOps } from './container-ops.js';
import { RegistryService } from './registry/index.js';
import { Builder } from './build/builder.js';
import { VolumeStore } from '../store/volumes.js';
import { ContainerStore } from '../store/containers.js';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';

export interface DaemonConfig {
  dataRoot: string;   // default /var/lib/berth
  execRoot: string;   // default /run/berth
  hosts: string[];    // unix:///run/berth/berth.sock, tcp://...
  logLevel: string;
  /** OCI runtimes by name; "berth" is the bundled one. */
  runtimes: Record<string, { path: string; runtimeArgs?: string[] }>;
  defaultRuntime: string;
  /** daemon.json's path: its directory holds certs.d/<host:port>/ca.crt for registries. */
  configFile?: string;
  /** Raw daemon.json values, validated. */
  file: Record<string, unknown>;
}

export interface Services {
  config: DaemonConfig;
  events: EventService;
  system: SystemService;
  images: ImageService;
  containers: ContainerService;
  attach: AttachService;
  exec: ExecService;
  volumes: VolumeService;
  networks: NetworkService;
  containerFs: ContainerFs;
  containerOps: ContainerOps;
  registry: RegistryService;
  builder: Builder;
}

/** The bundled berth-monitor, built by scripts/setup (make -C native). */
const MONITOR_PATH = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..', 'native', 'build', 'berth-monitor');

/**
 * Builds and initialises the services in dependency order. To plug a service in: construct it
 * here, add it to the returned object, and register its counters/disk usage with
 * `system.provide(...)`. A service with `shutdown()` is called on daemon exit (reverse order).
 */
export async function createServices(config: DaemonConfig): Promise<Services> {
  const events = new EventService();
  const system = new SystemService(config);
  await system.init();
  system.provide({ eventListeners: () => events.listenerCount });

  const images = new ImageService(config.dataRoot, events);
  await images.init();
  system.provide({
    imageCount: () => images.list({}).length,
    diskUsage: { images: async () => ({ items: images.list({ all: true }), layersSize: images.list({ all: true }).reduce((n: number, i: any) => n + (i.Size ?? 0), 0) }) },
  });

  const volumes = new VolumeService(new VolumeStore(join(config.dataRoot, 'volumes')), events);
  await volumes.init();
  const networks = new NetworkService(config, events);
  await networks.init();
  const containers = new ContainerService({
    config, store: new ContainerStore(join(config.dataRoot, 'containers')), images, events, volumes, networks, monitorPath: MONITOR_PATH,
  });
  networks.setContainerSource(() => containers.all());
  volumes.setUsageChecker((name) => containers.all().filter((c) => c.MountPoints?.some((m) => m.Type === 'volume' && m.Name === name)).map((c) => c.Id));
  system.provide({ diskUsage: { volumes: () => volumes.usage() } });
  const attach = new AttachService(containers);
  const exec = new ExecService(containers);
  containers.setProber((id, cmd, timeoutMs) => exec.probe(id, cmd, timeoutMs));
  await containers.init();
  await networks.restoreRunning();
  containers.startPolicyContainers();
  images.setUsageChecker((imageId) => containers.usersOfImage(imageId).map((c) => ({ Id: c.Id, running: c.State.Running })));
  system.provide({
    containerCounts: () => {
      const all = containers.all();
      return {
        running: all.filter((c) => c.State.Running && !c.State.Paused).length,
        paused: all.filter((c) => c.State.Paused).length,
        stopped: all.filter((c) => !c.State.Running).length,
      };
    },
  });
  const containerFs = new ContainerFs({
    containerDir: (id) => containers.containerDir(id),
    layerDirs: (imageId) => images.layerDirs(imageId),
    isRunning: (id) => { try { return containers.get(id).State.Running; } catch { return false; } },
  });
  const containerOps = new ContainerOps(containers, images, containerFs);

  const builder = new Builder(images, containers, containerFs, config.dataRoot);
  system.provide({ diskUsage: { buildCache: () => builder.usage() } });

  return { config, events, system, images, volumes, networks, containers, attach, exec, containerFs, containerOps, registry: new RegistryService(config, images), builder };
}

/** Calls every service's shutdown hook, last constructed first; errors are reported, not thrown. */
/** Calls each service's `warm()`: work done ahead, once the daemon listens, so first requests are fast. */
export function warmServices(services: Services): void {
  for (const [name, svc] of Object.entries(services)) {
    const hook = (svc as { warm?: () => void } | null)?.warm;
    if (typeof hook === 'function' && name !== 'config') hook.call(svc);
  }
}

export async function shutdownServices(services: Services, onError: (name: string, err: unknown) => void = () => {}): Promise<void> {
  for (const [name, svc] of Object.entries(services).reverse()) {
    const hook = (svc as { shutdown?: () => Promise<void> | void } | null)?.shutdown;
    if (typeof hook !== 'function' || name === 'config') continue;
    try { await hook.call(svc); } catch (err) { onError(name, err); }
  }
}
