// Reads the json-file log the monitor writes (<id>-json.log, rotated to .1, .2, ... oldest last)
// and turns it into the byte stream GET /containers/{id}/logs returns.
import { open, readFile, stat } from 'node:fs/promises';
import type { FileHandle } from 'node:fs/promises';
import { Readable } from 'node:stream';
import { frame, STDERR, STDOUT } from './stdcopy.js';

export interface LogOptions {
  stdout: boolean;
  stderr: boolean;
  /** unix seconds (may have a fraction); 0 = from the start */
  since: number;
  /** unix seconds; 0 = no limit */
  until: number;
  timestamps: boolean;
  /** number of lines from the end; -1 = all */
  tail: number;
  follow: boolean;
  /** multiplexed frames unless the container has a TTY */
  multiplex: boolean;
}

export interface LogEntry { log: string; stream: string; time: string }

/** "2026-11-22T11:00:00.1Z" -> seconds since epoch with the nanoseconds kept as a fraction. */
export function timeToSeconds(t: string): number {
  const m = /^(.*T\d\d:\d\d:\d\d)(?:\.(\d+))?(Z|[+-]\d\d:\d\d)$/.exec(t);
  if (!m) return Date.parse(t) / 1000;
  const whole = Date.parse(m[1] + m[3]) / 1000;
  return whole + (m[2] ? Number('0.' + m[2]) : 0);
}

/** RFC 3339 with exactly nine fractional digits, as `docker logs -t` prints. */
export function fixedNano(t: string): string {
  const m = /^(.*T\d\d:\d\d:\d\d)(?:\.(\d+))?(Z|[+-]\d\d:\d\d)$/.exec(t);
  if (!m) return t;
  return `${m[1]}.${(m[2] ?? '').padEnd(9, '0').slice(0, 9)}${m[3]}`;
}

/** Parses a since/until query value: unix seconds with optional fraction, or an RFC 3339 time. */
export function parseTimeArg(v: string | undefined): number {
  if (v === undefined || v === '') return 0;
  if (/^\d+(\.\d+)?$/.test(v)) return Number(v);
  const s = timeToSeconds(v);
  return Number.isFinite(s) ? s : 0;
}

function render(e: LogEntry, o: LogOptions): Buffer | null {
  if (e.stream === 'stdout' && !o.stdout) return null;
  if (e.stream === 'stderr' && !o.stderr) return null;
  const secs = timeToSeconds(e.time);
  if (o.since && secs < o.since) return null;
  if (o.until && secs > o.until) return null;
  let payload = Buffer.from(e.log, 'utf8');
  if (o.timestamps) payload = Buffer.concat([Buffer.from(fixedNano(e.time) + ' '), payload]);
  return o.multiplex ? frame(e.stream === 'stderr' ? STDERR : STDOUT, payload) : payload;
}

function parseLines(text: string): LogEntry[] {
  const out: LogEntry[] = [];
  for (const line of text.split('\n')) {
    if (!line) continue;
    try { out.push(JSON.parse(line) as LogEntry); } catch { /* a torn last line from a crash */ }
  }
  return out;
}

async function readRotated(logPath: string, maxFiles: number): Promise<string> {
  const parts: string[] = [];
  for (let i = maxFiles - 1; i >= 1; i--) {
    parts.push(await readFile(`${logPath}.${i}`, 'utf8').catch(() => ''));
  }
  return parts.join('');
}

/**
 * The log as a stream. With follow, keeps reading appended entries until `stopped` resolves
 * (the container exited) and the file is drained, or the consumer goes away.
 */
export function readLogs(logPath: string, o: LogOptions, stopped: Promise<unknown> | null, maxFiles = 10): Readable {
  const out = new Readable({ read() {} });
  let closed = false;
  out.on('close', () => { closed = true; });
  (async () => {
    let fh: FileHandle | null = null;
    try {
      fh = await open(logPath, 'r').catch(() => null);
      const rotated = await readRotated(logPath, maxFiles);
      let offset = 0;
      let pending = '';
      const readMore = async (): Promise<LogEntry[]> => {
        if (!fh) return [];
        const buf = Buffer.alloc(64 * 1024);
        let text = '';
        for (;;) {
          const { bytesRead } = await fh.read(buf, 0, buf.length, offset);
          if (bytesRead <= 0) break;
          offset += bytesRead;
          text += buf.subarray(0, bytesRead).toString('utf8');
        }
        text = pending + text;
        const cut = text.lastIndexOf('\n');
        pending = cut >= 0 ? text.slice(cut + 1) : text;
        return parseLines(cut >= 0 ? text.slice(0, cut) : '');
      };
      let entries = parseLines(rotated).concat(await readMore());
      if (o.tail >= 0) entries = o.tail === 0 ? [] : entries.slice(-o.tail);
      for (const e of entries) { const b = render(e, o); if (b) out.push(b); }
      if (o.follow && stopped) {
        let done = false;
        stopped.then(() => { done = true; }, () => { done = true; });
        while (!closed) {
          // Rotation: the monitor renamed the file; finish the old handle, then reopen.
          const st = await stat(logPath).catch(() => null);
          const cur = fh ? await fh.stat().catch(() => null) : null;
          for (const e of await readMore()) { const b = render(e, o); if (b) out.push(b); }
          if (st && (!cur || st.ino !== cur.ino)) {
            await fh?.close().catch(() => {});
            fh = await open(logPath, 'r').catch(() => null);
            offset = 0; pending = '';
            continue;
          }
          if (done) break;
          await new Promise((r) => setTimeout(r, 50));
        }
      }
      out.push(null);
    } catch (err) {
      out.destroy(err as Error);
    } finally {
      await fh?.close().catch(() => {});
    }
  })();
  return out;
}
