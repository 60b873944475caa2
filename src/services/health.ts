// Healthchecks: runs a container's HEALTHCHECK command periodically as an exec and keeps
// State.Health (Status, FailingStreak, the last 5 results) as the Engine does.
export interface HealthConfig { Test?: string[] | null; Interval?: number; Timeout?: number; StartPeriod?: number; StartInterval?: number; Retries?: number }
export interface HealthLogEntry { Start: string; End: string; ExitCode: number; Output: string }
export interface HealthState { Status: 'starting' | 'healthy' | 'unhealthy'; FailingStreak: number; Log: HealthLogEntry[] }

export interface ProbeResult { exitCode: number; output: string }

const NS = 1e6; // nanoseconds per millisecond: the API gives durations in ns
const DEFAULTS = { interval: 30_000, timeout: 30_000, startPeriod: 0, startInterval: 5_000, retries: 3 };
const MAX_LOG_ENTRIES = 5;
const MAX_OUTPUT = 4096;

/** The command to run, or null when the container has no (or a disabled) healthcheck. */
export function probeCommand(h: HealthConfig | null | undefined): string[] | null {
  const test = h?.Test;
  if (!test || test.length === 0) return null;
  switch (test[0]) {
    case 'NONE': return null;
    case 'CMD': return test.length > 1 ? test.slice(1) : null;
    case 'CMD-SHELL': return test.length > 1 ? ['/bin/sh', '-c', test.slice(1).join(' ')] : null;
    default: return null;
  }
}

export function timings(h: HealthConfig) {
  const ms = (v: number | undefined, d: number) => (v && v > 0 ? v / NS : d);
  return {
    interval: ms(h.Interval, DEFAULTS.interval), timeout: ms(h.Timeout, DEFAULTS.timeout),
    startPeriod: ms(h.StartPeriod, DEFAULTS.startPeriod), startInterval: ms(h.StartInterval, DEFAULTS.startInterval),
    retries: h.Retries && h.Retries > 0 ? h.Retries : DEFAULTS.retries,
  };
}

/** Go's time.Duration formatting for whole and fractional seconds ("30s", "1.5s", "500ms"). */
export function goDuration(ms: number): string {
  if (ms < 1000) return `${ms}ms`;
  if (ms % 60_000 === 0 && ms >= 60_000) return `${ms / 60_000}m0s`;
  return `${+(ms / 1000).toFixed(3)}s`;
}

/** Applies one probe result; returns the new status when it changed. */
export function applyResult(state: HealthState, entry: HealthLogEntry, o: { retries: number; inStartPeriod: boolean }): string | null {
  const before = state.Status;
  state.Log = [...state.Log, { ...entry, Output: entry.Output.slice(0, MAX_OUTPUT) }].slice(-MAX_LOG_ENTRIES);
  if (entry.ExitCode === 0) {
    state.FailingStreak = 0;
    state.Status = 'healthy';
  } else if (!(state.Status === 'starting' && o.inStartPeriod)) {
    // failures while starting, inside the start period, do not count
    state.FailingStreak++;
    if (state.FailingStreak >= o.retries) state.Status = 'unhealthy';
  }
  return state.Status === before ? null : state.Status;
}

export interface HealthTarget {
  /** Current health state object of the container (mutated in place), or null if gone. */
  state(): HealthState | null;
  startedAt(): number;
  probe(cmd: string[], timeoutMs: number): Promise<ProbeResult>;
  /** Persist the record and publish `health_status: <status>` when changed. */
  changed(status: string | null): void;
}

/** One probe loop per running container. */
export class HealthMonitor {
  private readonly loops = new Map<string, { stop: () => void }>();

  start(id: string, config: HealthConfig, target: HealthTarget): void {
    this.stop(id);
    const cmd = probeCommand(config);
    if (!cmd) return;
    const t = timings(config);
    let stopped = false;
    let timer: NodeJS.Timeout | undefined;
    const schedule = () => {
      if (stopped) return;
      const inStart = Date.now() - target.startedAt() < t.startPeriod;
      timer = setTimeout(run, inStart && t.startInterval ? t.startInterval : t.interval);
      timer.unref();
    };
    const run = async () => {
      if (stopped) return;
      const start = new Date();
      let result: ProbeResult;
      try { result = await target.probe(cmd, t.timeout); } catch (err: any) { result = { exitCode: -1, output: String(err?.message ?? err) }; }
      const st = target.state();
      if (stopped || !st) return;
      const changed = applyResult(st, { Start: start.toISOString(), End: new Date().toISOString(), ExitCode: result.exitCode, Output: result.output },
        { retries: t.retries, inStartPeriod: start.getTime() - target.startedAt() < t.startPeriod });
      target.changed(changed);
      schedule();
    };
    this.loops.set(id, { stop: () => { stopped = true; if (timer) clearTimeout(timer); } });
    schedule();
  }

  stop(id: string): void {
    this.loops.get(id)?.stop();
    this.loops.delete(id);
  }

  stopAll(): void { for (const id of [...this.loops.keys()]) this.stop(id); }
}
