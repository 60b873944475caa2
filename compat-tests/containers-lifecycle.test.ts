// Restart policies, healthchecks and live restore through the stock CLI.
import test from 'ava';
import type { Daemon } from './harness.js';
import { removeAllAndStop, startDaemonWithBusybox } from './images-fixture.js';

async function waitFor(pred: () => Promise<boolean>, ms = 10_000): Promise<boolean> {
  const end = Date.now() + ms;
  while (Date.now() < end) { if (await pred()) return true; await new Promise((r) => setTimeout(r, 100)); }
  return false;
}

const inspect = async (d: Daemon, fmt: string, name: string) => (await d.docker(['inspect', '-f', fmt, name])).stdout.trim();

let shared: Daemon;
test.before(async () => { shared = await startDaemonWithBusybox(); });
test.after.always(() => removeAllAndStop(shared));

test('on-failure:2 restarts twice, then leaves the container exited', async (t) => {
  const d = shared;
  const since = Math.floor(Date.now() / 1000) - 1;
  const r = await d.docker(['run', '-d', '--name', 'flaky', '--restart', 'on-failure:2', 'busybox', 'sh', '-c', 'exit 3']);
  t.is(r.code, 0, r.stderr);
  t.true(await waitFor(async () => (await inspect(d, '{{.RestartCount}} {{.State.Status}}', 'flaky')) === '2 exited'));
  await new Promise((res) => setTimeout(res, 1000)); // the back-off would have fired by now
  t.is(await inspect(d, '{{.RestartCount}} {{.State.Status}} {{.State.ExitCode}} {{.HostConfig.RestartPolicy.Name}}', 'flaky'), '2 exited 3 on-failure');
  const ev = await d.docker(['events', '--since', String(since), '--until', String(Math.ceil(Date.now() / 1000)), '--filter', 'container=flaky', '--format', '{{.Action}}']);
  t.is(ev.stdout.split('\n').filter((a) => a === 'restart').length, 2);
  t.is(ev.stdout.split('\n').filter((a) => a === 'die').length, 3);
  await d.docker(['rm', 'flaky']);
});

test('always restarts with back-off; docker stop is never undone', async (t) => {
  const d = shared;
  await d.docker(['run', '-d', '--name', 'phoenix', '--restart', 'always', 'busybox', 'sh', '-c', 'sleep 0.2; exit 0']);
  t.true(await waitFor(async () => Number(await inspect(d, '{{.RestartCount}}', 'phoenix')) >= 2));
  const stop = await d.docker(['stop', '-t', '1', 'phoenix']);
  t.is(stop.code, 0, stop.stderr);
  const count = await inspect(d, '{{.RestartCount}}', 'phoenix');
  await new Promise((res) => setTimeout(res, 1500));
  t.is(await inspect(d, '{{.State.Status}} {{.State.Restarting}}', 'phoenix'), 'exited false');
  t.is(await inspect(d, '{{.RestartCount}}', 'phoenix'), count);
  await d.docker(['rm', 'phoenix']);
});

test('a bad restart policy is refused', async (t) => {
  const r = await shared.docker(['create', '--restart', 'always:3', 'busybox', 'true']);
  t.not(r.code, 0);
  t.regex(r.stderr, /maximum retry count can only be used with 'on-failure'/);
});

test('healthcheck: starting, healthy, unhealthy, with ps, filter and events', async (t) => {
  const d = shared;
  const since = Math.floor(Date.now() / 1000) - 1;
  const r = await d.docker(['run', '-d', '--name', 'doctor', '--health-cmd', 'test -f /tmp/ok && echo fine',
    '--health-interval', '300ms', '--health-retries', '2', '--health-timeout', '2s', '--health-start-period', '5s', 'busybox', 'sh', '-c', 'sleep 1; touch /tmp/ok; exec sleep 600']);
  t.is(r.code, 0, r.stderr);
  t.is(await inspect(d, '{{.State.Health.Status}}', 'doctor'), 'starting');
  t.regex((await d.docker(['ps', '--filter', 'name=doctor', '--format', '{{.Status}}'])).stdout, /\(health: starting\)/);
  t.true(await waitFor(async () => (await inspect(d, '{{.State.Health.Status}}', 'doctor')) === 'healthy'));
  t.regex((await d.docker(['ps', '--filter', 'name=doctor', '--format', '{{.Status}}'])).stdout, /Up .* \(healthy\)/);
  t.is((await d.docker(['ps', '-q', '--filter', 'health=healthy', '--filter', 'name=doctor'])).stdout.trim().length, 12);
  const log = JSON.parse(await inspect(d, '{{json .State.Health.Log}}', 'doctor'));
  t.is(log.at(-1).Output, 'fine\n');
  t.is(log.at(-1).ExitCode, 0);
  await d.docker(['exec', 'doctor', 'rm', '/tmp/ok']);
  t.true(await waitFor(async () => (await inspect(d, '{{.State.Health.Status}}', 'doctor')) === 'unhealthy'));
  t.true(Number(await inspect(d, '{{.State.Health.FailingStreak}}', 'doctor')) >= 2);
  const ev = await d.docker(['events', '--since', String(since), '--until', String(Math.ceil(Date.now() / 1000)), '--filter', 'container=doctor', '--filter', 'event=health_status', '--format', '{{.Action}}']);
  t.deepEqual(ev.stdout.trim().split('\n'), ['health_status: healthy', 'health_status: unhealthy']);
  await d.docker(['rm', '-f', 'doctor']);
});

test('healthcheck timeout and --no-healthcheck', async (t) => {
  const d = shared;
  await d.docker(['run', '-d', '--name', 'slowdoc', '--health-cmd', 'sleep 5', '--health-interval', '200ms', '--health-timeout', '300ms', '--health-retries', '1', 'busybox', 'sleep', '600']);
  t.true(await waitFor(async () => (await inspect(d, '{{.State.Health.Status}}', 'slowdoc')) === 'unhealthy'));
  const log = JSON.parse(await inspect(d, '{{json .State.Health.Log}}', 'slowdoc'));
  t.is(log[0].ExitCode, -1);
  t.is(log[0].Output, 'Health check exceeded timeout (300ms)');
  await d.docker(['run', '-d', '--name', 'nodoc', '--no-healthcheck', 'busybox', 'sleep', '600']);
  t.is(await inspect(d, '{{.State.Health}}', 'nodoc'), '<nil>');
  await d.docker(['rm', '-f', 'slowdoc', 'nodoc']);
});

test('live restore: SIGKILL the daemon during steady work; nothing lost, nothing stopped', async (t) => {
  const d = await startDaemonWithBusybox();
  try {
    // a line every 10 ms, numbered
    await d.docker(['run', '-d', '--name', 'writer', 'busybox', 'sh', '-c', 'i=0; while true; do i=$((i+1)); echo $i; usleep 10000; done']);
    await d.docker(['run', '-d', '--name', 'ender', 'busybox', 'sh', '-c', 'sleep 1; exit 7']);
    await d.docker(['run', '-d', '--rm', '--name', 'ephemeral', 'busybox', 'sleep', '1']);
    // an --rm container that is not running when the daemon comes back is removed, as the Engine does
    await d.docker(['create', '--rm', '--name', 'never-started', 'busybox', 'true']);
    await d.docker(['run', '-d', '--name', 'always', '--restart', 'always', 'busybox', 'sleep', '600']);
    const pid = await inspect(d, '{{.State.Pid}}', 'writer');
    await new Promise((r) => setTimeout(r, 300));
    await d.kill();
    await new Promise((r) => setTimeout(r, 2000)); // ender and ephemeral end while the daemon is down
    await d.restart();
    t.is(await inspect(d, '{{.State.Status}} {{.State.Pid}}', 'writer'), `running ${pid}`);
    t.is(await inspect(d, '{{.State.Status}} {{.State.ExitCode}}', 'ender'), 'exited 7');
    t.notRegex(await inspect(d, '{{.State.FinishedAt}}', 'ender'), /^0001/);
    t.regex((await d.docker(['container', 'inspect', 'ephemeral'])).stderr, /No such container: ephemeral/);
    t.regex((await d.docker(['container', 'inspect', 'never-started'])).stderr, /No such container: never-started/);
    t.is(await inspect(d, '{{.State.Status}}', 'always'), 'running');
    const ex = await d.docker(['exec', 'writer', 'echo', 'still here']);
    t.is(ex.stdout, 'still here\n');
    const logs = (await d.docker(['logs', 'writer'])).stdout.trim().split('\n').map(Number);
    t.true(logs.length > 100, `only ${logs.length} lines`);
    t.true(logs.every((n, i) => n === i + 1), 'a numbered line is missing or out of order');
    const stop = await d.docker(['stop', '-t', '1', 'writer']);
    t.is(stop.code, 0, stop.stderr);
    t.is(await inspect(d, '{{.State.Status}}', 'writer'), 'exited');
  } finally {
    await removeAllAndStop(d);
  }
});

test('clean stop: containers stop without live-restore, keep running with it; always comes back', async (t) => {
  const plain = await startDaemonWithBusybox();
  try {
    await plain.docker(['run', '-d', '--name', 'p1', 'busybox', 'sleep', '600']);
    await plain.docker(['run', '-d', '--name', 'p2', '--restart', 'always', 'busybox', 'sleep', '600']);
    await plain.docker(['run', '-d', '--name', 'p3', '--restart', 'unless-stopped', 'busybox', 'sleep', '600']);
    await plain.docker(['stop', '-t', '1', 'p3']);
    await plain.restart();
    t.is(await inspect(plain, '{{.State.Status}}', 'p1'), 'exited');
    t.is(await inspect(plain, '{{.State.Status}}', 'p3'), 'exited');
    t.true(await waitFor(async () => (await inspect(plain, '{{.State.Status}}', 'p2')) === 'running'));
  } finally {
    await removeAllAndStop(plain);
  }
  const lr = await startDaemonWithBusybox({ config: { 'live-restore': true } });
  try {
    await lr.docker(['run', '-d', '--name', 'kept', 'busybox', 'sleep', '600']);
    const pid = await inspect(lr, '{{.State.Pid}}', 'kept');
    await lr.restart();
    t.is(await inspect(lr, '{{.State.Status}} {{.State.Pid}}', 'kept'), `running ${pid}`);
  } finally {
    await removeAllAndStop(lr);
  }
});

test('a HEALTHCHECK from the image runs; the container can override and disable it', async (t) => {
  const d = shared;
  // a tiny image from the host's busybox, with its healthcheck set by `docker import --change`
  const { readFile } = await import('node:fs/promises');
  const { packTar } = await import('./hostile-tars.js');
  const { spawn } = await import('node:child_process');
  const rootfs = await packTar([
    { header: { name: 'bin/busybox', mode: 0o755 }, data: await readFile('/bin/busybox') },
    ...['sh', 'sleep', 'true', 'false', 'touch', 'test'].map((n) => ({ header: { name: `bin/${n}`, type: 'symlink' as const, linkname: 'busybox' } })),
    { header: { name: 'tmp', type: 'directory' as const, mode: 0o1777 } },
  ]);
  const imp = await new Promise<number>((resolve) => {
    const p = spawn('docker', ['import', '-c', 'HEALTHCHECK --interval=200ms --retries=1 CMD test -f /tmp/ok', '-c', 'CMD ["sleep", "600"]', '-', 'hc:1'],
      { env: { ...process.env, DOCKER_HOST: d.host }, stdio: ['pipe', 'ignore', 'inherit'] });
    p.stdin.end(rootfs);
    p.on('close', (c) => resolve(c ?? -1));
  });
  t.is(imp, 0);
  t.is(await inspectImage(d, 'hc:1'), '{"Test":["CMD-SHELL","test -f /tmp/ok"],"Interval":200000000,"Retries":1}');
  await d.docker(['run', '-d', '--name', 'from-image', 'hc:1']);
  t.true(await waitFor(async () => (await inspect(d, '{{.State.Health.Status}}', 'from-image')) === 'unhealthy'));
  await d.docker(['exec', 'from-image', 'touch', '/tmp/ok']);
  t.true(await waitFor(async () => (await inspect(d, '{{.State.Health.Status}}', 'from-image')) === 'healthy'));
  await d.docker(['run', '-d', '--name', 'override', '--health-cmd', 'true', 'hc:1']);
  t.true(await waitFor(async () => (await inspect(d, '{{.State.Health.Status}}', 'override')) === 'healthy'));
  t.is(await inspect(d, '{{.Config.Healthcheck.Interval}}', 'override'), '200ms'); // the image's interval stays
  await d.docker(['run', '-d', '--name', 'disabled', '--no-healthcheck', 'hc:1']);
  t.is(await inspect(d, '{{.State.Health}}', 'disabled'), '<nil>');
  await d.docker(['rm', '-f', 'from-image', 'override', 'disabled']);
  await d.docker(['rmi', 'hc:1']);
});

async function inspectImage(d: Daemon, ref: string): Promise<string> {
  return (await d.docker(['image', 'inspect', '-f', '{{json .Config.Healthcheck}}', ref])).stdout.trim();
}
