// Signal names and numbers as the Engine accepts them: "SIGTERM", "TERM", "15".
import { constants } from 'node:os';
import { InvalidParameterError } from '../errors.js';

const byName = constants.signals as Record<string, number>;

export function parseSignal(sig: string | number | undefined, fallback = 'SIGKILL'): number {
  const s = String(sig ?? '').trim() || fallback;
  if (/^\d+$/.test(s)) {
    const n = Number(s);
    if (n < 1 || n > 64) throw new InvalidParameterError(`Invalid signal: ${s}`);
    return n;
  }
  const upper = s.toUpperCase();
  const name = upper.startsWith('SIG') ? upper : `SIG${upper}`;
  const rt = /^SIGRTMIN(?:\+(\d+))?$/.exec(name);
  if (rt) return 34 + Number(rt[1] ?? 0);
  const n = byName[name];
  if (n === undefined) throw new InvalidParameterError(`Invalid signal: ${s}`);
  return n;
}
