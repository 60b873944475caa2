// ContainerService: the container lifecycle (create, start, stop, kill, wait, remove) on top of the
// container store, the image service, the OCI spec builder and one berth-monitor per container.
import { randomBytes } from 'node:crypto';
import { mkdir, readFile, readdir, rm, stat, writeFile } from 'node:fs/promises';
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { hostname } from 'node:os';
import { EventEmitter } from 'node:events';
import { ConflictError, InvalidParameterError, NotFoundError, NotModifiedError, SystemError } from '../errors.js';
import { ContainerStore, ZERO_TIME, type ContainerRecord, type MountPoint } from '../store/containers.js';
import { buildSpec, mergeImageConfig, resolveUser } from '../oci/spec-api.js';
import * as monitor from '../oci/monitor-client.js';
import type { ExitStatus } from '../oci/monitor-client.js';
import { mkdirInRoot, mountRootfs, unmountRootfs } from './rootfs.js';
import { writeEtcFiles } from './etc-files.js';
import { generateName, normaliseName } from './names.js';
import { parseSignal } from './signals.js';
import { nowRfc3339Nano } from './time.js';
import type { DaemonConfig } from './index.js';
import { Backoff, shouldRestart, startsWithDaemon, validateRestartPolicy } from './restart-policy.js';
import { HealthMonitor, probeCommand, type ProbeResult } from './health.js';
import { mountSpecsFor, type VolumeService } from './volumes.js';
import type { NetworkService } from './networks.js';

/** What ContainerService needs from the image service. */
export interface ImageProvider {
  resolve(ref: string): Promise<{ Id: string; Config?: Record<string, any>; Architecture?: string; Os?: string }>;
  layerDirs(imageId: string): string[];
}

/** What ContainerService needs from the event service. */
export interface EventPublisher {
  publish(ev: { Type: string; Action: string; Actor: { ID: string; Attributes: Record<string, string> } }): void;
}

export interface ContainerServiceDeps {
  config: DaemonConfig;
  store: ContainerStore;
  images: ImageProvider;
  events: EventPublisher;
  volumes: VolumeService;
  networks: NetworkService;
  monitorPath: string;
}

export interface WaitResult { StatusCode: number; Error?: { Message: string } }


/** Per-container runtime bookkeeping that is not persisted. */
interface Live {
  exited: EventEmitter;          // 'exit' (ExitStatus), 'removed' (exit code)
  started: EventEmitter;         // 'started' once the monitor is up, before the process runs
  exitWatch?: monitor.MonitorConnection;
  stopping?: boolean;            // docker stop in progress: suppresses restart policies later
  lastMonitor?: number;          // monitor of the last run: it still runs the runtime's delete after the exit
  backoff: Backoff;              // restart policy delays
  restartTimer?: NodeJS.Timeout; // pending policy restart
}

export class ContainerService {
  private readonly live = new Map<string, Live>();
  private readonly names = new Map<string, string>(); // "/name" -> id
  /** Serialises lifecycle changes per container (start vs stop vs remove). */
  private readonly locks = new Map<string, Promise<unknown>>();
  private readonly health = new HealthMonitor();
  private prober?: (id: string, cmd: string[], timeoutMs: number) => Promise<ProbeResult>;
  private shuttingDown = false;
  /** State-dir removals still waiting for their monitor: shutdown lets them finish. */
  private readonly pendingCleanups = new Set<Promise<void>>();

  constructor(private readonly deps: ContainerServiceDeps) {}

  get store(): ContainerStore { return this.deps.store; }
  get monitorPath(): string { return this.deps.monitorPath; }

  // ---- start-up ----------------------------------------------------------------------------

  /** Loads records and reconciles containers that were running when the daemon went away. */
  async init(): Promise<void> {
    const recs = await this.deps.store.load();
    for (const rec of recs) this.names.set(rec.Name, rec.Id);
    await this.removeOrphanStateDirs(new Set(recs.map((r) => r.Id)));
    for (const rec of recs) {
      if (!rec.State.Running) { await this.cleanupHalfStarted(rec); continue; }
      const dir = this.stateDir(rec.Id);
      const exit = await monitor.readExitFile(dir);
      if (exit) { await this.onExit(rec.Id, exit); continue; }
      if (rec.MonitorPid && isAlive(rec.MonitorPid)) {
        this.deps.volumes.adoptMounted(rec.MountPoints ?? []);
        this.watchExit(rec.Id).catch(() => {});
        this.startHealth(rec, false);
        continue;
      }
      await this.onExit(rec.Id, { exitCode: 255, signal: null, oomKilled: false, finishedAt: nowRfc3339Nano() },
        'container monitor disappeared while the daemon was down');
    }
    // As the Engine's restore: an --rm container that is not running goes before the API
    // answers (its exit was recorded but the daemon died before removing it, or it never started)
    for (const rec of recs) {
      const now = this.deps.store.get(rec.Id);
      if (now && !now.State.Running && now.HostConfig.AutoRemove) await this.remove(rec.Id, { force: true, removeVolumes: true }).catch(() => {});
    }
  }

  /**
   * A container whose start was cut short by a crash (the runtime created it, the record was not
   * yet saved as running) or whose exit was recorded while leftovers remained: end the process,
   * let the runtime delete it, unmount its rootfs and drop the state dir, so nothing leaks.
   */
  private async cleanupHalfStarted(rec: ContainerRecord): Promise<void> {
    const dir = this.stateDir(rec.Id);
    const monitorPid = parseInt(await readFile(join(dir, 'monitor.pid'), 'utf8').catch(() => ''), 10);
    if (monitorPid > 1 && isAlive(monitorPid) && await isMonitorOf(monitorPid, rec.Id)) {
      const rt = this.runtimeOf(rec);
      await monitor.killContainer(rt.path, rt.root, rec.Id, '9', true).catch(() => {});
      // the monitor runs the runtime's delete when the process is gone; a created-only container
      // never ran, so the monitor waiting for `start` is ended directly
      for (let i = 0; i < 50 && isAlive(monitorPid); i++) await sleep(20);
      if (isAlive(monitorPid)) { try { process.kill(monitorPid, 'SIGKILL'); } catch { /* gone */ } }
      await runtimeDelete(rt.path, rt.root, rec.Id);
    }
    await unmountRootfs(this.containerDir(rec.Id)).catch(() => {});
    await rm(dir, { recursive: true, force: true }).catch(() => {});
  }

  /** State dirs in the exec-root of containers that have no record (a create cut short). */
  private async removeOrphanStateDirs(known: Set<string>): Promise<void> {
    const names = await readdir(this.deps.config.execRoot).catch(() => [] as string[]);
    for (const n of names) {
      if (!/^[0-9a-f]{64}$/.test(n) || known.has(n)) continue;
      const fake = { Id: n, Runtime: this.deps.config.defaultRuntime } as ContainerRecord;
      await this.cleanupHalfStarted(fake);
    }
  }

  /** After init and once the execs can run: starts the containers the daemon brings up. */
  startPolicyContainers(): void {
    for (const rec of this.deps.store.all()) {
      const wasRestarting = rec.State.Restarting;
      if (rec.State.Running) continue;
      if (!wasRestarting && !startsWithDaemon(rec.HostConfig.RestartPolicy, !!rec.HasBeenManuallyStopped)) continue;
      this.start(rec.Id).catch(() => {});
    }
  }

  /** The healthcheck runner (ExecService.probe), set once the exec service exists. */
  setProber(fn: (id: string, cmd: string[], timeoutMs: number) => Promise<ProbeResult>): void { this.prober = fn; }

  private startHealth(rec: ContainerRecord, fresh: boolean): void {
    if (!this.prober || !probeCommand(rec.Config.Healthcheck)) { this.health.stop(rec.Id); return; }
    if (fresh || !rec.State.Health) rec.State.Health = { Status: 'starting', FailingStreak: 0, Log: fresh ? [] : rec.State.Health?.Log ?? [] };
    const prober = this.prober;
    this.health.start(rec.Id, rec.Config.Healthcheck, {
      state: () => this.deps.store.get(rec.Id)?.State.Health ?? null,
      startedAt: () => Date.parse(this.deps.store.get(rec.Id)?.State.StartedAt ?? '') || Date.now(),
      probe: (cmd, timeoutMs) => prober(rec.Id, cmd, timeoutMs),
      changed: (status) => {
        const cur = this.deps.store.get(rec.Id);
        if (!cur) return;
        this.deps.store.save(cur).catch(() => {});
        if (status) this.publish(cur, `health_status: ${status}`);
      },
    });
  }

  // ---- lookup ------------------------------------------------------------------------------

  /** Full ID, name (with or without "/"), or a unique ID prefix, as the Engine resolves them. */
  get(ref: string): ContainerRecord {
    const byId = this.deps.store.get(ref);
    if (byId) return byId;
    const byName = this.names.get(ref.startsWith('/') ? ref : `/${ref}`);
    if (byName) return this.deps.store.get(byName)!;
    if (/^[0-9a-f]+$/.test(ref) && ref.length > 0) {
      const hits = this.deps.store.all().filter((c) => c.Id.startsWith(ref));
      if (hits.length === 1) return hits[0];
      if (hits.length > 1) throw new InvalidParameterError(`multiple IDs found with provided prefix: ${ref}`);
    }
    throw new NotFoundError(`No such container: ${ref}`);
  }

  all(): ContainerRecord[] { return this.deps.store.all(); }

  /** Container IDs whose image is imageId (for image removal conflicts). */
  usersOfImage(imageId: string): ContainerRecord[] {
    return this.deps.store.all().filter((c) => c.Image === imageId);
  }

  stateDir(id: string): string { return join(this.deps.config.execRoot, id); }
  containerDir(id: string): string { return this.deps.store.dirOf(id); }

  private liveOf(id: string): Live {
    let l = this.live.get(id);
    if (!l) {
      l = { exited: new EventEmitter(), started: new EventEmitter(), backoff: new Backoff() };
      l.exited.setMaxListeners(0); l.started.setMaxListeners(0);
      this.live.set(id, l);
    }
    return l;
  }

  private async locked<T>(id: string, fn: () => Promise<T>): Promise<T> {
    const prev = this.locks.get(id) ?? Promise.resolve();
    const next = prev.catch(() => {}).then(fn);
    this.locks.set(id, next);
    try { return await next; } finally { if (this.locks.get(id) === next) this.locks.delete(id); }
  }

  private publish(rec: ContainerRecord, action: string, extra: Record<string, string> = {}): void {
    const labels = (rec.Config.Labels ?? {}) as Record<string, string>;
    this.deps.events.publish({
      Type: 'container', Action: action,
      Actor: { ID: rec.Id, Attributes: { ...labels, image: rec.Config.Image ?? '', name: rec.Name.slice(1), ...extra } },
    });
  }

  // ---- create ------------------------------------------------------------------------------

  async create(body: Record<string, any>, name?: string): Promise<{ Id: string; Warnings: string[] }> {
    const { HostConfig: hostConfigIn, NetworkingConfig: netConfig, ...config } = body ?? {};
    const hostConfig: Record<string, any> = { ...(hostConfigIn ?? {}) };
    if (!config.Image) throw new InvalidParameterError('No image specified');
    const networking = this.deps.networks.configure(hostConfig, netConfig?.EndpointsConfig, (ref) => this.get(ref));
    const runtime = hostConfig.Runtime || this.deps.config.defaultRuntime;
    if (!this.deps.config.runtimes[runtime]) throw new InvalidParameterError(`unknown or invalid runtime name: ${runtime}`);
    hostConfig.Runtime = runtime;
    validateRestartPolicy(hostConfig.RestartPolicy);
    hostConfig.RestartPolicy = { Name: hostConfig.RestartPolicy?.Name || 'no', MaximumRetryCount: hostConfig.RestartPolicy?.MaximumRetryCount ?? 0 };
    if (hostConfig.AutoRemove && hostConfig.RestartPolicy?.Name && !['', 'no'].includes(hostConfig.RestartPolicy.Name)) {
      throw new InvalidParameterError("can't create 'AutoRemove' container with restart policy");
    }
    const fullName = name ? normaliseName(name) : `/${generateName((n) => this.names.has(n))}`;
    const existing = this.names.get(fullName);
    if (existing) {
      throw new ConflictError(`Conflict. The container name "${fullName}" is already in use by container "${existing}". You have to remove (or rename) that container to be able to reuse that name.`);
    }
    const image = await this.deps.images.resolve(config.Image);
    const merged = mergeImageConfig(image.Config ?? {}, config);
    const entry = [...(merged.Entrypoint ?? []), ...(merged.Cmd ?? [])];
    if (entry.length === 0) throw new InvalidParameterError('no command specified');

    const id = randomBytes(32).toString('hex');
    merged.Hostname ||= hostConfig.NetworkMode === 'host' ? '' : id.slice(0, 12);
    this.names.set(fullName, id); // reserve before the first await that could interleave
    let mountPoints: MountPoint[] = [];
    try {
      mountPoints = await this.deps.volumes.resolve(hostConfig, merged.Volumes, (ref) => {
        const src = this.get(ref);
        return src.MountPoints ?? [];
      });
      const dir = await this.deps.store.createDir(id);
      const rec: ContainerRecord = {
        Id: id, Name: fullName, Created: nowRfc3339Nano(),
        Path: entry[0], Args: entry.slice(1),
        Config: merged, HostConfig: hostConfig, Image: image.Id,
        State: {
          Status: 'created', Running: false, Paused: false, Restarting: false, OOMKilled: false, Dead: false,
          Pid: 0, ExitCode: 0, Error: '', StartedAt: ZERO_TIME, FinishedAt: ZERO_TIME,
        },
        RestartCount: 0, Driver: 'overlay2', Platform: image.Os ?? 'linux', ExecIDs: null,
        LogPath: hostConfig.LogConfig?.Type === 'none' ? '' : join(dir, `${id}-json.log`),
        ResolvConfPath: join(dir, 'resolv.conf'), HostnamePath: join(dir, 'hostname'), HostsPath: join(dir, 'hosts'),
        Runtime: runtime,
        MountPoints: mountPoints,
        NetworkSettings: networking,
      };
      if (!rec.HostConfig.LogConfig?.Type) rec.HostConfig.LogConfig = { Type: 'json-file', Config: rec.HostConfig.LogConfig?.Config ?? {} };
      if (!['json-file', 'none'].includes(rec.HostConfig.LogConfig.Type)) {
        throw new InvalidParameterError(`logging driver "${rec.HostConfig.LogConfig.Type}" is not supported by berth: use json-file or none`);
      }
      await this.deps.store.save(rec);
      this.publish(rec, 'create');
      return { Id: id, Warnings: [] };
    } catch (err) {
      this.names.delete(fullName);
      await this.deps.store.remove(id).catch(() => {});
      await this.deps.volumes.removeAnonymous(mountPoints).catch(() => {});
      throw err;
    }
  }

  // ---- start -------------------------------------------------------------------------------

  async start(ref: string): Promise<void> {
    const rec0 = this.get(ref);
    try {
      await this.startLocked(rec0.Id);
    } catch (err) {
      // as the Engine does: a --rm container whose start failed is removed (the CLI waits for
      // condition=removed and would otherwise hang)
      const refused = err instanceof NotModifiedError || err instanceof ConflictError;
      if (!refused && rec0.HostConfig.AutoRemove && this.deps.store.get(rec0.Id)) await this.remove(rec0.Id, { force: true, removeVolumes: true }).catch(() => {});
      throw err;
    }
  }

  private async startLocked(id: string): Promise<void> {
    const rec0 = this.get(id);
    await this.locked(rec0.Id, async () => {
      const rec = this.get(rec0.Id);
      if (rec.State.Running) throw new NotModifiedError('container already started');
      if (rec.State.Status === 'removing' || rec.State.Dead) throw new ConflictError(`Container ${rec.Id} is marked for removal and cannot be started.`);
      this.cancelRestart(rec);
      rec.HasBeenManuallyStopped = false;
      try {
        await this.launch(rec);
      } catch (err: any) {
        // whatever the failed start got as far as (monitor, runtime container, mounts) goes again
        const wasCreated = rec.State.FinishedAt === ZERO_TIME;
        rec.State = { ...rec.State, Running: false, Pid: 0, Status: wasCreated ? 'created' : 'exited' };
        delete rec.MonitorPid;
        await this.cleanupHalfStarted(rec);
        await this.deps.networks.disconnectStopped(rec).catch(() => {});
        rec.State.Error = String(err.message ?? err);
        rec.State.ExitCode = /executable file not found|no such file or directory/.test(rec.State.Error) ? 127
          : /permission denied/.test(rec.State.Error) ? 126 : 128;
        rec.State.Restarting = false;
        if (rec.State.Status === 'restarting') rec.State.Status = 'exited';
        await this.deps.store.save(rec).catch(() => {});
        await unmountRootfs(this.containerDir(rec.Id)).catch(() => {});
        throw err;
      }
    });
  }

  private runtimeOf(rec: ContainerRecord): { path: string; root: string } {
    const rt = this.deps.config.runtimes[rec.Runtime] ?? this.deps.config.runtimes[this.deps.config.defaultRuntime];
    return { path: rt.path, root: join(this.deps.config.execRoot, 'runtime', rec.Runtime) };
  }

  private async launch(rec: ContainerRecord): Promise<void> {
    const dir = this.containerDir(rec.Id);
    const stateDir = this.stateDir(rec.Id);
    // the previous run's monitor deletes the runtime's container after reporting the exit:
    // creating one with the same ID must wait for that
    const previous = this.live.get(rec.Id)?.lastMonitor;
    if (previous) for (let i = 0; i < 250 && isAlive(previous); i++) await sleep(10);
    // a runtime container of an earlier run still there (its monitor slow, or gone before its
    // delete) would make the create fail with "id exists": it has exited, so it goes now
    const rt = this.runtimeOf(rec);
    if (await stat(join(rt.root, rec.Id)).then(() => true, () => false)) await runtimeDelete(rt.path, rt.root, rec.Id);
    await rm(stateDir, { recursive: true, force: true });
    await mkdir(stateDir, { recursive: true, mode: 0o700 });
    const rootfs = await mountRootfs(dir, this.deps.images.layerDirs(rec.Image));
    const c = rec.Config, h = rec.HostConfig;
    // network: another container's namespace (and its /etc files), or addresses of our own
    let netnsPath: string | undefined;
    let files: { hostsPath: string; resolvConfPath: string; hostnamePath: string };
    const mode = String(h.NetworkMode ?? '');
    if (mode.startsWith('container:')) {
      const other = this.get(mode.slice('container:'.length));
      if (!other.State.Running) throw new ConflictError(`cannot join network namespace of a non running container: ${other.Id}`);
      netnsPath = `/proc/${other.State.Pid}/ns/net`;
      files = { hostsPath: other.HostsPath, resolvConfPath: other.ResolvConfPath, hostnamePath: other.HostnamePath };
      // as the Engine: a container in another's network namespace takes its host name too
      c.Hostname = other.Config.Hostname;
      c.Domainname = other.Config.Domainname;
    } else {
      this.deps.networks.allocateAddresses(rec);
      const net = this.deps.networks.etcInfo(rec);
      files = await writeEtcFiles(dir, {
        hostname: c.Hostname || hostname(), domainname: c.Domainname,
        extraHosts: h.ExtraHosts, dns: h.Dns, dnsSearch: h.DnsSearch, dnsOptions: h.DnsOptions,
        ip: net.ip, ip6: net.ip6, dnsServer: net.dnsServer, hostGateway: net.gatewayForHost, links: this.linkHosts(rec),
      });
    }
    const user = await resolveUser(rootfs, c.User, h.GroupAdd);
    // the working directory exists when the process starts, as the Engine makes sure
    if (c.WorkingDir) await mkdirInRoot(rootfs, c.WorkingDir);
    if (rec.MountPoints) await this.deps.volumes.prepare(rec.Id, rec.MountPoints, rootfs);
    // resolved mount points replace -v / --mount (volumes become binds of their data dirs)
    const specHostConfig = rec.MountPoints ? { ...h, Binds: [], Mounts: mountSpecsFor(rec.MountPoints) } : h;
    const spec = buildSpec({
      id: rec.Id, rootfs, config: c, hostConfig: specHostConfig, user,
      files: { hostsPath: files.hostsPath, resolvConfPath: files.resolvConfPath, hostnamePath: files.hostnamePath },
      cgroupParent: h.CgroupParent || '/berth', netnsPath,
      seccompProfileJson: seccompOpt(h.SecurityOpt),
    });
    if (h.Init) addInit(spec);
    await writeFile(join(stateDir, 'config.json'), JSON.stringify(spec));
    await mkdir(rt.root, { recursive: true, mode: 0o700 });
    const logCfg = h.LogConfig?.Config ?? {};
    const spawned = await monitor.spawnMonitor({
      monitorPath: this.deps.monitorPath, id: rec.Id, dir: stateDir,
      runtimePath: rt.path, runtimeRoot: rt.root, bundle: stateDir,
      logPath: rec.LogPath || undefined,
      logMaxSize: parseSize(logCfg['max-size']), logMaxFile: logCfg['max-file'] ? Number(logCfg['max-file']) : undefined,
      tty: !!c.Tty, stdin: !!c.OpenStdin, stdinOnce: !!c.StdinOnce,
    });
    rec.MonitorPid = spawned.monitorPid;
    // the namespace exists now (runtime create) and nothing runs yet: plug in the network
    await this.deps.networks.connectRunning(rec, spawned.pid);
    rec.State = {
      ...rec.State, Status: 'running', Running: true, Paused: false, Restarting: false, OOMKilled: false, Dead: false,
      Pid: spawned.pid, ExitCode: 0, Error: '', StartedAt: nowRfc3339Nano(), FinishedAt: ZERO_TIME,
    };
    const live = this.liveOf(rec.Id);
    live.stopping = false;
    // Watch for the exit before the process runs, so no exit can be missed.
    await this.watchExit(rec.Id);
    // Attach clients that were waiting for the start connect now, before the process runs.
    const waiting: Promise<unknown>[] = [];
    live.started.emit('started', waiting);
    await Promise.all(waiting);
    // the record (already saying running) is written while the runtime starts the process: a
    // failed start writes it again in start()'s error path
    const saved = this.deps.store.save(rec);
    try {
      await monitor.startContainer(rt.path, rt.root, rec.Id);
    } catch (err: any) {
      await saved.catch(() => {});
      // runc opens exec.fifo (which lets the process run) and then removes it; a short-lived
      // process can exit, and the monitor run `delete`, in between. The start did happen.
      if (!/exec\.fifo: no such file or directory/.test(String(err?.message))) {
        await monitor.killContainer(rt.path, rt.root, rec.Id, 'SIGKILL').catch(() => {});
        throw err;
      }
    }
    await saved;
    this.startHealth(rec, true);
    this.publish(rec, 'start');
  }

  /** Keeps a monitor connection that reports the exit; falls back to the exit file. */
  private async watchExit(id: string): Promise<void> {
    const dir = this.stateDir(id);
    const conn = await monitor.attach(dir, { stdout: false, stderr: false, stdin: false, exit: true });
    const live = this.liveOf(id);
    live.exitWatch = conn;
    conn.exit.then(async (status) => {
      const st = status ?? (await monitor.readExitFile(dir))
        ?? { exitCode: 255, signal: null, oomKilled: false, finishedAt: nowRfc3339Nano() };
      await this.onExit(id, st);
    }).catch(() => {});
  }

  private async onExit(id: string, st: ExitStatus, error = ''): Promise<void> {
    const rec = this.deps.store.get(id);
    if (!rec || !rec.State.Running) return;
    rec.State = {
      ...rec.State, Status: 'exited', Running: false, Paused: false, Restarting: false,
      Pid: 0, ExitCode: st.exitCode, OOMKilled: st.oomKilled, Error: error, FinishedAt: st.finishedAt || nowRfc3339Nano(),
    };
    const monitorPid = rec.MonitorPid;
    if (monitorPid) this.liveOf(id).lastMonitor = monitorPid;
    delete rec.MonitorPid;
    await unmountRootfs(this.containerDir(id)).catch(() => {});
    await this.deps.volumes.release(id, rec.MountPoints ?? []).catch(() => {});
    await this.deps.networks.disconnectStopped(rec).catch(() => {});
    await this.deps.store.save(rec).catch(() => {});
    if (st.oomKilled) this.publish(rec, 'oom');
    this.publish(rec, 'die', { exitCode: String(st.exitCode) });
    this.health.stop(id);
    const live = this.liveOf(id);
    live.exitWatch = undefined;
    const manual = !!live.stopping || !!rec.HasBeenManuallyStopped;
    if (!this.shuttingDown && !rec.HostConfig.AutoRemove
        && shouldRestart(rec.HostConfig.RestartPolicy, { exitCode: st.exitCode, restartCount: rec.RestartCount, manual })) {
      const uptime = Date.parse(rec.State.FinishedAt) - Date.parse(rec.State.StartedAt);
      rec.State.Restarting = true;
      rec.State.Status = 'restarting';
      await this.deps.store.save(rec).catch(() => {});
      live.restartTimer = setTimeout(() => { this.autoRestart(id).catch(() => {}); }, live.backoff.next(uptime));
    }
    live.exited.emit('exit', st);
    const cleanup = this.dropStateDir(id, monitorPid).finally(() => this.pendingCleanups.delete(cleanup));
    this.pendingCleanups.add(cleanup);
    if (rec.HostConfig.AutoRemove) {
      await this.remove(id, { force: true, removeVolumes: true }).catch(() => {});
    }
  }

  /**
   * The run's state dir (exit file, attach socket) is not needed once its exit is recorded: it
   * goes when the monitor has finished (it runs the runtime's delete after the exit), unless a
   * new run owns the directory by then.
   */
  private async dropStateDir(id: string, monitorPid: number | undefined): Promise<void> {
    const dir = this.stateDir(id);
    if (monitorPid) for (let i = 0; i < 250 && isAlive(monitorPid); i++) await sleep(20);
    await this.locked(id, async () => {
      const rec = this.deps.store.get(id);
      if (rec?.State.Running) return;
      const owner = parseInt(await readFile(join(dir, 'monitor.pid'), 'utf8').catch(() => ''), 10);
      if (monitorPid && owner && owner !== monitorPid) return;
      await rm(dir, { recursive: true, force: true }).catch(() => {});
    });
  }

  /**
   * Last step of a clean stop: the state dir of every stopped container goes once its monitor
   * has finished (briefly waited for), so a stopped daemon leaves no run state behind even when
   * an exit's cleanup did not get to run in time.
   */
  private async sweepStateDirs(): Promise<void> {
    for (const r of this.deps.store.all()) {
      if (r.State.Running) continue;
      const dir = this.stateDir(r.Id);
      const pid = parseInt(await readFile(join(dir, 'monitor.pid'), 'utf8').catch(() => ''), 10);
      if (Number.isNaN(pid) && !(await stat(dir).then(() => true, () => false))) continue;
      if (pid > 1 && await isMonitorOf(pid, r.Id)) {
        for (let i = 0; i < 100 && isAlive(pid); i++) await sleep(20);
        if (isAlive(pid)) continue; // still finishing: the next start cleans up
      }
      await rm(dir, { recursive: true, force: true }).catch(() => {});
    }
  }

  /** A restart by policy, after its back-off delay. */
  private async autoRestart(id: string): Promise<void> {
    await this.locked(id, async () => {
      const rec = this.deps.store.get(id);
      const live = this.live.get(id);
      if (!rec || !live || !rec.State.Restarting || rec.State.Running) return;
      live.restartTimer = undefined;
      rec.RestartCount++;
      try {
        await this.launch(rec);
      } catch (err: any) {
        rec.State = { ...rec.State, Restarting: false, Status: 'exited', Error: String(err?.message ?? err) };
        await this.deps.store.save(rec).catch(() => {});
        await unmountRootfs(this.containerDir(rec.Id)).catch(() => {});
        return;
      }
      this.publish(rec, 'restart');
    });
  }

  /** Drops a pending policy restart (docker stop/kill/rm/start while restarting). */
  private cancelRestart(rec: ContainerRecord): boolean {
    const live = this.live.get(rec.Id);
    if (live?.restartTimer) { clearTimeout(live.restartTimer); live.restartTimer = undefined; }
    if (!rec.State.Restarting) return false;
    rec.State.Restarting = false;
    rec.State.Status = 'exited';
    return true;
  }

  /**
   * Legacy --link name:alias: the linked container's address on a network both are on, under
   * the alias, its name and short ID (/etc/hosts only; the legacy environment variables are not set).
   */
  private linkHosts(rec: ContainerRecord): Array<{ ip: string; names: string[] }> {
    const out: Array<{ ip: string; names: string[] }> = [];
    for (const link of (rec.HostConfig.Links ?? []) as string[]) {
      const [target, alias] = link.split(':');
      let other: ContainerRecord;
      try { other = this.get(target!.replace(/^\//, '')); } catch { throw new InvalidParameterError(`could not get container for ${target}`); }
      if (!other.State.Running) throw new InvalidParameterError(`Cannot link to a non running container: ${other.Name} AS ${rec.Name}${alias ? `/${alias.split('/').pop()}` : ''}`);
      const mine = Object.keys(rec.NetworkSettings?.Networks ?? {});
      const ep = mine.map((n) => other.NetworkSettings?.Networks?.[n]).find((e) => e?.IPAddress);
      if (!ep) continue;
      const aliasName = alias ? alias.split('/').pop()! : '';
      out.push({ ip: ep.IPAddress, names: [...new Set([aliasName, other.Name.slice(1), other.Id.slice(0, 12)].filter(Boolean))] });
    }
    return out;
  }

  /** A paused container gets no signals until thawed: stop, kill and rm resume it first. */
  private async thaw(rec: ContainerRecord): Promise<void> {
    if (!rec.State.Paused) return;
    const rt = this.runtimeOf(rec);
    await new Promise<void>((resolve) => execFile(rt.path, ['--root', rt.root, 'resume', rec.Id], () => resolve()));
    rec.State.Paused = false;
    rec.State.Status = 'running';
    this.publish(rec, 'unpause');
  }

  /** Marks a user's stop or kill: persisted, so unless-stopped stays down after a daemon restart. */
  private async markManualStop(rec: ContainerRecord): Promise<boolean> {
    const wasRestarting = this.cancelRestart(rec);
    if (!rec.HasBeenManuallyStopped || wasRestarting) {
      rec.HasBeenManuallyStopped = true;
      await this.deps.store.save(rec).catch(() => {});
    }
    return wasRestarting;
  }

  // ---- stop / kill / restart -------------------------------------------------------------

  async kill(ref: string, signal?: string): Promise<void> {
    const rec = this.get(ref);
    const sig = parseSignal(signal, 'SIGKILL');
    if (!rec.State.Running) {
      if (await this.markManualStop(rec)) { this.publish(rec, 'kill', { signal: String(sig) }); return; }
      throw new ConflictError(`Cannot kill container: ${ref}: Container ${rec.Id} is not running`);
    }
    if (sig === 9 || sig === 15 || sig === 2) await this.markManualStop(rec);
    if (sig === 9 || sig === 15 || sig === 2) await this.thaw(rec);
    const rt = this.runtimeOf(rec);
    await monitor.killContainer(rt.path, rt.root, rec.Id, String(sig)).catch((err) => {
      if (this.get(rec.Id).State.Running) throw new SystemError(`Cannot kill container: ${ref}: ${err.message}`);
    });
    this.publish(rec, 'kill', { signal: String(sig) });
  }

  async stop(ref: string, opts: { signal?: string; timeout?: number } = {}): Promise<void> {
    const rec = this.get(ref);
    const wasRestarting = await this.markManualStop(rec);
    if (!rec.State.Running) {
      if (wasRestarting) { this.publish(rec, 'stop'); return; }
      throw new NotModifiedError('container already stopped');
    }
    await this.thaw(rec);
    const live = this.liveOf(rec.Id);
    live.stopping = true;
    const exited = new Promise((r) => live.exited.once('exit', r));
    const sig = parseSignal(opts.signal || rec.Config.StopSignal, 'SIGTERM');
    const timeout = opts.timeout ?? rec.Config.StopTimeout ?? 10;
    const rt = this.runtimeOf(rec);
    await monitor.killContainer(rt.path, rt.root, rec.Id, String(sig)).catch(() => {});
    this.publish(rec, 'kill', { signal: String(sig) });
    const done = timeout < 0 ? await exited.then(() => true)
      : await Promise.race([exited.then(() => true), delay(timeout * 1000).then(() => false)]);
    if (!done && this.get(rec.Id).State.Running) {
      await monitor.killContainer(rt.path, rt.root, rec.Id, '9', true).catch(() => {});
      this.publish(rec, 'kill', { signal: '9' });
      await Promise.race([exited, delay(30_000)]);
    }
    this.publish(rec, 'stop');
  }

  async restart(ref: string, opts: { signal?: string; timeout?: number } = {}): Promise<void> {
    const rec = this.get(ref);
    if (rec.State.Running) await this.stop(rec.Id, opts).catch((e) => { if (!(e instanceof NotModifiedError)) throw e; });
    await this.start(rec.Id);
    this.publish(rec, 'restart');
  }

  // ---- wait ----------------------------------------------------------------------------------

  async wait(ref: string, condition = 'not-running', signal?: AbortSignal): Promise<WaitResult> {
    const rec = this.get(ref);
    const live = this.liveOf(rec.Id);
    const result = (code: number): WaitResult => ({ StatusCode: code });
    if (condition === 'not-running' && !rec.State.Running) return result(rec.State.ExitCode);
    return new Promise<WaitResult>((resolve, reject) => {
      const cleanup = () => { live.exited.off('exit', onExit); live.exited.off('removed', onRemoved); };
      const onExit = (st: ExitStatus) => {
        if (condition === 'removed') return;
        cleanup(); resolve(result(st.exitCode));
      };
      const onRemoved = (code: number) => { cleanup(); resolve(result(code)); };
      live.exited.on('exit', onExit);
      live.exited.on('removed', onRemoved);
      signal?.addEventListener('abort', () => { cleanup(); reject(new Error('client went away')); });
    });
  }

  // ---- remove --------------------------------------------------------------------------------

  async remove(ref: string, opts: { force?: boolean; removeVolumes?: boolean } = {}): Promise<void> {
    const rec0 = this.get(ref);
    await this.locked(rec0.Id, async () => {
      const rec = this.deps.store.get(rec0.Id);
      if (!rec) return; // removed meanwhile (auto-remove raced a docker rm)
      if (rec.State.Restarting) {
        if (!opts.force) throw new ConflictError('cannot remove container: container is restarting: stop the container before removing or force remove');
        this.cancelRestart(rec);
      }
      if (rec.State.Running) {
        if (!opts.force) {
          throw new ConflictError(`cannot remove container "${rec.Name}": container is running: stop the container before removing or force remove`);
        }
        await this.thaw(rec);
        const live = this.liveOf(rec.Id);
        live.stopping = true;
        const exited = new Promise((r) => live.exited.once('exit', r));
        const rt = this.runtimeOf(rec);
        await monitor.killContainer(rt.path, rt.root, rec.Id, '9', true).catch(() => {});
        await Promise.race([exited, delay(30_000)]);
        // AutoRemove of that exit may already have removed it.
        if (!this.deps.store.get(rec.Id)) return;
      }
      rec.State.Status = 'removing';
      await unmountRootfs(this.containerDir(rec.Id));
      await rm(this.stateDir(rec.Id), { recursive: true, force: true });
      await this.deps.store.remove(rec.Id);
      this.names.delete(rec.Name);
      if (opts.removeVolumes) await this.deps.volumes.removeAnonymous(rec.MountPoints ?? []);
      this.health.stop(rec.Id);
      this.publish(rec, 'destroy');
      const live = this.live.get(rec.Id);
      live?.exited.emit('removed', rec.State.ExitCode);
      live?.started.emit('removed');
      this.live.delete(rec.Id);
    });
  }

  async rename(ref: string, newName: string): Promise<void> {
    const rec = this.get(ref);
    const full = normaliseName(newName);
    if (full === rec.Name) throw new InvalidParameterError(`Renaming a container with the same name as its current name`);
    const other = this.names.get(full);
    if (other) throw new ConflictError(`Conflict. The container name "${full}" is already in use by container "${other}". You have to remove (or rename) that container to be able to reuse that name.`);
    const old = rec.Name;
    this.names.set(full, rec.Id);
    rec.Name = full;
    try { await this.deps.store.save(rec); } catch (e) { rec.Name = old; this.names.delete(full); throw e; }
    this.names.delete(old);
    this.publish(rec, 'rename', { oldName: old });
  }

  // ---- attach plumbing used by AttachService ------------------------------------------------

  /**
   * Resolves once the container's monitor is up (immediately when it runs). For a created
   * container it waits for start(); `register` receives a promise list that start() awaits,
   * so an attach can connect before the process runs.
   */
  whenStarted(id: string, register: (waiting: Promise<unknown>[]) => void): { cancel: () => void; removed: Promise<void> } {
    const live = this.liveOf(id);
    let onRemoved!: () => void;
    const removed = new Promise<void>((r) => { onRemoved = r; });
    live.started.on('started', register);
    live.started.once('removed', onRemoved);
    return {
      cancel: () => { live.started.off('started', register); live.started.off('removed', onRemoved); },
      removed,
    };
  }

  /** Resolves when the current run of the container ends. */
  nextExit(id: string): Promise<ExitStatus> {
    const live = this.liveOf(id);
    return new Promise((r) => live.exited.once('exit', r));
  }

  async resize(ref: string, h: number, w: number): Promise<void> {
    const rec = this.get(ref);
    if (!rec.State.Running) throw new ConflictError(`Container ${rec.Id} is not running`);
    const conn = await monitor.attach(this.stateDir(rec.Id), { stdout: false, stderr: false, stdin: false, exit: false });
    try { conn.resize(h, w); } finally { conn.close(); }
    this.publish(rec, 'resize', { height: String(h), width: String(w) });
  }

  recordExec(id: string, execId: string): Promise<void> {
    const rec = this.get(id);
    rec.ExecIDs = [...(rec.ExecIDs ?? []), execId];
    return this.deps.store.save(rec);
  }

  /** docker network connect / disconnect: the record changes under the container's lock. */
  async connectNetwork(ref: string, network: string, cfg: Record<string, any>): Promise<void> {
    const rec0 = this.get(ref);
    await this.locked(rec0.Id, async () => {
      const rec = this.get(rec0.Id);
      await this.deps.networks.connect(rec, network, cfg);
      await this.deps.store.save(rec);
    });
  }

  async disconnectNetwork(ref: string, network: string): Promise<void> {
    const rec0 = this.get(ref);
    await this.locked(rec0.Id, async () => {
      const rec = this.get(rec0.Id);
      await this.deps.networks.disconnect(rec, network);
      await this.deps.store.save(rec);
    });
  }

  runtimeFor(rec: ContainerRecord): { path: string; root: string } { return this.runtimeOf(rec); }
  publishEvent(rec: ContainerRecord, action: string, extra: Record<string, string> = {}): void { this.publish(rec, action, extra); }

  /** On daemon shutdown: close our monitor connections; containers keep running. */
  async shutdown(): Promise<void> {
    this.shuttingDown = true;
    this.health.stopAll();
    for (const l of this.live.values()) if (l.restartTimer) clearTimeout(l.restartTimer);
    if (!this.deps.config.file['live-restore']) {
      // As dockerd without live-restore: stop the containers (not marked as stopped by a user,
      // so restart policies bring them back with the daemon), within the shutdown timeout.
      const timeout = Number(this.deps.config.file['shutdown-timeout'] ?? 15);
      await Promise.race([
        Promise.all(this.deps.store.all().filter((r) => r.State.Running).map(async (r) => {
          const live = this.liveOf(r.Id);
          live.stopping = true;
          const exited = new Promise((res) => live.exited.once('exit', res));
          const rt = this.runtimeOf(r);
          const t = Math.min(r.Config.StopTimeout ?? 10, timeout);
          await monitor.killContainer(rt.path, rt.root, r.Id, String(parseSignal(r.Config.StopSignal, 'SIGTERM'))).catch(() => {});
          if (!await Promise.race([exited.then(() => true), delay(t * 1000).then(() => false)])) {
            await monitor.killContainer(rt.path, rt.root, r.Id, '9', true).catch(() => {});
            await Promise.race([exited, delay(5000)]);
          }
        })),
        delay((timeout + 10) * 1000),
      ]);
    }
    await Promise.race([Promise.all([...this.pendingCleanups]), delay(6000)]);
    await this.sweepStateDirs();
    for (const l of this.live.values()) l.exitWatch?.close();
  }
}

/** --init: Debian's tini-static as PID 1, bind-mounted where the Engine puts docker-init. */
const INIT_BINARY = '/usr/bin/tini-static';
function addInit(spec: any): void {
  spec.mounts = [...(spec.mounts ?? []), { destination: '/sbin/docker-init', type: 'bind', source: INIT_BINARY, options: ['rbind', 'ro', 'nosuid', 'nodev'] }];
  spec.process.args = ['/sbin/docker-init', '--', ...spec.process.args];
}

/** For timeouts raced against other events: never keeps the process alive by itself. */
function delay(ms: number): Promise<void> { return new Promise((r) => setTimeout(r, ms).unref()); }
/** For polling: keeps the process alive (during start-up nothing else may). */
function sleep(ms: number): Promise<void> { return new Promise((r) => setTimeout(r, ms)); }

/** Guards against a recycled PID: the process must be a berth-monitor for this container. */
async function isMonitorOf(pid: number, id: string): Promise<boolean> {
  const cmd = await readFile(`/proc/${pid}/cmdline`, 'utf8').catch(() => '');
  const args = cmd.split('\0');
  return (args[0] ?? '').endsWith('berth-monitor') && args.includes(id);
}

function runtimeDelete(runtimePath: string, root: string, id: string): Promise<void> {
  return new Promise((resolve) => execFile(runtimePath, ['--root', root, 'delete', '--force', id], { timeout: 10_000 }, () => resolve()));
}

/** The process exists and is not a zombie (a reparented monitor may wait to be reaped by init). */
function isAlive(pid: number): boolean {
  try { process.kill(pid, 0); } catch (e: any) { if (e.code !== 'EPERM') return false; }
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return !/^[ZX]$/.test(stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3));
  } catch { return false; }
}

function seccompOpt(opts: string[] | undefined): string | undefined {
  for (const o of opts ?? []) {
    const m = /^seccomp[=:](.*)$/s.exec(o);
    if (m && m[1] !== 'unconfined' && m[1] !== 'builtin') return m[1];
  }
  return undefined;
}

/** "10m", "1g", "512k", "100" -> bytes. */
export function parseSize(v: string | undefined): number | undefined {
  if (v === undefined || v === '') return undefined;
  const m = /^(\d+(?:\.\d+)?)\s*([kmgt]?)b?$/i.exec(String(v));
  if (!m) throw new InvalidParameterError(`invalid size: '${v}'`);
  const mult = { '': 1, k: 1024, m: 1024 ** 2, g: 1024 ** 3, t: 1024 ** 4 }[m[2].toLowerCase() as '' | 'k' | 'm' | 'g' | 't'];
  return Math.floor(Number(m[1]) * mult);
}
