// docker run end to end through the stock CLI: create, start, attach, wait, logs, exec, stop, rm.
import test from 'ava';
import { spawn } from 'node:child_process';
import type { Daemon } from './harness.js';
import { removeAllAndStop, startDaemonWithBusybox } from './images-fixture.js';

let d: Daemon;

test.before(async () => { d = await startDaemonWithBusybox(); });
test.after.always(() => removeAllAndStop(d));

test('docker run --rm busybox echo hi prints hi and leaves nothing behind', async (t) => {
  const r = await d.docker(['run', '--rm', '--name', 'echo-hi', 'busybox', 'echo', 'hi']);
  t.is(r.stderr, '');
  t.is(r.stdout, 'hi\n');
  t.is(r.code, 0);
  // other tests run containers at the same time: look for this one by name
  const ps = await d.docker(['ps', '-aq', '--filter', 'name=^echo-hi$']);
  t.is(ps.stdout.trim(), '');
});

test('a command that cannot run: 127/126 with the runtime\'s reason, and --rm leaves nothing', async (t) => {
  const cases: Array<[string[], number, RegExp]> = [
    [['/nonexistent'], 127, /no such file or directory/],
    [['nonexistent-cmd'], 127, /executable file not found in \$PATH/],
    [['/etc/passwd'], 126, /permission denied/],
  ];
  for (const [cmd, code, re] of cases) {
    const name = `cannot-run-${code}-${cmd[0].replace(/\W/g, '')}`;
    const r = await d.docker(['run', '--rm', '--name', name, 'busybox', ...cmd]);
    t.is(r.code, code, r.stderr);
    t.regex(r.stderr, re);
    t.is((await d.docker(['ps', '-aq', '--filter', `name=^${name}$`])).stdout.trim(), '');
  }
});

test('berth-runtime is the default runtime; --runtime runc still runs a container', async (t) => {
  t.is((await d.docker(['info', '--format', '{{.DefaultRuntime}}'])).stdout.trim(), 'berth');
  const runtimes = JSON.parse((await d.docker(['info', '--format', '{{json .Runtimes}}'])).stdout);
  t.truthy(runtimes.berth);
  if (!runtimes.runc) return t.log('runc is not installed: the --runtime runc half is skipped');
  const r = await d.docker(['run', '--rm', '--runtime', 'runc', 'busybox', 'echo', 'via-runc']);
  t.is(r.stdout, 'via-runc\n', r.stderr);
  const bad = await d.docker(['run', '--rm', '--runtime', 'nope', 'busybox', 'true']);
  t.not(bad.code, 0);
  t.regex(bad.stderr, /unknown or invalid runtime name: nope/);
});

test('stdin is forwarded: echo data | docker run -i --rm busybox wc -c', async (t) => {
  const r = await d.docker(['run', '-i', '--rm', 'busybox', 'wc', '-c'], { input: 'data\n' });
  t.is(r.stdout.trim(), '5');
  t.is(r.code, 0);
});

test('stdout and stderr stay separate', async (t) => {
  const r = await d.docker(['run', '--rm', 'busybox', 'sh', '-c', 'echo out; echo err >&2']);
  t.is(r.stdout, 'out\n');
  t.is(r.stderr, 'err\n');
});

for (const code of [0, 1, 3]) {
  test(`exit code ${code} propagates`, async (t) => {
    const r = await d.docker(['run', '--rm', 'busybox', 'sh', '-c', `exit ${code}`]);
    t.is(r.code, code, r.stderr);
  });
}

test('detached container: ps, logs, exec, stop, rm by ID prefix', async (t) => {
  const run = await d.docker(['run', '-d', '--name', 'ticker', 'busybox', 'sh', '-c', 'echo started; echo oops >&2; exec sleep 600']);
  t.is(run.code, 0, run.stderr);
  const id = run.stdout.trim();
  t.regex(id, /^[0-9a-f]{64}$/);
  const ps = await d.docker(['ps', '--format', '{{.Names}} {{.Status}}']);
  t.regex(ps.stdout, /ticker Up/);
  t.true((await d.docker(['ps', '-q', '--no-trunc', '--filter', 'ancestor=busybox'])).stdout.split('\n').includes(id));
  t.is((await d.docker(['ps', '-q', '--filter', 'ancestor=nosuchimage'])).stdout.trim(), '');
  await waitFor(async () => (await d.docker(['logs', 'ticker'])).stdout === 'started\n');
  const logs = await d.docker(['logs', 'ticker']);
  t.is(logs.stdout, 'started\n');
  t.is(logs.stderr, 'oops\n');
  const ts = await d.docker(['logs', '-t', '--tail', '1', 'ticker']);
  t.regex(ts.stdout + ts.stderr, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z (started|oops)\n$/);
  const ex = await d.docker(['exec', '-e', 'FOO=bar', '-w', '/tmp', '-u', 'nobody', 'ticker', 'sh', '-c', 'echo $FOO $(pwd) $(id -u); exit 4']);
  t.is(ex.stdout, 'bar /tmp 65534\n');
  t.is(ex.code, 4);
  const stop = await d.docker(['stop', '-t', '1', id.slice(0, 6)]);
  t.is(stop.code, 0, stop.stderr);
  const state = await d.docker(['inspect', '-f', '{{.State.Status}} {{.State.ExitCode}}', 'ticker']);
  t.is(state.stdout.trim(), 'exited 137'); // sleep as PID 1 ignores SIGTERM: killed after 1 s
  t.is((await d.docker(['rm', id.slice(0, 5)])).code, 0);
  t.regex((await d.docker(['container', 'inspect', 'ticker'])).stderr, /No such container: ticker/);
});

test('stop of a process that obeys SIGTERM gives 143; kill gives 137', async (t) => {
  await d.docker(['run', '-d', '--name', 'obeys', 'busybox', 'sh', '-c', "trap 'exit 143' TERM; while true; do sleep 0.1; done"]);
  t.is((await d.docker(['stop', 'obeys'])).code, 0);
  t.is((await d.docker(['wait', 'obeys'])).stdout.trim(), '143');
  await d.docker(['run', '-d', '--name', 'victim', 'busybox', 'sleep', '600']);
  t.is((await d.docker(['kill', 'victim'])).code, 0);
  t.is((await d.docker(['wait', 'victim'])).stdout.trim(), '137');
  await d.docker(['rm', 'obeys', 'victim']);
});

test('name conflicts and unknown containers answer as the Engine does', async (t) => {
  await d.docker(['create', '--name', 'twin', 'busybox', 'true']);
  const again = await d.docker(['create', '--name', 'twin', 'busybox', 'true']);
  t.not(again.code, 0);
  t.regex(again.stderr, /Conflict\. The container name "\/twin" is already in use by container "[0-9a-f]{64}"/);
  t.regex((await d.docker(['rm', 'nosuchthing'])).stderr, /No such container: nosuchthing/);
  await d.docker(['rm', 'twin']);
});

test('rm of a running container needs force', async (t) => {
  await d.docker(['run', '-d', '--name', 'busy', 'busybox', 'sleep', '600']);
  const rm = await d.docker(['rm', 'busy']);
  t.regex(rm.stderr, /container is running: stop the container before removing or force remove/);
  t.is((await d.docker(['rm', '-f', 'busy'])).code, 0);
});

test('user, read-only rootfs, capabilities, limits', async (t) => {
  t.is((await d.docker(['run', '--rm', '--user', 'nobody', 'busybox', 'id', '-u'])).stdout.trim(), '65534');
  const ro = await d.docker(['run', '--rm', '--read-only', 'busybox', 'touch', '/x']);
  t.regex(ro.stderr, /Read-only file system/);
  const noCap = await d.docker(['run', '--rm', '--cap-drop', 'ALL', 'busybox', 'chown', 'nobody', '/tmp']);
  t.not(noCap.code, 0);
  t.regex(noCap.stderr, /Operation not permitted/);
  const nofile = await d.docker(['run', '--rm', '--ulimit', 'nofile=123:456', 'busybox', 'sh', '-c', 'ulimit -n; ulimit -Hn']);
  t.is(nofile.stdout, '123\n456\n');
  const limit = await d.docker(['run', '--rm', '--pids-limit', '20', 'busybox', 'cat', '/sys/fs/cgroup/pids/pids.max']);
  t.is(limit.stdout.trim(), '20');
});

test('a read-only bind mount refuses writes', async (t) => {
  const r = await d.docker(['run', '--rm', '-v', '/etc:/hostetc:ro', 'busybox', 'sh', '-c', 'test -f /hostetc/hostname && touch /hostetc/x']);
  t.regex(r.stderr, /Read-only file system/);
  t.is(r.code, 1, r.stderr);
});

test('--memory 32m: a process that needs more is OOM-killed', async (t) => {
  const r = await d.docker(['run', '--name', 'hog', '--memory', '32m', '--memory-swap', '32m', 'busybox', 'sh', '-c',
    'x=a; while true; do x="$x$x"; done']);
  t.is(r.code, 137);
  t.is((await d.docker(['inspect', '-f', '{{.State.OOMKilled}}', 'hog'])).stdout.trim(), 'true');
  await d.docker(['rm', 'hog']);
});

test('docker run -it gives a terminal: tty, exit code', async (t) => {
  // `script` gives the CLI a pty, as a person's terminal would.
  const r = await runInPty(`docker run -it --rm busybox sh -c 'tty; stty size; exit 3'`, d.host);
  t.log(r.out);
  t.regex(r.out, /\/dev\/pts\/\d+/);
  t.is(r.code, 3);
});

async function waitFor(pred: () => Promise<boolean>, ms = 5000): Promise<void> {
  const end = Date.now() + ms;
  while (Date.now() < end) { if (await pred()) return; await new Promise((r) => setTimeout(r, 50)); }
}

function runInPty(cmd: string, host: string): Promise<{ out: string; code: number }> {
  return new Promise((resolve) => {
    const p = spawn('script', ['-qfec', cmd, '/dev/null'], { env: { ...process.env, DOCKER_HOST: host, TERM: 'xterm' } });
    let out = '';
    p.stdout.on('data', (b) => { out += b; });
    p.stderr.on('data', (b) => { out += b; });
    p.on('close', (code) => resolve({ out, code: code ?? -1 }));
  });
}
