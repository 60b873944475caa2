// Test harness: starts a real berthd (the built dist/) on a private socket and data/exec roots
// under /tmp, and drives it with the stock docker CLI or raw HTTP over the socket (undici).
//   const d = await startDaemon(); await d.docker(['version']); await d.stop();
import { spawn, type ChildProcess } from 'node:child_process';
import { appendFile, mkdtemp, readFile, readdir, rm, writeFile, mkdir, symlink } from 'node:fs/promises';
import { removeHostNetworkObjects } from '../src/services/networks.js';
import { homedir } from 'node:os';
import { openSync, closeSync, existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { Agent, request as undiciRequest } from 'undici';

const execFileP = promisify(execFile);
/** dist/compat-tests/harness.js -> repository root */
export const REPO_ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
export const BERTHD = join(REPO_ROOT, 'dist', 'src', 'cli', 'berthd.js');

export interface DockerResult { code: number; stdout: string; stderr: string }
export interface DockerOptions { input?: string | Buffer; env?: Record<string, string>; timeoutMs?: number }
export interface HttpResult { status: number; headers: Record<string, string>; body: string; json?: any }

export interface StartOptions {
  /** Extra berthd flags. */
  args?: string[];
  /** daemon.json contents (written to a temp file and passed with --config-file). */
  config?: Record<string, unknown>;
  logLevel?: string;
  env?: Record<string, string>;
  /** Data-root to use instead of <dir>/data (e.g. on a small filesystem); the caller removes it. */
  dataRoot?: string;
  /** Milliseconds to wait for the first OK /_ping (default 20 s). */
  readyTimeoutMs?: number;
  /** Options for node itself, before the daemon's script (e.g. --cpu-prof when profiling). */
  nodeArgs?: string[];
}

export interface Daemon {
  /** Path of the API socket. */
  socket: string;
  /** DOCKER_HOST value: unix://<socket>. */
  host: string;
  /** Temp directory holding data/, exec/, daemon.json, docker-config/, daemon.log. */
  dir: string;
  dataRoot: string;
  execRoot: string;
  /** PID of the current berthd process (changes on restart). */
  pid: number;
  /** Runs the stock docker CLI against this daemon; never throws on a non-zero exit. */
  docker(args: string[], opts?: DockerOptions): Promise<DockerResult>;
  /** One HTTP request over the socket. A non-string, non-Buffer body is sent as JSON. */
  request(method: string, path: string, body?: unknown, headers?: Record<string, string>): Promise<HttpResult>;
  /** The daemon's stdout+stderr so far. */
  logs(): Promise<string>;
  /** SIGTERM, wait for exit; then removes the temp dirs unless keep is set. */
  stop(opts?: { keep?: boolean }): Promise<number | null>;
  /** SIGKILL (a crash); the temp dirs stay for restart(). */
  kill(): Promise<void>;
  /** Stops (SIGTERM) if running, then starts again on the same dirs and socket. */
  restart(): Promise<void>;
}

function waitExit(child: ChildProcess, ms: number): Promise<number | null> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve(child.exitCode);
  return new Promise((resolve) => {
    const t = setTimeout(() => { child.kill('SIGKILL'); }, ms);
    child.once('exit', (code) => { clearTimeout(t); resolve(code); });
  });
}

/**
 * Appends the operations this daemon answered successfully to dist/ops-seen.log, so that
 * docs/compatibility.md can say which operations the test run exercised.
 */
async function recordOperations(logFile: string): Promise<void> {
  const text = await readFile(logFile, 'utf8').catch(() => '');
  const ops = new Set<string>();
  for (const m of text.matchAll(/msg="request" .*?op="([A-Za-z]+)" status=(\d+)/g)) if (Number(m[2]) < 400) ops.add(m[1]!);
  if (ops.size) await appendFile(join(REPO_ROOT, 'dist', 'ops-seen.log'), [...ops].join('\n') + '\n').catch(() => {});
}

/** The daemon's bridges and firewall chains: a test daemon's are removed with it. */
async function removeNetworkLeftovers(dataRoot: string): Promise<void> {
  const recDir = join(dataRoot, 'network', 'records');
  const bridges: string[] = [];
  for (const f of await readdir(recDir).catch(() => [] as string[])) {
    try {
      const n = JSON.parse(await readFile(join(recDir, f), 'utf8'));
      if (n.Driver === 'bridge') bridges.push(n.Options?.['com.docker.network.bridge.name'] || `br-${String(n.Id).slice(0, 12)}`);
    } catch { /* not a record */ }
  }
  await removeHostNetworkObjects(dataRoot, bridges).catch(() => {});
}

/** Lazily unmounts anything left mounted below dir (overlay rootfs of leftover containers). */
async function unmountBelow(dir: string): Promise<void> {
  const text = await readFile('/proc/self/mountinfo', 'utf8').catch(() => '');
  const points = text.split('\n').map((l) => l.split(' ')[4]).filter((p) => p && (p === dir || p.startsWith(dir + '/')));
  for (const p of points.sort((a, b) => b.length - a.length)) await execFileP('umount', ['-l', p]).catch(() => {});
}

export async function startDaemon(opts: StartOptions = {}): Promise<Daemon> {
  const dir = await mkdtemp('/tmp/bt-');
  const dataRoot = opts.dataRoot ?? join(dir, 'data');
  const execRoot = join(dir, 'exec');
  const socket = join(dir, 'api.sock');
  const configFile = join(dir, 'daemon.json');
  const dockerConfig = join(dir, 'docker-config');
  const logFile = join(dir, 'daemon.log');
  await mkdir(dockerConfig);
  // The CLI looks for plugins (compose) under DOCKER_CONFIG: share the user's plugin directory.
  const plugins = join(homedir(), '.docker', 'cli-plugins');
  if (existsSync(plugins)) await symlink(plugins, join(dockerConfig, 'cli-plugins'));
  await writeFile(configFile, JSON.stringify(opts.config ?? {}));
  const agent = new Agent({ connect: { socketPath: socket } });
  let child: ChildProcess | undefined;

  const request = async (method: string, path: string, body?: unknown, headers: Record<string, string> = {}): Promise<HttpResult> => {
    let payload: string | Buffer | undefined;
    const h: Record<string, string> = { host: 'api.moby.localhost', ...headers };
    if (typeof body === 'string' || Buffer.isBuffer(body)) payload = body;
    else if (body !== undefined) { payload = JSON.stringify(body); h['content-type'] ??= 'application/json'; }
    const res = await undiciRequest(`http://localhost${path}`, { method: method as any, body: payload, headers: h, dispatcher: agent });
    const text = await res.body.text();
    const hdrs: Record<string, string> = {};
    for (const [k, v] of Object.entries(res.headers)) hdrs[k] = Array.isArray(v) ? v.join(', ') : String(v);
    let json: unknown;
    if ((hdrs['content-type'] ?? '').includes('json') && text.trim()) { try { json = JSON.parse(text); } catch { /* streamed NDJSON */ } }
    return { status: res.statusCode, headers: hdrs, body: text, json };
  };

  const launch = async (): Promise<void> => {
    const out = openSync(logFile, 'a');
    const args = [BERTHD, '-H', `unix://${socket}`, '--data-root', dataRoot, '--exec-root', execRoot,
      '--pidfile', join(dir, 'berthd.pid'), '--config-file', configFile, '--log-level', opts.logLevel ?? 'debug', ...(opts.args ?? [])];
    const c = spawn(process.execPath, [...(opts.nodeArgs ?? []), ...args], { stdio: ['ignore', out, out], env: { ...process.env, ...opts.env } });
    closeSync(out);
    child = c;
    const deadline = Date.now() + (opts.readyTimeoutMs ?? 20_000);
    while (true) {
      if (c.exitCode !== null || c.signalCode !== null) throw new Error(`berthd exited (${c.exitCode ?? c.signalCode}) before it was ready:\n${await readFile(logFile, 'utf8')}`);
      try {
        const r = await request('GET', '/_ping');
        if (r.status === 200 && r.body === 'OK') return;
      } catch { /* not listening yet */ }
      if (Date.now() > deadline) {
        c.kill('SIGKILL');
        throw new Error(`berthd did not answer /_ping within ${opts.readyTimeoutMs ?? 20_000} ms:\n${await readFile(logFile, 'utf8')}`);
      }
      await new Promise((r) => setTimeout(r, 15));
    }
  };

  const d: Daemon = {
    socket,
    host: `unix://${socket}`,
    dir,
    dataRoot,
    execRoot,
    pid: 0,
    docker: (args, o = {}) => new Promise((resolve) => {
      const env: Record<string, string> = { ...(process.env as Record<string, string>), DOCKER_HOST: `unix://${socket}`, DOCKER_CONFIG: dockerConfig, ...o.env };
      // The caller's shell must not leak in: drop client settings the test did not ask for.
      for (const k of ['DOCKER_CONTEXT', 'DOCKER_TLS_VERIFY', 'DOCKER_CERT_PATH', 'DOCKER_API_VERSION', 'DOCKER_TLS']) if (!o.env?.[k]) delete env[k];
      const p = spawn('docker', args, { env, stdio: ['pipe', 'pipe', 'pipe'] });
      const out: Buffer[] = [], err: Buffer[] = [];
      p.stdout.on('data', (b: Buffer) => out.push(b));
      p.stderr.on('data', (b: Buffer) => err.push(b));
      p.stdin.on('error', () => {});
      p.stdin.end(o.input);
      const t = setTimeout(() => { err.push(Buffer.from(`\n[harness] docker ${args.join(' ')} timed out after ${o.timeoutMs ?? 60_000} ms\n`)); p.kill('SIGKILL'); }, o.timeoutMs ?? 60_000);
      p.on('close', (code) => {
        clearTimeout(t);
        resolve({ code: code ?? -1, stdout: Buffer.concat(out).toString(), stderr: Buffer.concat(err).toString() });
      });
    }),
    request,
    logs: () => readFile(logFile, 'utf8').catch(() => ''),
    stop: async ({ keep = false } = {}) => {
      let code: number | null = null;
      if (child) {
        child.kill('SIGTERM');
        code = await waitExit(child, 40_000); // the daemon stops its containers first (shutdown-timeout 15 s)
      }
      if (!keep) {
        await agent.close().catch(() => {});
        await recordOperations(logFile);
        await removeNetworkLeftovers(dataRoot);
        await unmountBelow(dir);
        await rm(dir, { recursive: true, force: true }).catch(() => {});
      }
      return code;
    },
    kill: async () => {
      if (!child) return;
      child.kill('SIGKILL');
      await waitExit(child, 5_000);
    },
    restart: async () => {
      if (child && child.exitCode === null && child.signalCode === null) {
        child.kill('SIGTERM');
        await waitExit(child, 15_000);
      }
      await launch();
      d.pid = child!.pid!;
    },
  };
  try {
    await launch();
  } catch (e) {
    await d.stop();
    throw e;
  }
  d.pid = child!.pid!;
  return d;
}

/**
 * For ava: one daemon for the whole test file.
 *   const daemon = useDaemon(test); test('x', async t => { await daemon().docker([...]) });
 */
export function useDaemon(test: { before: (fn: () => Promise<void>) => void; after: { always: (fn: () => Promise<void>) => void } }, opts?: StartOptions): () => Daemon {
  let d: Daemon | undefined;
  test.before(async () => { d = await startDaemon(opts); });
  test.after.always(async () => { await d?.stop(); });
  return () => {
    if (!d) throw new Error('daemon not started (useDaemon registers a test.before hook)');
    return d;
  };
}
