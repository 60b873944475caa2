// Client side of berth-monitor (native/PROTOCOL.md): starting a monitor, talking to its
// attach.sock, reading the exit record, and the two runtime commands the daemon runs itself.
import { spawn, execFile } from 'node:child_process';
import { EventEmitter } from 'node:events';
import { connect, type Socket } from 'node:net';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';

export type ExitStatus = { exitCode: number; signal: number | null; oomKilled: boolean; finishedAt: string };

export interface SpawnMonitorOptions {
  monitorPath: string;
  id: string;
  /** State dir (exists already): monitor.pid, pid, attach.sock, exit.json, monitor.log. */
  dir: string;
  runtimePath: string;
  runtimeRoot: string;
  /** Container mode: the bundle to `create`. */
  bundle?: string;
  /** Exec mode: the process.json for `exec --process`. */
  execProcessFile?: string;
  logPath?: string;
  logMaxSize?: number;
  logMaxFile?: number;
  tty?: boolean;
  stdin?: boolean;
  stdinOnce?: boolean;
  /** Exec mode: the process runs only when a client sends START. */
  waitStart?: boolean;
}

/** Frame types (both directions). */
const F = { STDIN: 0, STDOUT: 1, STDERR: 2, EXIT: 3, HELLO: 4, CLOSE_STDIN: 5, RESIZE: 6, START: 7 } as const;
const HELLO = { STDOUT: 1, STDERR: 2, STDIN: 4, EXIT: 8 } as const;

/** Starts a detached monitor; resolves once the runtime created the process (see PROTOCOL.md).
 *  Rejects with the runtime's own error text. pid is 0 in exec mode with waitStart. */
export function spawnMonitor(o: SpawnMonitorOptions): Promise<{ monitorPid: number; pid: number }> {
  const args = ['--id', o.id, '--dir', o.dir, '--runtime', o.runtimePath, '--runtime-root', o.runtimeRoot];
  if (o.bundle !== undefined) args.push('--bundle', o.bundle);
  if (o.execProcessFile !== undefined) args.push('--exec-process', o.execProcessFile);
  if (o.logPath) args.push('--log-path', o.logPath);
  if (o.logMaxSize) args.push('--log-max-size', String(o.logMaxSize));
  if (o.logMaxFile) args.push('--log-max-file', String(o.logMaxFile));
  if (o.tty) args.push('--tty');
  if (o.stdin) args.push('--stdin');
  if (o.stdinOnce) args.push('--stdin-once');
  if (o.waitStart) args.push('--wait-start');
  return new Promise((resolve, reject) => {
    const child = spawn(o.monitorPath, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout.on('data', (b: Buffer) => out.push(b));
    child.stderr.on('data', (b: Buffer) => err.push(b));
    child.on('error', reject);
    child.on('close', (code) => {
      if (code === 0) {
        try {
          const r = JSON.parse(Buffer.concat(out).toString()) as { monitorPid: number; pid: number };
          resolve({ monitorPid: r.monitorPid, pid: r.pid });
        } catch {
          reject(new Error(`berth-monitor: unexpected output ${Buffer.concat(out).toString()}`));
        }
      } else {
        reject(new Error(runtimeErrorText(Buffer.concat(err).toString()) || `berth-monitor exited with code ${code}`));
      }
    });
  });
}

/** Pulls the messages out of runc-style logs (`level=error msg="..."` or JSON lines); other
 *  text is kept as it is. */
export function runtimeErrorText(text: string): string {
  const msgs: string[] = [];
  for (const line of text.split('\n')) {
    const t = line.trim();
    if (!t) continue;
    if (t.startsWith('{')) {
      try {
        const j = JSON.parse(t) as { msg?: string; level?: string };
        if (j.msg && (!j.level || j.level === 'error' || j.level === 'fatal')) { msgs.push(j.msg); continue; }
        if (j.msg) continue; // info/warning lines
      } catch { /* not JSON */ }
    }
    const m = /level=(\w+)\s+msg="((?:[^"\\]|\\.)*)"/.exec(t);
    if (m) {
      if (m[1] === 'error' || m[1] === 'fatal') msgs.push(m[2].replace(/\\(.)/g, '$1'));
      continue;
    }
    msgs.push(t);
  }
  return msgs.join('\n');
}

export interface AttachOptions { stdout: boolean; stderr: boolean; stdin: boolean; exit: boolean }

/** One attach.sock connection. Events: 'stdout' (Buffer), 'stderr' (Buffer), 'close'. */
export class MonitorConnection extends EventEmitter {
  /** The exit status, or null if the connection ended without an EXIT frame. */
  readonly exit: Promise<ExitStatus | null>;
  private resolveExit!: (s: ExitStatus | null) => void;
  private pending: Buffer = Buffer.alloc(0);
  private closed = false;

  constructor(private readonly sock: Socket) {
    super();
    this.exit = new Promise((r) => { this.resolveExit = r; });
    sock.on('data', (b: Buffer) => this.onData(b));
    sock.on('error', () => { /* reported as close */ });
    sock.on('close', () => {
      this.closed = true;
      this.resolveExit(null);
      this.emit('close');
    });
  }

  private onData(b: Buffer): void {
    this.pending = this.pending.length ? Buffer.concat([this.pending, b]) : b;
    while (this.pending.length >= 8) {
      const len = this.pending.readUInt32BE(4);
      if (this.pending.length < 8 + len) break;
      const type = this.pending[0];
      const payload = this.pending.subarray(8, 8 + len);
      this.pending = this.pending.subarray(8 + len);
      if (type === F.STDOUT) this.emit('stdout', payload);
      else if (type === F.STDERR) this.emit('stderr', payload);
      else if (type === F.EXIT) {
        try { this.resolveExit(JSON.parse(payload.toString()) as ExitStatus); } catch { this.resolveExit(null); }
      }
    }
  }

  private send(type: number, payload: Buffer = Buffer.alloc(0)): boolean {
    if (this.closed || this.sock.writableEnded) return false;
    const h = Buffer.alloc(8);
    h[0] = type;
    h.writeUInt32BE(payload.length, 4);
    return this.sock.write(payload.length ? Buffer.concat([h, payload]) : h);
  }

  /** Returns false when the socket buffer is full (wait for 'drain' on the connection). */
  writeStdin(b: Buffer | Uint8Array): boolean {
    return b.length === 0 ? true : this.send(F.STDIN, Buffer.from(b));
  }
  closeStdin(): void { this.send(F.CLOSE_STDIN); }
  resize(rows: number, cols: number): void {
    const p = Buffer.alloc(4);
    p.writeUInt16BE(rows & 0xffff, 0);
    p.writeUInt16BE(cols & 0xffff, 2);
    this.send(F.RESIZE, p);
  }
  /** Exec mode with waitStart: runs the process now. */
  start(): void { this.send(F.START); }
  /** Backpressure: a paused connection makes the monitor pause the container's output. */
  pause(): void { this.sock.pause(); }
  resume(): void { this.sock.resume(); }
  /** Detaches (pending writes are flushed first). The container is not affected, except for
   *  stdin-once containers whose stdin this client held. */
  close(): void {
    if (!this.sock.writableEnded) this.sock.end();
    this.sock.once('finish', () => this.sock.destroy());
  }
  get isClosed(): boolean { return this.closed; }
}

/** attach.sock's path; through /proc/<monitor>/cwd when DIR is too long for sun_path. */
async function socketPath(dir: string): Promise<string> {
  const p = join(dir, 'attach.sock');
  if (Buffer.byteLength(p) < 100) return p;
  const pid = parseInt(await readFile(join(dir, 'monitor.pid'), 'utf8'), 10);
  return `/proc/${pid}/cwd/attach.sock`;
}

/** Connects to the monitor of DIR. Rejects (ENOENT/ECONNREFUSED) when the monitor is gone. */
export async function attach(dir: string, want: AttachOptions): Promise<MonitorConnection> {
  const path = await socketPath(dir);
  const sock = await new Promise<Socket>((resolve, reject) => {
    const s = connect(path);
    s.once('connect', () => { s.removeListener('error', reject); resolve(s); });
    s.once('error', reject);
  });
  const conn = new MonitorConnection(sock);
  const flags = (want.stdout ? HELLO.STDOUT : 0) | (want.stderr ? HELLO.STDERR : 0)
    | (want.stdin ? HELLO.STDIN : 0) | (want.exit ? HELLO.EXIT : 0);
  const hello = Buffer.alloc(9);
  hello[0] = F.HELLO;
  hello.writeUInt32BE(1, 4);
  hello[8] = flags;
  sock.write(hello);
  return conn;
}

/** DIR/exit.json, or null when the process has not exited (or its monitor died first). */
export async function readExitFile(dir: string): Promise<ExitStatus | null> {
  try {
    return JSON.parse(await readFile(join(dir, 'exit.json'), 'utf8')) as ExitStatus;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw err;
  }
}

/** Waits for the exit through the socket; reads the file when the monitor is already gone.
 *  Rejects if the monitor vanished without writing exit.json. */
export async function waitExit(dir: string): Promise<ExitStatus> {
  let st: ExitStatus | null = null;
  try {
    const conn = await attach(dir, { stdout: false, stderr: false, stdin: false, exit: true });
    st = await conn.exit;
    conn.close();
  } catch { /* monitor gone: the file tells */ }
  st ??= await readExitFile(dir);
  if (!st) throw new Error(`the monitor in ${dir} exited without recording an exit status`);
  return st;
}

function runRuntime(runtimePath: string, args: string[]): Promise<void> {
  return new Promise((resolve, reject) => {
    execFile(runtimePath, args, { timeout: 60_000 }, (err, _stdout, stderr) => {
      if (!err) return resolve();
      reject(new Error(runtimeErrorText(String(stderr)) || err.message));
    });
  });
}

/** `runtime --root R start ID`: runs the created container's process. */
export function startContainer(runtimePath: string, runtimeRoot: string, id: string): Promise<void> {
  return runRuntime(runtimePath, ['--root', runtimeRoot, 'start', id]);
}

/** `runtime --root R kill [--all] ID SIGNAL`; signal as a name (SIGKILL, KILL) or number. */
export function killContainer(runtimePath: string, runtimeRoot: string, id: string, signal: string | number, all = false): Promise<void> {
  return runRuntime(runtimePath, ['--root', runtimeRoot, 'kill', ...(all ? ['--all'] : []), id, String(signal)]);
}
