// Restart policies as the Engine applies them: which exits restart a container, and the delay
// before each restart (100 ms doubling up to a minute, back to 100 ms after 10 s of uptime).
import { InvalidParameterError } from '../errors.js';

export interface RestartPolicy { Name?: string; MaximumRetryCount?: number }

const FIRST_DELAY_MS = 100;
const MAX_DELAY_MS = 60_000;
/** A run this long counts as healthy: the back-off starts over. */
const RESET_AFTER_MS = 10_000;

export function validateRestartPolicy(p: RestartPolicy | undefined): void {
  const name = p?.Name ?? '';
  if (!['', 'no', 'always', 'unless-stopped', 'on-failure'].includes(name)) {
    throw new InvalidParameterError(`invalid restart policy: unknown policy '${name}'; use one of 'no', 'always', 'on-failure', or 'unless-stopped'`);
  }
  const max = p?.MaximumRetryCount ?? 0;
  if (max < 0) throw new InvalidParameterError('invalid restart policy: maximum retry count cannot be negative');
  if (max > 0 && name !== 'on-failure') {
    throw new InvalidParameterError(`invalid restart policy: maximum retry count can only be used with 'on-failure'`);
  }
}

/** Should this exit restart the container? `manual` = stopped or killed by a user. */
export function shouldRestart(p: RestartPolicy | undefined, o: { exitCode: number; restartCount: number; manual: boolean }): boolean {
  if (o.manual) return false;
  switch (p?.Name ?? '') {
    case 'always': case 'unless-stopped': return true;
    case 'on-failure': {
      const max = p?.MaximumRetryCount ?? 0;
      return o.exitCode !== 0 && (max === 0 || o.restartCount < max);
    }
    default: return false;
  }
}

/** Should the daemon start this container when it comes up? */
export function startsWithDaemon(p: RestartPolicy | undefined, manual: boolean): boolean {
  const name = p?.Name ?? '';
  return !manual && (name === 'always' || name === 'unless-stopped');
}

/** Back-off state kept per container while the daemon runs. */
export class Backoff {
  private delay = 0;
  /** Delay before the next restart, given how long the run that just ended lasted. */
  next(uptimeMs: number): number {
    this.delay = uptimeMs >= RESET_AFTER_MS || this.delay === 0 ? FIRST_DELAY_MS : Math.min(this.delay * 2, MAX_DELAY_MS);
    return this.delay;
  }
}
