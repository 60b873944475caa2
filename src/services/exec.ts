// ExecService: processes started inside a running container (docker exec), each with its own
// berth-monitor in exec mode. Exec records live in memory, as on the Engine.
import { randomBytes } from 'node:crypto';
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Duplex } from 'node:stream';
import { ConflictError, InvalidParameterError, NotFoundError } from '../errors.js';
import * as monitor from '../oci/monitor-client.js';
import { resolveUser } from '../oci/spec-api.js';
import { availableCapabilities } from '../oci/capabilities.js';
import type { ContainerService } from './containers.js';
import { DetachScanner, parseDetachKeys } from './attach.js';
import { frame, STDERR, STDOUT } from './stdcopy.js';
import { rootfsPaths } from './rootfs.js';
import { goDuration } from './health.js';

export interface ExecRecord {
  ID: string;
  ContainerID: string;
  Running: boolean;
  ExitCode: number | null;
  Pid: number;
  OpenStdin: boolean;
  OpenStdout: boolean;
  OpenStderr: boolean;
  CanRemove: boolean;
  DetachKeys: string;
  ProcessConfig: { tty: boolean; entrypoint: string; arguments: string[]; privileged: boolean; user: string };
  Config: Record<string, any>;
  ConsoleSize?: [number, number];
  started: boolean;
}

export class ExecService {
  private readonly execs = new Map<string, ExecRecord>();

  constructor(private readonly containers: ContainerService) {}

  create(containerRef: string, body: Record<string, any>, opts: { record?: boolean } = {}): { Id: string } {
    const rec = this.containers.get(containerRef);
    if (!rec.State.Running) throw new ConflictError(`container ${rec.Id} is not running`);
    if (rec.State.Paused) throw new ConflictError(`container ${rec.Id} is paused, unpause the container before exec`);
    const cmd: string[] = body.Cmd ?? [];
    if (!cmd.length) throw new InvalidParameterError('No exec command specified');
    const id = randomBytes(32).toString('hex');
    const ex: ExecRecord = {
      ID: id, ContainerID: rec.Id, Running: false, ExitCode: null, Pid: 0,
      OpenStdin: !!body.AttachStdin, OpenStdout: !!body.AttachStdout, OpenStderr: !!body.AttachStderr,
      CanRemove: false, DetachKeys: body.DetachKeys ?? '',
      ProcessConfig: { tty: !!body.Tty, entrypoint: cmd[0], arguments: cmd.slice(1), privileged: !!body.Privileged, user: body.User ?? '' },
      Config: body, ConsoleSize: body.ConsoleSize ?? undefined, started: false,
    };
    this.execs.set(id, ex);
    if (opts.record !== false) this.containers.recordExec(rec.Id, id).catch(() => {});
    this.containers.publishEvent(rec, `exec_create: ${cmd.join(' ')}`, { execID: id });
    return { Id: id };
  }

  get(id: string): ExecRecord {
    const ex = this.execs.get(id);
    if (!ex) throw new NotFoundError(`No such exec instance: ${id}`);
    return ex;
  }

  inspect(id: string): Record<string, unknown> {
    const ex = this.get(id);
    const { Config: _c, ConsoleSize: _s, started: _st, ...view } = ex;
    return view;
  }

  private dirOf(ex: ExecRecord): string {
    return join(this.containers.stateDir(ex.ContainerID), 'exec', ex.ID);
  }

  /** The OCI process for the exec: the container's process with the exec's overrides. */
  private async processFile(ex: ExecRecord, dir: string): Promise<string> {
    const rec = this.containers.get(ex.ContainerID);
    const spec = JSON.parse(await readFile(join(this.containers.stateDir(rec.Id), 'config.json'), 'utf8'));
    const proc = { ...spec.process };
    const c = ex.Config;
    proc.args = c.Cmd;
    proc.terminal = !!c.Tty;
    const env = new Map<string, string>();
    for (const e of [...(proc.env ?? []), ...(c.Env ?? [])] as string[]) {
      const i = e.indexOf('=');
      env.set(i < 0 ? e : e.slice(0, i), e);
    }
    proc.env = [...env.values()];
    if (c.WorkingDir) proc.cwd = c.WorkingDir;
    if (c.User) {
      const u = await resolveUser(rootfsPaths(this.containers.containerDir(rec.Id)).merged, c.User, rec.HostConfig.GroupAdd);
      proc.user = { ...proc.user, uid: u.uid, gid: u.gid, additionalGids: u.additionalGids };
    }
    if (c.Privileged && spec.process?.capabilities) {
      const all = availableCapabilities();
      proc.capabilities = { bounding: all, effective: all, permitted: all };
    }
    if (ex.ConsoleSize) proc.consoleSize = { height: ex.ConsoleSize[0], width: ex.ConsoleSize[1] };
    const file = join(dir, 'process.json');
    await writeFile(file, JSON.stringify(proc));
    return file;
  }

  /**
   * Starts the exec. With a client connection the output is streamed to it (multiplexed unless
   * TTY) and stdin forwarded; resolves when the process exited. Detached: resolves once running.
   */
  /** Throws what start() would refuse, so a route can answer before it hijacks the connection. */
  checkStartable(id: string): ExecRecord {
    const ex = this.get(id);
    if (ex.started) throw new ConflictError(`Error: Exec command ${id} has already run`);
    const rec = this.containers.get(ex.ContainerID);
    if (!rec.State.Running) throw new ConflictError(`container ${rec.Id} is not running`);
    return ex;
  }

  async start(id: string, opts: { detach: boolean; tty?: boolean }, client?: Duplex): Promise<void> {
    const ex = this.checkStartable(id);
    const rec = this.containers.get(ex.ContainerID);
    ex.started = true;
    const dir = this.dirOf(ex);
    await mkdir(dir, { recursive: true, mode: 0o700 });
    const processFile = await this.processFile(ex, dir);
    const rt = this.containers.runtimeFor(rec);
    const attached = !opts.detach && !!client;
    const spawned = await monitor.spawnMonitor({
      monitorPath: this.containers.monitorPath, id: rec.Id, dir,
      runtimePath: rt.path, runtimeRoot: rt.root, execProcessFile: processFile,
      tty: !!ex.Config.Tty, stdin: ex.OpenStdin && attached, stdinOnce: true, waitStart: attached,
    });
    ex.Running = true;
    ex.Pid = spawned.pid;
    const cmd = [ex.ProcessConfig.entrypoint, ...ex.ProcessConfig.arguments].join(' ');
    this.containers.publishEvent(rec, `exec_start: ${cmd}`, { execID: id });
    const conn = await monitor.attach(dir, { stdout: attached && ex.OpenStdout, stderr: attached && ex.OpenStderr, stdin: attached && ex.OpenStdin, exit: true });
    const finished = conn.exit.then(async (st) => {
      const s = st ?? (await monitor.readExitFile(dir));
      ex.Running = false;
      ex.ExitCode = s ? s.exitCode : 126;
      ex.Pid = 0;
      this.containers.publishEvent(rec, 'exec_die', { execID: id, exitCode: String(ex.ExitCode) });
    });
    if (!attached) { finished.catch(() => {}); return; }

    const tty = !!ex.Config.Tty;
    let gone = false;
    client!.on('close', () => { gone = true; conn.close(); });
    client!.on('error', () => { gone = true; });
    conn.on('stdout', (b: Buffer) => { if (!gone) client!.write(tty ? b : frame(STDOUT, b)); });
    conn.on('stderr', (b: Buffer) => { if (!gone) client!.write(tty ? b : frame(STDERR, b)); });
    if (ex.OpenStdin) {
      const scanner = new DetachScanner(parseDetachKeys(ex.DetachKeys || undefined));
      client!.on('data', (chunk: Buffer) => {
        const { forward, detach } = scanner.push(chunk);
        if (forward.length) conn.writeStdin(forward);
        if (detach) { conn.close(); client!.end(); }
      });
      client!.on('end', () => conn.closeStdin());
    } else {
      client!.resume();
    }
    conn.start();
    await finished.catch(() => {});
    await new Promise<void>((r) => { if (gone) r(); else { conn.once('close', () => r()); setTimeout(r, 200).unref(); } });
    if (!gone) client!.end();
  }

  /**
   * Runs a healthcheck probe: an exec whose output is collected (both streams, as the Engine
   * does) and which is killed after timeoutMs. Not listed in the container's ExecIDs.
   */
  async probe(containerId: string, cmd: string[], timeoutMs: number): Promise<{ exitCode: number; output: string }> {
    const { Id: id } = this.create(containerId, { Cmd: cmd, AttachStdout: true, AttachStderr: true }, { record: false });
    const ex = this.get(id);
    const rec = this.containers.get(ex.ContainerID);
    ex.started = true;
    const dir = this.dirOf(ex);
    try {
      await mkdir(dir, { recursive: true, mode: 0o700 });
      const rt = this.containers.runtimeFor(rec);
      await monitor.spawnMonitor({
        monitorPath: this.containers.monitorPath, id: rec.Id, dir,
        runtimePath: rt.path, runtimeRoot: rt.root, execProcessFile: await this.processFile(ex, dir), waitStart: true,
      });
      ex.Running = true;
      this.containers.publishEvent(rec, `exec_start: ${cmd.join(' ')}`, { execID: id });
      const conn = await monitor.attach(dir, { stdout: true, stderr: true, stdin: false, exit: true });
      const chunks: Buffer[] = [];
      conn.on('stdout', (b: Buffer) => chunks.push(b));
      conn.on('stderr', (b: Buffer) => chunks.push(b));
      let timedOut = false;
      const timer = setTimeout(() => {
        timedOut = true;
        // with waitStart the pid is only known once the runtime wrote it; never signal pid 0 (our group)
        readFile(join(dir, 'pid'), 'utf8').then((p) => {
          const pid = parseInt(p, 10);
          if (pid > 1) process.kill(pid, 'SIGKILL');
        }).catch(() => {});
      }, timeoutMs);
      conn.start();
      const st = (await conn.exit) ?? (await monitor.readExitFile(dir));
      clearTimeout(timer);
      conn.close();
      ex.Running = false;
      ex.Pid = 0;
      ex.ExitCode = timedOut ? -1 : st ? st.exitCode : -1;
      this.containers.publishEvent(rec, 'exec_die', { execID: id, exitCode: String(ex.ExitCode) });
      const output = timedOut ? `Health check exceeded timeout (${goDuration(timeoutMs)})` : Buffer.concat(chunks).toString('utf8');
      return { exitCode: ex.ExitCode, output };
    } finally {
      this.execs.delete(id);
      await rm(dir, { recursive: true, force: true }).catch(() => {});
    }
  }

  async resize(id: string, h: number, w: number): Promise<void> {
    const ex = this.get(id);
    if (!ex.Running) { ex.ConsoleSize = [h, w]; return; }
    const conn = await monitor.attach(this.dirOf(ex), { stdout: false, stderr: false, stdin: false, exit: false });
    try { conn.resize(h, w); } finally { conn.close(); }
  }

  /** Forget execs of a removed container. */
  forgetContainer(containerId: string): void {
    for (const [id, ex] of this.execs) if (ex.ContainerID === containerId) this.execs.delete(id);
  }
}
