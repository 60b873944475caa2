// berthd configuration: command-line flags (dockerd's names) merged with daemon.json.
// Unknown keys in the file and values given both as a flag and in the file are refused, as
// dockerd does, so a typo never silently falls back to a default.
import { access, readFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import type { DaemonConfig } from '../services/index.js';
import { LOG_LEVELS } from '../server/log.js';

export const DEFAULT_CONFIG_FILE = '/etc/berth/daemon.json';
export const DEFAULT_DATA_ROOT = '/var/lib/berth';
export const DEFAULT_EXEC_ROOT = '/run/berth';

export interface TlsConfig { tls: boolean; verify: boolean; ca?: string; cert?: string; key?: string }

export interface BerthdConfig extends DaemonConfig {
  pidfile: string;
  configFile?: string;
  tls: TlsConfig;
}

export type CliResult = { kind: 'run'; config: BerthdConfig } | { kind: 'help' | 'version' };

/** Flags and the daemon.json key each corresponds to. */
const FLAGS = {
  host: { type: 'string', short: 'H', multiple: true, key: 'hosts' },
  'data-root': { type: 'string', key: 'data-root' },
  'exec-root': { type: 'string', key: 'exec-root' },
  pidfile: { type: 'string', short: 'p', key: 'pidfile' },
  'config-file': { type: 'string' },
  'log-level': { type: 'string', short: 'l', key: 'log-level' },
  debug: { type: 'boolean', short: 'D', key: 'debug' },
  tls: { type: 'boolean', key: 'tls' },
  tlsverify: { type: 'boolean', key: 'tlsverify' },
  tlscacert: { type: 'string', key: 'tlscacert' },
  tlscert: { type: 'string', key: 'tlscert' },
  tlskey: { type: 'string', key: 'tlskey' },
  'default-runtime': { type: 'string', key: 'default-runtime' },
  help: { type: 'boolean', short: 'h' },
  version: { type: 'boolean', short: 'v' },
} as const;

/** daemon.json keys berthd knows; services read the ones beyond the flags from config.file. */
export const FILE_KEYS = new Set([
  ...Object.values(FLAGS).flatMap((f) => ('key' in f ? [f.key] : [])),
  'runtimes', 'insecure-registries', 'registry-mirrors', 'labels', 'live-restore', 'dns', 'dns-search',
  'dns-opts', 'log-driver', 'log-opts', 'storage-driver', 'storage-opts', 'default-ulimits', 'bip',
  'iptables', 'ip-forward', 'ip-masq', 'ipv6', 'fixed-cidr-v6', 'default-address-pools', 'features', 'builder',
  'experimental', 'max-concurrent-downloads', 'max-concurrent-uploads', 'max-download-attempts', 'shutdown-timeout', 'mtu',
  'userland-proxy', 'default-shm-size', 'default-cgroupns-mode', 'cgroup-parent', 'exec-opts',
  'init', 'init-path', 'seccomp-profile', 'no-new-privileges', 'icc', 'ip', 'default-network-opts',
]);

export const USAGE = `Usage:	berthd [OPTIONS]

A Docker-Engine-API-compatible container daemon.

Options:
  -H, --host list              Daemon socket(s) to connect to (default unix://${DEFAULT_EXEC_ROOT}/berth.sock)
      --data-root string       Root directory of persistent state (default "${DEFAULT_DATA_ROOT}")
      --exec-root string       Root directory for execution state files (default "${DEFAULT_EXEC_ROOT}")
  -p, --pidfile string         Path to use for daemon PID file (default "<exec-root>/berthd.pid")
      --config-file string     Daemon configuration file (default "${DEFAULT_CONFIG_FILE}")
  -l, --log-level string       Set the logging level ("debug"|"info"|"warn"|"error"|"fatal") (default "info")
  -D, --debug                  Enable debug mode
      --default-runtime string Default OCI runtime for containers (default "berth", or "runc" if not built)
      --tls                    Use TLS; implied by --tlsverify
      --tlsverify              Use TLS and verify the remote
      --tlscacert string       Trust certs signed only by this CA
      --tlscert string         Path to TLS certificate file
      --tlskey string          Path to TLS key file
  -h, --help                   Print usage
  -v, --version                Print version information and quit
`;

export class ConfigError extends Error {}

const exists = (p: string): Promise<boolean> => access(p).then(() => true, () => false);

async function readConfigFile(path: string, explicit: boolean): Promise<Record<string, unknown>> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (e) {
    if (!explicit && (e as NodeJS.ErrnoException).code === 'ENOENT') return {};
    throw new ConfigError(`unable to configure the daemon with file ${path}: ${(e as Error).message}`);
  }
  let parsed: unknown;
  try {
    parsed = text.trim() === '' ? {} : JSON.parse(text);
  } catch (e) {
    throw new ConfigError(`unable to configure the daemon with file ${path}: ${(e as Error).message}`);
  }
  if (!parsed || typeof parsed !== 'object' || Array.isArray(parsed)) throw new ConfigError(`unable to configure the daemon with file ${path}: the file must hold a JSON object`);
  const unknown = Object.keys(parsed).filter((k) => !FILE_KEYS.has(k));
  if (unknown.length) throw new ConfigError(`unable to configure the daemon with file ${path}: the following directives don't match any configuration option: ${unknown.join(', ')}`);
  return parsed as Record<string, unknown>;
}

function expect<T>(file: string, key: string, v: unknown, type: 'string' | 'boolean' | 'string[]' | 'object'): T {
  const ok = type === 'string[]' ? Array.isArray(v) && v.every((x) => typeof x === 'string')
    : type === 'object' ? !!v && typeof v === 'object' && !Array.isArray(v)
      : typeof v === type;
  if (!ok) throw new ConfigError(`unable to configure the daemon with file ${file}: ${key} must be ${type === 'string[]' ? 'a list of strings' : `a ${type}`}`);
  return v as T;
}

/** A registry-mirrors entry as the Engine accepts it (http or https, no credentials, query or fragment; a path is kept), ending in "/". */
function validMirror(m: string): string {
  if (!m.includes('://')) throw new ConfigError(`invalid mirror: no scheme specified for "${m}": must use either 'https://' or 'http://'`);
  let u: URL;
  try { u = new URL(m); } catch { throw new ConfigError(`invalid mirror: "${m}" is not a valid URI`); }
  if (u.protocol !== 'http:' && u.protocol !== 'https:') throw new ConfigError(`invalid mirror: unsupported scheme "${u.protocol.slice(0, -1)}" in "${m}": must use either 'https://' or 'http://'`);
  if (u.search || u.hash) throw new ConfigError(`invalid mirror: query or fragment at end of the URI "${m}"`);
  if (u.username || u.password) throw new ConfigError(`invalid mirror: username/password not allowed in URI "${m}"`);
  return `${m.replace(/\/+$/, '')}/`;
}

/** Parses argv and the config file into the daemon's configuration. */
export async function loadConfig(argv: string[], repoRoot: string): Promise<CliResult> {
  let parsed;
  try {
    parsed = parseArgs({ args: argv, options: FLAGS as any, allowPositionals: false, strict: true });
  } catch (e) {
    throw new ConfigError(`${(e as Error).message}\nSee 'berthd --help'.`);
  }
  const flags = parsed.values as Record<string, any>;
  if (flags.help) return { kind: 'help' };
  if (flags.version) return { kind: 'version' };

  const configFile = resolve(flags['config-file'] ?? DEFAULT_CONFIG_FILE);
  const file = await readConfigFile(configFile, flags['config-file'] !== undefined);

  const conflicts: string[] = [];
  for (const [name, def] of Object.entries(FLAGS)) {
    if (!('key' in def) || flags[name] === undefined || !(def.key in file)) continue;
    const fromFlag = Array.isArray(flags[name]) ? `[${flags[name].join(' ')}]` : String(flags[name]);
    const fromFile = Array.isArray(file[def.key]) ? `[${(file[def.key] as unknown[]).join(' ')}]` : String(file[def.key]);
    conflicts.push(`${def.key}: (from flag: ${fromFlag}, from file: ${fromFile})`);
  }
  if (conflicts.length) throw new ConfigError(`unable to configure the daemon with file ${configFile}: the following directives are specified both as a flag and in the configuration file: ${conflicts.join(', ')}`);

  const pick = <T>(flag: string, type: 'string' | 'boolean' | 'string[]'): T | undefined => {
    if (flags[flag] !== undefined) return flags[flag] as T;
    const key = (FLAGS as Record<string, { key?: string }>)[flag].key!;
    return key in file ? expect<T>(configFile, key, file[key], type) : undefined;
  };

  const execRoot = resolve(pick<string>('exec-root', 'string') ?? DEFAULT_EXEC_ROOT);
  const dataRoot = resolve(pick<string>('data-root', 'string') ?? DEFAULT_DATA_ROOT);
  const debug = pick<boolean>('debug', 'boolean') ?? false;
  const logLevel = pick<string>('log-level', 'string') ?? (debug ? 'debug' : 'info');
  if (!(LOG_LEVELS as string[]).includes(logLevel)) throw new ConfigError(`unable to configure the daemon: invalid log level ${JSON.stringify(logLevel)}: use one of ${LOG_LEVELS.join(', ')}`);
  const hosts = pick<string[]>('host', 'string[]') ?? [];

  const runtimes: DaemonConfig['runtimes'] = {};
  const bundled = join(repoRoot, 'native', 'build', 'berth-runtime');
  if (await exists(bundled)) runtimes.berth = { path: bundled };
  for (const p of ['/usr/sbin/runc', '/usr/bin/runc']) if (!runtimes.runc && await exists(p)) runtimes.runc = { path: p };
  for (const p of ['/usr/bin/crun', '/usr/sbin/crun']) if (!runtimes.crun && await exists(p)) runtimes.crun = { path: p };
  if (file.runtimes !== undefined) {
    for (const [name, r] of Object.entries(expect<Record<string, any>>(configFile, 'runtimes', file.runtimes, 'object'))) {
      if (!r || typeof r.path !== 'string') throw new ConfigError(`unable to configure the daemon with file ${configFile}: runtime ${name} needs a "path"`);
      if (name === 'berth') throw new ConfigError(`unable to configure the daemon with file ${configFile}: runtime name "berth" is reserved`);
      runtimes[name] = { path: r.path, ...(Array.isArray(r.runtimeArgs) ? { runtimeArgs: r.runtimeArgs.map(String) } : {}) };
    }
  }
  const defaultRuntime = pick<string>('default-runtime', 'string') ?? (runtimes.berth ? 'berth' : 'runc');
  if (!runtimes[defaultRuntime]) throw new ConfigError(`unable to configure the daemon: default runtime ${JSON.stringify(defaultRuntime)} is not configured (known: ${Object.keys(runtimes).join(', ') || 'none'})`);

  if (file['registry-mirrors'] !== undefined) {
    const list = expect<string[]>(configFile, 'registry-mirrors', file['registry-mirrors'], 'string[]');
    file['registry-mirrors'] = list.map((m) => validMirror(m));
  }

  const verify = pick<boolean>('tlsverify', 'boolean') ?? false;
  const tls: TlsConfig = {
    tls: verify || (pick<boolean>('tls', 'boolean') ?? false),
    verify,
    ca: pick<string>('tlscacert', 'string'),
    cert: pick<string>('tlscert', 'string'),
    key: pick<string>('tlskey', 'string'),
  };
  if (tls.tls && (!tls.cert || !tls.key)) throw new ConfigError('unable to configure the daemon: --tls needs --tlscert and --tlskey');
  if (tls.verify && !tls.ca) throw new ConfigError('unable to configure the daemon: --tlsverify needs --tlscacert');

  return {
    kind: 'run',
    config: {
      dataRoot, execRoot,
      hosts: hosts.length ? hosts : [`unix://${join(execRoot, 'berth.sock')}`],
      logLevel, runtimes, defaultRuntime, file,
      pidfile: resolve(pick<string>('pidfile', 'string') ?? join(execRoot, 'berthd.pid')),
      configFile,
      tls,
    },
  };
}
