// docker cp, export, diff, commit, top, stats, pause/unpause, update and container prune through the stock CLI.
import test from 'ava';
import { spawn } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile, readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import type { Daemon } from './harness.js';
import { removeAllAndStop, startDaemonWithBusybox } from './images-fixture.js';
import { hostileTars, outsideState } from './hostile-tars.js';

let d: Daemon;
let tmp: string;
test.before(async () => { d = await startDaemonWithBusybox(); tmp = await mkdtemp('/tmp/bops-'); });
test.after.always(async () => { await removeAllAndStop(d); await rm(tmp, { recursive: true, force: true }); });


test('docker cp both ways, on running and stopped containers, through symlinks inside the container', async (t) => {
  await d.docker(['run', '-d', '--name', 'cpme', 'busybox', 'sh', '-c', 'mkdir -p /data/sub && echo inside > /data/sub/f && ln -s /data /link && exec sleep 600']);
  await new Promise((r) => setTimeout(r, 300));
  t.is((await d.docker(['cp', 'cpme:/data/sub/f', join(tmp, 'f')])).code, 0);
  t.is(await readFile(join(tmp, 'f'), 'utf8'), 'inside\n');
  t.is((await d.docker(['cp', 'cpme:/link/sub', join(tmp, 'sub')])).code, 0);
  t.deepEqual(await readdir(join(tmp, 'sub')), ['f']);
  await writeFile(join(tmp, 'up.txt'), 'uploaded\n');
  t.is((await d.docker(['cp', join(tmp, 'up.txt'), 'cpme:/link/'])).code, 0);
  t.is((await d.docker(['exec', 'cpme', 'cat', '/data/up.txt'])).stdout, 'uploaded\n');
  t.is((await d.docker(['exec', 'cpme', 'stat', '-c', '%u', '/data/up.txt'])).stdout.trim(), '0');
  const missing = await d.docker(['cp', 'cpme:/nope', tmp]);
  t.regex(missing.stderr, /Could not find the file \/nope in container cpme/);
  await d.docker(['stop', '-t', '0', 'cpme']);
  t.is((await d.docker(['cp', 'cpme:/data/up.txt', join(tmp, 'stopped.txt')])).code, 0);
  t.is(await readFile(join(tmp, 'stopped.txt'), 'utf8'), 'uploaded\n');
  await d.docker(['rm', 'cpme']);
});

test('docker cp refuses or contains hostile archives and paths', async (t) => {
  const outside = await mkdtemp('/tmp/bops-outside-');
  try {
    await d.docker(['run', '-d', '--name', 'victim', 'busybox', 'sh', '-c', `ln -s ${outside} /escape && exec sleep 600`]);
    await new Promise((r) => setTimeout(r, 300));
    const untouched = await outsideState(outside);
    for (const c of await hostileTars(outside)) {
      const r = await d.docker(['cp', '-', 'victim:/tmp'], { input: c.tar });
      t.deepEqual(await outsideState(outside), untouched, `${c.name}: ${r.stderr}`);
    }
    // a symlink in the container pointing at a host path resolves inside the container
    await writeFile(join(tmp, 'probe'), 'x');
    await d.docker(['cp', join(tmp, 'probe'), 'victim:/escape/']);
    t.deepEqual(await readdir(outside), []);
    t.is((await d.docker(['cp', 'victim:/../../../../etc/hostname', join(tmp, 'h')])).code, 0);
    t.not(await readFile(join(tmp, 'h'), 'utf8'), await readFile('/etc/hostname', 'utf8'));
  } finally {
    await d.docker(['rm', '-f', 'victim']);
    await rm(outside, { recursive: true, force: true });
  }
});

test('diff, commit (changes, author) and export', async (t) => {
  await d.docker(['run', '--name', 'changer', 'busybox', 'sh', '-c', 'echo v1 > /made; rm /etc/group; mkdir /newdir']);
  const diff = (await d.docker(['diff', 'changer'])).stdout.trim().split('\n');
  t.deepEqual(diff.sort(), ['A /made', 'A /newdir', 'C /etc', 'D /etc/group'].sort());
  const c = await d.docker(['commit', '-a', 'tester', '-m', 'snapshot', '-c', 'ENV MODE=committed', '-c', 'CMD ["cat", "/made"]', 'changer', 'committed:1']);
  t.is(c.code, 0, c.stderr);
  const run = await d.docker(['run', '--rm', 'committed:1']);
  t.is(run.stdout, 'v1\n');
  t.is((await d.docker(['run', '--rm', 'committed:1', 'sh', '-c', 'echo $MODE; test -e /etc/group || echo gone'])).stdout, 'committed\ngone\n');
  const img = JSON.parse((await d.docker(['image', 'inspect', 'committed:1'])).stdout)[0];
  t.is(img.Author, 'tester');
  t.is(img.Comment, 'snapshot');
  t.is(img.RootFS.Layers.length, 2);
  t.is(img.Parent, (await d.docker(['image', 'inspect', '-f', '{{.Id}}', 'busybox'])).stdout.trim(), 'the container\'s image is the parent');
  t.regex((await d.docker(['history', 'committed:1'])).stdout, /snapshot/);
  const ev = await d.docker(['events', '--since', '2m', '--until', String(Math.ceil(Date.now() / 1000) + 1), '--filter', 'container=changer', '--filter', 'event=commit', '--format', '{{.Action}} {{.Actor.Attributes.comment}}']);
  t.is(ev.stdout.trim(), 'commit snapshot');
  const exp = await new Promise<string>((resolve) => {
    const p = spawn('sh', ['-c', 'docker export changer | tar -t'], { env: { ...process.env, DOCKER_HOST: d.host } });
    let out = ''; p.stdout.on('data', (b) => { out += b; }); p.on('close', () => resolve(out));
  });
  t.true(exp.split('\n').includes('made'));
  t.true(exp.split('\n').includes('bin/busybox'));
  t.false(exp.split('\n').includes('etc/group'));
  await d.docker(['rm', 'changer']);
  await d.docker(['rmi', 'committed:1']);
});

test('top, stats, pause/unpause, update', async (t) => {
  await d.docker(['run', '-d', '--name', 'busy', '--memory', '64m', 'busybox', 'sh', '-c', 'while true; do sleep 0.05; done']);
  const top = await d.docker(['top', 'busy', '-o', 'pid,comm']);
  t.regex(top.stdout, /PID\s+COMMAND/);
  t.regex(top.stdout, /\bsh\b/);
  const stats = await d.docker(['stats', '--no-stream', '--format', '{{.Name}} {{.MemUsage}} {{.PIDs}}', 'busy']);
  t.regex(stats.stdout, /^busy [\d.]+[KMG]iB \/ 64MiB \d+\n$/, stats.stderr);
  const raw = await d.request('GET', '/containers/busy/stats?stream=false');
  t.true(raw.json.cpu_stats.cpu_usage.total_usage > 0);
  t.true(raw.json.precpu_stats.cpu_usage.total_usage > 0);
  t.is(raw.json.memory_stats.limit, 64 * 1024 * 1024);
  t.is((await d.docker(['pause', 'busy'])).code, 0);
  t.is((await d.docker(['inspect', '-f', '{{.State.Status}} {{.State.Paused}}', 'busy'])).stdout.trim(), 'paused true');
  t.regex((await d.docker(['exec', 'busy', 'true'])).stderr, /is paused/);
  t.is((await d.docker(['unpause', 'busy'])).code, 0);
  t.is((await d.docker(['update', '--memory', '96m', '--memory-swap', '192m', '--pids-limit', '50', '--restart', 'on-failure:3', 'busy'])).code, 0);
  t.is((await d.docker(['exec', 'busy', 'cat', '/sys/fs/cgroup/memory/memory.limit_in_bytes'])).stdout.trim(), String(96 * 1024 * 1024));
  t.is((await d.docker(['exec', 'busy', 'cat', '/sys/fs/cgroup/pids/pids.max'])).stdout.trim(), '50');
  t.is((await d.docker(['inspect', '-f', '{{.HostConfig.RestartPolicy.Name}}:{{.HostConfig.RestartPolicy.MaximumRetryCount}} {{.HostConfig.Memory}}', 'busy'])).stdout.trim(), `on-failure:3 ${96 * 1024 * 1024}`);
  const ev = await d.docker(['events', '--since', '2m', '--until', String(Math.ceil(Date.now() / 1000) + 1), '--filter', 'container=busy',
    '--filter', 'event=pause', '--filter', 'event=unpause', '--filter', 'event=update', '--format', '{{.Action}}']);
  t.deepEqual(ev.stdout.trim().split('\n'), ['pause', 'unpause', 'update']);
  // a paused container still stops
  await d.docker(['pause', 'busy']);
  t.is((await d.docker(['stop', '-t', '1', 'busy'])).code, 0);
  t.is((await d.docker(['inspect', '-f', '{{.State.Status}}', 'busy'])).stdout.trim(), 'exited');
  await d.docker(['rm', 'busy']);
});

test.serial('container prune removes stopped containers only, with label filters', async (t) => {
  await d.docker(['create', '--name', 'p-old', '--label', 'prune=yes', 'busybox', 'true']);
  await d.docker(['create', '--name', 'p-keep', '--label', 'prune=no', 'busybox', 'true']);
  await d.docker(['run', '-d', '--name', 'p-run', '--label', 'prune=yes', 'busybox', 'sleep', '600']);
  const r = await d.docker(['container', 'prune', '-f', '--filter', 'label=prune=yes']);
  t.regex(r.stdout, /Deleted Containers:/);
  const names = (await d.docker(['ps', '-a', '--format', '{{.Names}}'])).stdout;
  t.notRegex(names, /p-old/);
  t.regex(names, /p-keep/);
  t.regex(names, /p-run/);
  await d.docker(['rm', '-f', 'p-keep', 'p-run']);
  await stat(tmp);
});
