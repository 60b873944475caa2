// Attach: joins a client connection (a hijacked socket, or a streamed response) to the
// container's monitor. Output is multiplexed unless the container has a TTY; stdin goes the other
// way, watching for the detach key sequence.
import type { Duplex } from 'node:stream';
import * as monitor from '../oci/monitor-client.js';
import type { ContainerService } from './containers.js';
import { readLogs } from './logs.js';
import { frame, STDERR, STDOUT } from './stdcopy.js';
import { InvalidParameterError } from '../errors.js';

export interface AttachOptions {
  stdin: boolean;
  stdout: boolean;
  stderr: boolean;
  stream: boolean;
  logs: boolean;
  detachKeys?: string;
}

/** "ctrl-p,ctrl-q" -> bytes, as the Engine parses --detach-keys. */
export function parseDetachKeys(spec: string | undefined): Buffer {
  const s = spec && spec.length ? spec : 'ctrl-p,ctrl-q';
  const out: number[] = [];
  for (const key of s.split(',')) {
    const k = key.trim();
    const ctrl = /^ctrl-(.)$/i.exec(k);
    if (ctrl) {
      const c = ctrl[1];
      const code = c === '@' ? 0 : c === '[' ? 27 : c === '\\' ? 28 : c === ']' ? 29 : c === '^' ? 30 : c === '_' ? 31
        : /[a-z]/i.test(c) ? c.toLowerCase().charCodeAt(0) - 96 : -1;
      if (code < 0) throw new InvalidParameterError(`Invalid detach keys (${s}) provided`);
      out.push(code);
    } else if (k.length === 1) {
      out.push(k.charCodeAt(0));
    } else {
      throw new InvalidParameterError(`Invalid detach keys (${s}) provided`);
    }
  }
  return Buffer.from(out);
}

/** Scans stdin for the detach sequence; holds back a partial match until it is decided. */
export class DetachScanner {
  private matched = 0;
  constructor(private readonly keys: Buffer) {}
  /** Returns the bytes to forward, and whether the sequence completed. */
  push(chunk: Buffer): { forward: Buffer; detach: boolean } {
    if (!this.keys.length) return { forward: chunk, detach: false };
    const out: number[] = [];
    for (const b of chunk) {
      if (b === this.keys[this.matched]) {
        this.matched++;
        if (this.matched === this.keys.length) return { forward: Buffer.from(out), detach: true };
        continue;
      }
      if (this.matched) { out.push(...this.keys.subarray(0, this.matched)); this.matched = 0; }
      if (b === this.keys[0]) { this.matched = 1; continue; }
      out.push(b);
    }
    return { forward: Buffer.from(out), detach: false };
  }
}

export class AttachService {
  constructor(private readonly containers: ContainerService) {}

  /** Runs the attach until the container's output ends or the client goes away. */
  async attach(ref: string, opts: AttachOptions, client: Duplex): Promise<void> {
    const rec = this.containers.get(ref);
    const tty = !!rec.Config.Tty;
    const detachKeys = parseDetachKeys(opts.detachKeys);
    let clientGone = false;
    client.on('close', () => { clientGone = true; });
    client.on('error', () => { clientGone = true; });
    const write = (stream: number, buf: Buffer) => {
      if (clientGone || !buf.length) return;
      client.write(tty ? buf : frame(stream, buf));
    };

    if (opts.logs && rec.LogPath) {
      const logs = readLogs(rec.LogPath, {
        stdout: opts.stdout, stderr: opts.stderr, since: 0, until: 0, timestamps: false, tail: -1,
        follow: false, multiplex: !tty,
      }, null);
      for await (const chunk of logs) if (!clientGone) client.write(chunk);
    }
    if (!opts.stream || clientGone) { client.end(); return; }

    const connect = async (): Promise<monitor.MonitorConnection> => {
      const conn = await monitor.attach(this.containers.stateDir(rec.Id), {
        stdout: opts.stdout, stderr: opts.stderr, stdin: opts.stdin, exit: false,
      });
      conn.on('stdout', (b: Buffer) => write(STDOUT, b));
      conn.on('stderr', (b: Buffer) => write(STDERR, b));
      return conn;
    };

    let conn: monitor.MonitorConnection;
    const current = this.containers.get(rec.Id);
    if (current.State.Running) {
      conn = await connect();
    } else {
      // Created (or stopped) container: connect when it starts, before its process runs.
      let resolveConn!: (c: monitor.MonitorConnection | null) => void;
      const got = new Promise<monitor.MonitorConnection | null>((r) => { resolveConn = r; });
      const reg = this.containers.whenStarted(rec.Id, (waiting) => {
        const p = connect().then(resolveConn, (e) => { resolveConn(null); throw e; });
        waiting.push(p.catch(() => {}));
      });
      reg.removed.then(() => resolveConn(null));
      client.once('close', () => resolveConn(null));
      const c = await got;
      reg.cancel();
      if (!c) { if (!clientGone) client.end(); return; }
      conn = c;
    }
    this.containers.publishEvent(this.containers.get(rec.Id), 'attach');

    if (clientGone) { conn.close(); return; }
    if (opts.stdin) {
      const scanner = new DetachScanner(detachKeys);
      client.on('data', (chunk: Buffer) => {
        const { forward, detach } = scanner.push(chunk);
        if (forward.length) conn.writeStdin(forward);
        if (detach) { conn.close(); client.end(); }
      });
      client.on('end', () => {
        if (rec.Config.StdinOnce) conn.closeStdin();
      });
    } else {
      client.resume();
    }
    await new Promise<void>((resolve) => {
      conn.once('close', () => resolve());
      client.once('close', () => { conn.close(); resolve(); });
    });
    if (!clientGone) client.end();
  }
}
