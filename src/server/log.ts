// A small leveled logger writing dockerd-style lines to stderr.
export type LogLevel = 'debug' | 'info' | 'warn' | 'error' | 'fatal';
const ORDER: Record<LogLevel, number> = { debug: 0, info: 1, warn: 2, error: 3, fatal: 4 };

export const LOG_LEVELS = Object.keys(ORDER) as LogLevel[];

export interface Logger {
  debug(msg: string, fields?: Record<string, unknown>): void;
  info(msg: string, fields?: Record<string, unknown>): void;
  warn(msg: string, fields?: Record<string, unknown>): void;
  error(msg: string, fields?: Record<string, unknown>): void;
}

export function createLogger(level: string = 'info', write: (line: string) => void = (l) => process.stderr.write(l)): Logger {
  const min = ORDER[(level as LogLevel)] ?? ORDER.info;
  const emit = (lvl: LogLevel) => (msg: string, fields?: Record<string, unknown>): void => {
    if (ORDER[lvl] < min) return;
    const extra = fields ? Object.entries(fields).map(([k, v]) => ` ${k}=${JSON.stringify(v)}`).join('') : '';
    write(`time="${new Date().toISOString()}" level=${lvl} msg=${JSON.stringify(msg)}${extra}\n`);
  };
  return { debug: emit('debug'), info: emit('info'), warn: emit('warn'), error: emit('error') };
}
