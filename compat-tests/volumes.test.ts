// Volumes and mounts through the stock CLI.
import test from 'ava';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Daemon } from './harness.js';
import { removeAllAndStop, startDaemonWithBusybox } from './images-fixture.js';

let d: Daemon;
test.before(async () => { d = await startDaemonWithBusybox(); });
test.after.always(() => removeAllAndStop(d));

const sh = (args: string[], script: string) => d.docker(['run', '--rm', ...args, 'busybox', 'sh', '-c', script]);

test('a named volume outlives its container; create, inspect, ls, rm', async (t) => {
  const c = await d.docker(['volume', 'create', '--label', 'team=a', 'shared']);
  t.is(c.stdout.trim(), 'shared', c.stderr);
  t.is((await sh(['-v', 'shared:/data'], 'echo kept > /data/f')).code, 0);
  t.is((await sh(['-v', 'shared:/d:ro'], 'cat /d/f')).stdout, 'kept\n');
  const ins = JSON.parse((await d.docker(['volume', 'inspect', 'shared'])).stdout)[0];
  t.is(ins.Driver, 'local');
  t.deepEqual(ins.Labels, { team: 'a' });
  t.regex(ins.Mountpoint, /\/volumes\/shared\/_data$/);
  t.is((await d.docker(['volume', 'ls', '-q', '--filter', 'label=team=a'])).stdout, 'shared\n');
  // auto-created by -v, and listed
  await sh(['-v', 'implicit:/x'], 'true');
  t.regex((await d.docker(['volume', 'ls', '--format', '{{.Name}}'])).stdout, /^implicit$/m);
  t.is((await d.docker(['volume', 'rm', 'shared', 'implicit'])).code, 0);
  t.regex((await d.docker(['volume', 'inspect', 'shared'])).stderr, /no such volume/);
});

test('read-only volume mounts refuse writes; bad names are refused', async (t) => {
  const r = await sh(['-v', 'rovol:/data:ro'], 'touch /data/x');
  t.regex(r.stderr, /Read-only file system/);
  const bad = await d.docker(['volume', 'create', 'no/slashes']);
  t.not(bad.code, 0);
  t.regex(bad.stderr, /includes invalid characters for a local volume name/);
  await d.docker(['volume', 'rm', 'rovol']);
});

test('copy-up of image content into an empty volume; nocopy leaves it empty', async (t) => {
  t.is((await sh(['-v', 'etcvol:/etc'], 'true')).code, 0);
  t.regex((await sh(['-v', 'etcvol:/mnt'], 'cat /mnt/passwd')).stdout, /^root:/);
  const owner = await sh(['-v', 'etcvol:/mnt'], 'stat -c "%u %a" /mnt/passwd');
  t.is(owner.stdout, '0 644\n');
  // (hosts, hostname and resolv.conf are mounted over /etc either way)
  t.is((await sh(['-v', 'emptyvol:/etc:nocopy'], 'test -e /etc/passwd && echo copied || echo empty')).stdout, 'empty\n');
  t.is((await sh(['--mount', 'type=volume,src=mvol,dst=/etc,volume-nocopy'], 'test -e /etc/passwd && echo copied || echo empty')).stdout, 'empty\n');
  await d.docker(['volume', 'rm', 'etcvol', 'emptyvol', 'mvol']);
});

test.serial('anonymous volumes: --rm and rm -v remove them, plain rm keeps them; prune', async (t) => {
  const before = new Set((await d.docker(['volume', 'ls', '-q'])).stdout.split('\n').filter(Boolean));
  const newVols = async () => (await d.docker(['volume', 'ls', '-q'])).stdout.split('\n').filter((v) => v && !before.has(v));
  await sh(['-v', '/scratch'], 'echo x > /scratch/f');
  t.deepEqual(await newVols(), []);
  await d.docker(['run', '--name', 'anon1', '-v', '/scratch', 'busybox', 'true']);
  const [anon] = await newVols();
  t.regex(anon ?? '', /^[0-9a-f]{64}$/);
  t.is(JSON.parse((await d.docker(['inspect', 'anon1'])).stdout)[0].Mounts[0].Name, anon);
  const inUse = await d.docker(['volume', 'rm', anon!]);
  t.regex(inUse.stderr, /volume is in use/);
  await d.docker(['rm', '-v', 'anon1']);
  t.deepEqual(await newVols(), []);
  await d.docker(['run', '--name', 'anon2', '-v', '/scratch', 'busybox', 'true']);
  await d.docker(['rm', 'anon2']);
  t.is((await newVols()).length, 1);
  await d.docker(['volume', 'create', 'named-keep']);
  const prune = await d.docker(['volume', 'prune', '-f']);
  t.regex(prune.stdout, /Total reclaimed space/);
  t.deepEqual(await newVols(), ['named-keep']);
  await d.docker(['volume', 'prune', '-af']);
  t.deepEqual(await newVols(), []);
});

test('--volumes-from shares another container\'s volumes (ro override)', async (t) => {
  await d.docker(['create', '--name', 'datac', '-v', 'fromvol:/shared', 'busybox', 'true']);
  t.is((await sh(['--volumes-from', 'datac'], 'echo hello > /shared/f')).code, 0);
  t.is((await sh(['--volumes-from', 'datac:ro'], 'cat /shared/f; touch /shared/g')).stdout, 'hello\n');
  t.regex((await sh(['--volumes-from', 'datac:ro'], 'touch /shared/g')).stderr, /Read-only file system/);
  await d.docker(['rm', 'datac']);
  await d.docker(['volume', 'rm', 'fromvol']);
});

test('tmpfs size limit, bind mount of a host file, local driver tmpfs options', async (t) => {
  const full = await sh(['--mount', 'type=tmpfs,dst=/t,tmpfs-size=1m'], 'dd if=/dev/zero of=/t/big bs=1k count=2048');
  t.regex(full.stderr, /No space left on device/);
  const dir = await mkdtemp('/tmp/bvol-');
  try {
    await writeFile(join(dir, 'file.txt'), 'from host\n');
    t.is((await sh(['-v', `${join(dir, 'file.txt')}:/etc/greeting:ro`], 'cat /etc/greeting')).stdout, 'from host\n');
    t.is((await d.docker(['volume', 'create', '--driver', 'local', '--opt', 'type=tmpfs', '--opt', 'device=tmpfs', '--opt', 'o=size=2m', 'tmpvol'])).code, 0);
    const df = await sh(['-v', 'tmpvol:/v'], 'df -k /v | tail -1');
    t.regex(df.stdout, /tmpfs\s+2048\s/);
    await d.docker(['volume', 'rm', 'tmpvol']);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('image VOLUME creates anonymous volumes; volume events; system df', async (t) => {
  const since = Math.floor(Date.now() / 1000) - 1;
  const { packTar } = await import('./hostile-tars.js');
  const { spawn } = await import('node:child_process');
  const { readFile } = await import('node:fs/promises');
  const rootfs = await packTar([
    { header: { name: 'bin/busybox', mode: 0o755 }, data: await readFile('/bin/busybox') },
    { header: { name: 'bin/sh', type: 'symlink', linkname: 'busybox' } },
    { header: { name: 'bin/cat', type: 'symlink', linkname: 'busybox' } },
    { header: { name: 'data/seed', mode: 0o600, uid: 65534, gid: 65534 }, data: 'seeded\n' },
  ]);
  const code = await new Promise<number>((resolve) => {
    const p = spawn('docker', ['import', '-c', 'VOLUME /data', '-', 'volimg:1'], { env: { ...process.env, DOCKER_HOST: d.host }, stdio: ['pipe', 'ignore', 'inherit'] });
    p.stdin.end(rootfs);
    p.on('close', (c) => resolve(c ?? -1));
  });
  t.is(code, 0);
  const r = await d.docker(['run', '--name', 'imgvol', 'volimg:1', 'cat', '/data/seed']);
  t.is(r.stdout, 'seeded\n', r.stderr);
  const m = JSON.parse((await d.docker(['inspect', 'imgvol'])).stdout)[0].Mounts[0];
  t.is(m.Type, 'volume');
  t.is(m.Destination, '/data');
  const df = await d.docker(['system', 'df', '-v', '--format', '{{json .Volumes}}']);
  t.true(df.stdout.includes(m.Name), df.stdout);
  await d.docker(['rm', '-v', 'imgvol']);
  await d.docker(['rmi', 'volimg:1']);
  const ev = await d.docker(['events', '--since', String(since), '--until', String(Math.ceil(Date.now() / 1000)), '--filter', `volume=${m.Name}`, '--format', '{{.Action}}']);
  t.deepEqual(ev.stdout.trim().split('\n'), ['create', 'mount', 'unmount', 'destroy']);
});
