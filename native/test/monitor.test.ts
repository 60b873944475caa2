// berth-monitor through its TypeScript client, with a real OCI runtime (Debian's runc; also
// native/build/berth-runtime for the key test when it is built and works).
import test, { type ExecutionContext } from 'ava';
import { execFileSync, spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { mkdir, readFile, readdir, rmdir, writeFile, stat } from 'node:fs/promises';
import { randomBytes } from 'node:crypto';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  spawnMonitor, attach, readExitFile, waitExit, startContainer, killContainer,
  type SpawnMonitorOptions, type MonitorConnection,
} from '../../src/oci/monitor-client.js';
import { makeBundle, haveBusybox, processSpec, type BundleOptions, type Bundle } from './bundle.js';

const REPO = resolve(dirname(fileURLToPath(import.meta.url)), '../../..');
const MONITOR = join(REPO, 'native/build/berth-monitor');
const RUNC = '/usr/sbin/runc';
const BERTH_RUNTIME = join(REPO, 'native/build/berth-runtime');

const missing = [
  !existsSync(MONITOR) && `${MONITOR} is not built (make -C native)`,
  !existsSync(RUNC) && 'runc is not installed',
  process.getuid?.() !== 0 && 'needs root (namespaces)',
].filter(Boolean);
const rtest = missing.length ? test.skip : test.serial;
if (missing.length) test('monitor tests skipped', (t) => { t.log(`skipped: ${missing.join('; ')}`); t.pass(); });

interface Case {
  b: Bundle; id: string; state: string; root: string; logPath: string; runtime: string;
  monitorPid: number; pid: number;
  start(): Promise<void>;
}

function alive(pid: number): boolean {
  try {
    // A zombie or a reused pid would not be our monitor.
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes('berth-monitor');
  } catch { return false; }
}

async function until(cond: () => boolean | Promise<boolean>, ms = 5000): Promise<boolean> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (await cond()) return true;
    await new Promise((r) => setTimeout(r, 25));
  }
  return cond();
}

function runtimeList(runtime: string, root: string): string[] {
  try {
    const out = execFileSync(runtime, ['--root', root, 'list', '-q'], { encoding: 'utf8' });
    return out.split('\n').filter(Boolean);
  } catch { return []; }
}

async function newCase(t: ExecutionContext, bo: BundleOptions, mo: Partial<SpawnMonitorOptions> = {}, runtime = RUNC): Promise<Case> {
  const b = await makeBundle(bo);
  const id = `mt-${randomBytes(5).toString('hex')}`;
  const state = join(b.dir, 'state');
  const root = join(b.dir, 'runtime-root');
  const logPath = join(b.dir, `${id}-json.log`);
  await mkdir(state);
  await mkdir(root);
  const c = { b, id, state, root, logPath, runtime, monitorPid: 0, pid: 0, start: () => startContainer(runtime, root, id) };
  t.teardown(async () => {
    if (c.monitorPid && alive(c.monitorPid)) process.kill(c.monitorPid, 'SIGKILL');
    try { execFileSync(runtime, ['--root', root, 'delete', '--force', id], { stdio: 'ignore' }); } catch { /* gone */ }
    await b.cleanup();
  });
  const spawned = await spawnMonitor({
    monitorPath: MONITOR, id, dir: state, runtimePath: runtime, runtimeRoot: root, bundle: b.bundle, logPath, ...mo,
  });
  c.monitorPid = spawned.monitorPid;
  c.pid = spawned.pid;
  return c;
}

/** Everything is gone afterwards: monitor, container, runtime state. */
async function assertNoLeftovers(t: ExecutionContext, c: Case): Promise<void> {
  t.true(await until(() => !alive(c.monitorPid)), 'monitor exited');
  t.false(existsSync(`/proc/${c.pid}`) && readFileSync(`/proc/${c.pid}/status`, 'utf8').includes('busybox'), 'container process gone');
  t.deepEqual(runtimeList(c.runtime, c.root), [], 'runtime deleted the container');
}

type LogEntry = { log: string; stream: string; time: string };
async function readLog(path: string): Promise<LogEntry[]> {
  const text = await readFile(path, 'utf8');
  return text.split('\n').filter(Boolean).map((l) => JSON.parse(l) as LogEntry);
}

function collect(conn: MonitorConnection): { out: () => string; err: () => string } {
  const out: Buffer[] = [];
  const err: Buffer[] = [];
  conn.on('stdout', (b: Buffer) => out.push(b));
  conn.on('stderr', (b: Buffer) => err.push(b));
  return { out: () => Buffer.concat(out).toString(), err: () => Buffer.concat(err).toString() };
}

async function echoCase(t: ExecutionContext, runtime: string): Promise<void> {
  const c = await newCase(t, { args: ['sh', '-c', 'echo hello; echo oops >&2; echo bye'] }, {}, runtime);
  t.true(c.pid > 0);
  t.is(readFileSync(join(c.state, 'monitor.pid'), 'utf8').trim(), String(c.monitorPid));
  const conn = await attach(c.state, { stdout: true, stderr: true, stdin: false, exit: true });
  const got = collect(conn);
  await c.start();
  const st = await conn.exit;
  t.like(st, { exitCode: 0, signal: null, oomKilled: false });
  t.regex(st!.finishedAt, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{1,9})?Z$/);
  t.is(got.out(), 'hello\nbye\n');
  t.is(got.err(), 'oops\n');
  const log = await readLog(c.logPath);
  // stdout and stderr are separate pipes: order only holds within a stream.
  t.is(log.length, 3);
  t.deepEqual(log.filter((e) => e.stream === 'stdout').map((e) => e.log), ['hello\n', 'bye\n']);
  t.deepEqual(log.filter((e) => e.stream === 'stderr').map((e) => e.log), ['oops\n']);
  for (const e of log) t.regex(e.time, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{1,9})?Z$/);
  t.deepEqual(await readExitFile(c.state), st);
  await assertNoLeftovers(t, c);
}

rtest('echo: json-file log and STDOUT/STDERR frames (runc)', async (t) => {
  if (!(await haveBusybox())) return t.log('skipped: busybox-static missing');
  await echoCase(t, RUNC);
});

rtest('echo with berth-runtime', async (t) => {
  let works = false;
  try { execFileSync(BERTH_RUNTIME, ['--version'], { stdio: 'ignore' }); works = true; } catch { /* absent or broken */ }
  if (!works) { t.log(`skipped: ${BERTH_RUNTIME} is not built or does not run`); t.pass(); return; }
  await echoCase(t, BERTH_RUNTIME);
});

rtest('create failure rejects with the runtime error and leaves nothing', async (t) => {
  const b = await makeBundle({ args: ['/no/such/binary'] });
  t.teardown(() => b.cleanup());
  const state = join(b.dir, 'state');
  await mkdir(state);
  const err = await t.throwsAsync(spawnMonitor({
    monitorPath: MONITOR, id: 'mt-fail', dir: state, runtimePath: RUNC, runtimeRoot: join(b.dir, 'root'), bundle: join(b.dir, 'missing-bundle'),
  }));
  t.regex(err!.message, /missing-bundle|no such file/i);
  t.false(existsSync(join(state, 'exit.json')));
  t.false(existsSync(join(state, 'attach.sock')));
});

rtest('json escaping and long lines as the Engine writes them', async (t) => {
  // < > & tab, a control byte, an invalid UTF-8 byte, valid UTF-8, then a 40000-byte line and a partial last line.
  const c = await newCase(t, { args: ['sh', '-c', `printf '<a>&\\t\\001\\377é"\\\\\\n'; head -c 40000 /dev/zero | tr '\\0' x; echo; printf tail`] });
  await c.start();
  const st = await waitExit(c.state);
  t.is(st.exitCode, 0);
  const raw = (await readFile(c.logPath, 'utf8')).split('\n');
  t.true(raw[0].startsWith('{"log":"\\u003ca\\u003e\\u0026\\u0009\\u0001\\ufffdé\\"\\\\\\n","stream":"stdout","time":"'), raw[0]);
  const log = await readLog(c.logPath);
  t.deepEqual(log.slice(1).map((e) => e.log.length), [16384, 16384, 40000 - 32768 + 1, 4]);
  t.is(log[3].log.at(-1), '\n');
  t.is(log[4].log, 'tail');
  await assertNoLeftovers(t, c);
});

rtest('stdin is forwarded; CLOSE_STDIN ends it', async (t) => {
  const c = await newCase(t, { args: ['wc', '-c'] }, { stdin: true });
  const conn = await attach(c.state, { stdout: true, stderr: true, stdin: true, exit: true });
  const got = collect(conn);
  await c.start();
  conn.writeStdin(Buffer.from('data\n'));
  conn.closeStdin();
  const st = await conn.exit;
  t.is(st?.exitCode, 0);
  t.is(got.out().trim(), '5');
  await assertNoLeftovers(t, c);
});

rtest('stdin-once: the first stdin client detaching closes stdin', async (t) => {
  const c = await newCase(t, { args: ['cat'] }, { stdin: true, stdinOnce: true });
  const watcher = await attach(c.state, { stdout: false, stderr: false, stdin: false, exit: true });
  const conn = await attach(c.state, { stdout: true, stderr: false, stdin: true, exit: false });
  const got = collect(conn);
  await c.start();
  conn.writeStdin(Buffer.from('once\n'));
  t.true(await until(() => got.out() === 'once\n'));
  conn.close();
  const st = await watcher.exit;
  t.is(st?.exitCode, 0, 'cat saw EOF');
  t.deepEqual((await readLog(c.logPath)).map((e) => e.log), ['once\n']);
  await assertNoLeftovers(t, c);
});

rtest('tty: one raw stream, resize, \\r\\n kept in the log', async (t) => {
  const c = await newCase(t, { args: ['sh', '-c', 'stty size; read x; stty size; echo "got $x"'], terminal: true }, { tty: true, stdin: true });
  const conn = await attach(c.state, { stdout: true, stderr: true, stdin: true, exit: true });
  const got = collect(conn);
  conn.resize(30, 100);
  await c.start();
  t.true(await until(() => got.out().includes('30 100')), got.out());
  conn.resize(40, 120);
  await new Promise((r) => setTimeout(r, 100));
  conn.writeStdin(Buffer.from('go\n'));
  const st = await conn.exit;
  t.is(st?.exitCode, 0);
  t.regex(got.out(), /30 100\r\n[\s\S]*40 120\r\ngot go\r\n/);
  t.is(got.err(), '');
  const log = await readLog(c.logPath);
  t.true(log.every((e) => e.stream === 'stdout'));
  t.true(log.some((e) => e.log === '40 120\r\n'), JSON.stringify(log));
  await assertNoLeftovers(t, c);
});

rtest('tty: closing stdin sends EOF', async (t) => {
  const c = await newCase(t, { args: ['cat'], terminal: true }, { tty: true, stdin: true });
  const conn = await attach(c.state, { stdout: true, stderr: false, stdin: true, exit: true });
  await c.start();
  conn.writeStdin(Buffer.from('partial'));
  conn.closeStdin();
  const st = await conn.exit;
  t.is(st?.exitCode, 0);
  await assertNoLeftovers(t, c);
});

rtest('exit codes: 3, SIGKILL = 137, SIGTERM = 143', async (t) => {
  const c3 = await newCase(t, { args: ['sh', '-c', 'exit 3'] });
  await c3.start();
  t.like(await waitExit(c3.state), { exitCode: 3, signal: null });

  const c9 = await newCase(t, { args: ['sleep', '100'] });
  await c9.start();
  await killContainer(RUNC, c9.root, c9.id, 'SIGKILL');
  t.like(await waitExit(c9.state), { exitCode: 137, signal: 9, oomKilled: false });

  // Without a pid namespace the process is not an init, so SIGTERM's default action applies.
  const c15 = await newCase(t, { args: ['sleep', '100'], namespaces: ['mount', 'ipc', 'uts', 'network'] });
  await c15.start();
  await killContainer(RUNC, c15.root, c15.id, 15);
  t.like(await waitExit(c15.state), { exitCode: 143, signal: 15 });
  for (const c of [c3, c9, c15]) await assertNoLeftovers(t, c);
});

rtest('output produced with no client attached is in the log only', async (t) => {
  const c = await newCase(t, { args: ['sh', '-c', 'echo unseen; sleep 0.3; echo later'] });
  await c.start();
  await new Promise((r) => setTimeout(r, 100));
  const conn = await attach(c.state, { stdout: true, stderr: true, stdin: false, exit: true });
  const got = collect(conn);
  await conn.exit;
  t.is(got.out(), 'later\n', 'no replay of earlier output');
  t.deepEqual((await readLog(c.logPath)).map((e) => e.log), ['unseen\n', 'later\n']);
});

rtest('the monitor outlives the process that spawned it', async (t) => {
  const b = await makeBundle({ args: ['sh', '-c', 'sleep 0.5; echo survived; exit 4'] });
  const id = `mt-${randomBytes(5).toString('hex')}`;
  const state = join(b.dir, 'state');
  const root = join(b.dir, 'runtime-root');
  await mkdir(state);
  let monitorPid = 0;
  t.teardown(async () => {
    if (monitorPid && alive(monitorPid)) process.kill(monitorPid, 'SIGKILL');
    try { execFileSync(RUNC, ['--root', root, 'delete', '--force', id], { stdio: 'ignore' }); } catch { /* gone */ }
    await b.cleanup();
  });
  const client = join(REPO, 'dist/src/oci/monitor-client.js');
  const script = `import('${client}').then(async (m) => {
    const r = await m.spawnMonitor(${JSON.stringify({ monitorPath: MONITOR, id, dir: state, runtimePath: RUNC, runtimeRoot: root, bundle: b.bundle, logPath: join(b.dir, 'log.json') })});
    await m.startContainer(${JSON.stringify(RUNC)}, ${JSON.stringify(root)}, ${JSON.stringify(id)});
    console.log(JSON.stringify(r));
    setInterval(() => {}, 1000);
  });`;
  const spawner = spawn(process.execPath, ['--input-type=module', '-e', script], { stdio: ['ignore', 'pipe', 'inherit'] });
  const line = await new Promise<string>((res) => spawner.stdout.once('data', (d: Buffer) => res(d.toString())));
  monitorPid = (JSON.parse(line) as { monitorPid: number }).monitorPid;
  spawner.kill('SIGKILL');
  await new Promise((r) => spawner.once('exit', r));
  t.true(alive(monitorPid), 'monitor alive after its spawner was killed');
  t.true(await until(() => existsSync(join(state, 'exit.json'))));
  t.like(await readExitFile(state), { exitCode: 4 });
  t.deepEqual((await readLog(join(b.dir, 'log.json'))).map((e) => e.log), ['survived\n']);
  t.true(await until(() => !alive(monitorPid)));
  t.deepEqual(runtimeList(RUNC, root), []);
});

rtest('exec mode with --wait-start', async (t) => {
  const c = await newCase(t, { args: ['sleep', '100'] });
  await c.start();
  const execDir = join(c.state, 'exec', 'e1');
  await mkdir(execDir, { recursive: true });
  const proc = join(execDir, 'process.json');
  await writeFile(proc, JSON.stringify(processSpec(['sh', '-c', 'echo exec-out; echo exec-err >&2; exit 7'])));
  const ex = await spawnMonitor({
    monitorPath: MONITOR, id: c.id, dir: execDir, runtimePath: RUNC, runtimeRoot: c.root, execProcessFile: proc, waitStart: true,
  });
  t.is(ex.pid, 0, 'not started yet');
  const conn = await attach(execDir, { stdout: true, stderr: true, stdin: false, exit: true });
  const got = collect(conn);
  await new Promise((r) => setTimeout(r, 200));
  t.is(got.out(), '', 'nothing runs before START');
  conn.start();
  const st = await conn.exit;
  t.like(st, { exitCode: 7, signal: null });
  t.is(got.out(), 'exec-out\n');
  t.is(got.err(), 'exec-err\n');
  t.true(await until(() => !alive(ex.monitorPid)));
  t.deepEqual(runtimeList(RUNC, c.root), [c.id], 'an exec leaves its container running');
  t.false(existsSync(c.logPath) && (await readFile(c.logPath, 'utf8')).includes('exec-out'), 'exec output is not logged');
  await killContainer(RUNC, c.root, c.id, 'KILL');
  t.is((await waitExit(c.state)).exitCode, 137);
  await assertNoLeftovers(t, c);
});

rtest('exec mode: runs at once without --wait-start; tty exec', async (t) => {
  const c = await newCase(t, { args: ['sleep', '100'] });
  await c.start();
  const execDir = join(c.state, 'exec', 'e2');
  await mkdir(execDir, { recursive: true });
  const proc = join(execDir, 'process.json');
  await writeFile(proc, JSON.stringify(processSpec(['sh', '-c', 'tty; exit 0'], { terminal: true })));
  const ex = await spawnMonitor({
    monitorPath: MONITOR, id: c.id, dir: execDir, runtimePath: RUNC, runtimeRoot: c.root, execProcessFile: proc, tty: true,
  });
  t.true(ex.pid > 0);
  t.is((await waitExit(execDir)).exitCode, 0);
  await killContainer(RUNC, c.root, c.id, 'KILL');
  await waitExit(c.state);
  await assertNoLeftovers(t, c);
});

rtest('log rotation: max-size and max-file', async (t) => {
  // 300 lines of ~100 bytes (each entry ~170 bytes of JSON).
  const c = await newCase(t, { args: ['sh', '-c', 'i=0; while [ $i -lt 300 ]; do printf "%099d\\n" $i; i=$((i+1)); done'] },
    { logMaxSize: 4000, logMaxFile: 3 });
  await c.start();
  t.is((await waitExit(c.state)).exitCode, 0);
  const names = (await readdir(c.b.dir)).filter((n) => n.startsWith(`${c.id}-json.log`)).sort();
  t.deepEqual(names, [`${c.id}-json.log`, `${c.id}-json.log.1`, `${c.id}-json.log.2`]);
  for (const n of names) t.true((await stat(join(c.b.dir, n))).size < 4000 + 200, n);
  const newest = await readLog(c.logPath);
  t.is(newest.at(-1)!.log, `${'0'.repeat(96)}299\n`);
  const older = await readLog(`${c.logPath}.1`);
  t.is(Number(older.at(-1)!.log) + 1, Number(newest[0].log), 'rotation lost no line');
});

rtest('OOM kill is reported', async (t) => {
  if (!existsSync('/sys/fs/cgroup/memory')) { t.log('skipped: no cgroup v1 memory controller'); t.pass(); return; }
  // runc removes the container's cgroup but not the parent made for the test.
  t.teardown(async () => {
    for (const ctrl of await readdir('/sys/fs/cgroup').catch(() => [] as string[])) {
      await rmdir(join('/sys/fs/cgroup', ctrl, 'berth-monitor-test')).catch(() => {});
    }
  });
  const c = await newCase(t, {
    args: ['sh', '-c', 'x=a; while true; do x="$x$x"; done'],
    cgroupsPath: `/berth-monitor-test/${randomBytes(4).toString('hex')}`, memoryLimit: 16 * 1024 * 1024,
  });
  await c.start();
  const st = await waitExit(c.state);
  t.like(st, { exitCode: 137, signal: 9, oomKilled: true });
  await assertNoLeftovers(t, c);
});

rtest('memory: VmRSS of a monitor watching a sleep container', async (t) => {
  const c = await newCase(t, { args: ['sleep', '100'] });
  await c.start();
  const conn = await attach(c.state, { stdout: true, stderr: true, stdin: false, exit: true });
  await new Promise((r) => setTimeout(r, 200));
  const status = readFileSync(`/proc/${c.monitorPid}/status`, 'utf8');
  const rssKb = Number(/VmRSS:\s+(\d+) kB/.exec(status)?.[1]);
  t.log(`berth-monitor VmRSS: ${rssKb} kB`);
  t.true(rssKb > 0 && rssKb < 1024, `VmRSS ${rssKb} kB`);
  await killContainer(RUNC, c.root, c.id, 'KILL');
  t.is((await conn.exit)?.exitCode, 137);
  await assertNoLeftovers(t, c);
});

rtest('a state dir longer than sun_path works (attach and console socket)', async (t) => {
  const b = await makeBundle({ args: ['sh', '-c', 'read x; echo "in:$x"'], terminal: true });
  const id = `mt-${randomBytes(5).toString('hex')}`;
  const state = join(b.dir, 'exec', 'a'.repeat(64), 'exec', 'b'.repeat(64));
  const root = join(b.dir, 'runtime-root');
  await mkdir(state, { recursive: true });
  t.true(join(state, 'attach.sock').length > 108);
  let monitorPid = 0;
  t.teardown(async () => {
    if (monitorPid && alive(monitorPid)) process.kill(monitorPid, 'SIGKILL');
    try { execFileSync(RUNC, ['--root', root, 'delete', '--force', id], { stdio: 'ignore' }); } catch { /* gone */ }
    await b.cleanup();
  });
  const r = await spawnMonitor({ monitorPath: MONITOR, id, dir: state, runtimePath: RUNC, runtimeRoot: root, bundle: b.bundle, tty: true, stdin: true });
  monitorPid = r.monitorPid;
  const conn = await attach(state, { stdout: true, stderr: false, stdin: true, exit: true });
  const got = collect(conn);
  await startContainer(RUNC, root, id);
  conn.writeStdin(Buffer.from('x\n'));
  t.is((await conn.exit)?.exitCode, 0);
  t.regex(got.out(), /in:x\r\n/);
  t.true(await until(() => !alive(monitorPid)));
});
