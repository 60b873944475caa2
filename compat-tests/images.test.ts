// Images through the stock CLI: load, images (+filters), inspect, tag, history, rmi, save/load
// round trip into a fresh daemon, import.
import test from 'ava';
import { execFile } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import tar from 'tar-stream';
import { writeFile } from 'node:fs/promises';
import { startDaemon, type Daemon } from './harness.js';
import { ensureBusyboxTar } from './images-fixture.js';

const run = promisify(execFile);
let d: Daemon;
let dir: string;
let busyboxId: string;

test.before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'berth-images-'));
  d = await startDaemon();
  const archive = await ensureBusyboxTar();
  busyboxId = (await run(join(process.cwd(), 'scripts/make-test-image'), [join(dir, 'again.tar')])).stdout.trim();
  const r = await d.docker(['load', '-i', archive]);
  if (r.code !== 0) throw new Error(`docker load failed: ${r.stderr}`);
  if (r.stdout.trim() !== 'Loaded image: busybox:latest') throw new Error(`unexpected load output: ${r.stdout}`);
});

test.after.always(async () => {
  await d?.stop();
  if (dir) await rm(dir, { recursive: true, force: true });
});

test.serial('docker images lists busybox with its short ID', async (t) => {
  const r = await d.docker(['images', '--format', '{{.Repository}}:{{.Tag}} {{.ID}}']);
  t.is(r.code, 0, r.stderr);
  t.true(r.stdout.split('\n').includes(`busybox:latest ${busyboxId.slice(7, 19)}`), r.stdout);
  const plain = await d.docker(['images']);
  t.regex(plain.stdout, /REPOSITORY\s+TAG\s+IMAGE ID\s+CREATED\s+SIZE/);
});

test.serial('docker image inspect has the Engine shape', async (t) => {
  const r = await d.docker(['image', 'inspect', 'busybox']);
  t.is(r.code, 0, r.stderr);
  const [img] = JSON.parse(r.stdout);
  t.is(img.Id, busyboxId);
  t.deepEqual(img.RepoTags, ['busybox:latest']);
  t.deepEqual(img.Config.Cmd, ['sh']);
  t.is(img.Os, 'linux');
  t.is(img.Architecture, 'amd64');
  t.is(img.RootFS.Type, 'layers');
  t.is(img.RootFS.Layers.length, 1);
  t.is(img.GraphDriver.Name, 'overlay2');
  const f = await d.docker(['image', 'inspect', '--format', '{{.Id}}', busyboxId.slice(7, 19)]);
  t.is(f.stdout.trim(), busyboxId);
  const missing = await d.docker(['image', 'inspect', 'nosuchimage']);
  t.not(missing.code, 0);
  t.regex(missing.stderr, /No such image: nosuchimage/);
});

test.serial('docker tag, filters, history, rmi of a tag', async (t) => {
  t.is((await d.docker(['tag', 'busybox', 'example.com/team/bb:v1'])).code, 0);
  const f = await d.docker(['images', '--filter', 'reference=example.com/*/*', '--format', '{{.Repository}}:{{.Tag}}']);
  t.is(f.stdout.trim(), 'example.com/team/bb:v1');
  const dangling = await d.docker(['images', '--filter', 'dangling=true', '-q']);
  t.is(dangling.stdout.trim(), '');
  const h = await d.docker(['history', '--no-trunc', '--format', '{{.ID}} {{.CreatedBy}}', 'busybox']);
  t.is(h.code, 0, h.stderr);
  const lines = h.stdout.trim().split('\n');
  t.is(lines.length, 2);
  t.true(lines[0].startsWith(busyboxId));
  const rmi = await d.docker(['rmi', 'example.com/team/bb:v1']);
  t.is(rmi.stdout.trim(), 'Untagged: example.com/team/bb:v1');
});

test.serial('docker save -o then load into a fresh daemon gives the same ID', async (t) => {
  const out = join(dir, 'saved.tar');
  const s = await d.docker(['save', '-o', out, 'busybox']);
  t.is(s.code, 0, s.stderr);
  const other = await startDaemon();
  try {
    const l = await other.docker(['load', '-i', out]);
    t.is(l.code, 0, l.stderr);
    t.regex(l.stdout, /Loaded image: busybox:latest/);
    const id = await other.docker(['image', 'inspect', '--format', '{{.Id}}', 'busybox']);
    t.is(id.stdout.trim(), busyboxId);
  } finally {
    await other.stop();
  }
});

test.serial('save/load keep the Parent link between images saved together, as the Engine does', async (t) => {
  // a one-step build: its parent is busybox (the Engine's save writes manifest.json "Parent"
  // for it, and its load restores the link; docker.io 20.10 was checked by
  // scripts/check-reference-save)
  const ctx = join(dir, 'parent-ctx');
  const { mkdir, readFile } = await import('node:fs/promises');
  await mkdir(ctx);
  await writeFile(join(ctx, 'Dockerfile'), 'FROM busybox\nLABEL step=one\n');
  const b = await d.docker(['build', '-q', '-t', 'child:1', ctx], { env: { DOCKER_BUILDKIT: '0' } });
  t.is(b.code, 0, b.stderr);
  const childId = b.stdout.trim();
  t.is((await d.docker(['image', 'inspect', '-f', '{{.Parent}}', 'child:1'])).stdout.trim(), busyboxId);
  const out = join(dir, 'parent.tar');
  t.is((await d.docker(['save', '-o', out, 'child:1', 'busybox'])).code, 0);
  const x = join(dir, 'parent-x');
  await mkdir(x);
  await run('tar', ['-xf', out, '-C', x]);
  const manifest = JSON.parse(await readFile(join(x, 'manifest.json'), 'utf8'));
  t.deepEqual(manifest.map((m: any) => [m.RepoTags[0], m.Parent]), [['child:1', busyboxId], ['busybox:latest', undefined]]);
  // saved alone, the parent is not in the archive: no link
  t.is((await d.docker(['save', '-o', join(dir, 'alone.tar'), 'child:1'])).code, 0);
  await run('tar', ['-xf', join(dir, 'alone.tar'), '-C', x, 'manifest.json']);
  t.is(JSON.parse(await readFile(join(x, 'manifest.json'), 'utf8'))[0].Parent, undefined);
  const other = await startDaemon();
  try {
    t.is((await other.docker(['load', '-i', out])).code, 0);
    t.is((await other.docker(['image', 'inspect', '-f', '{{.Id}} {{.Parent}}', 'child:1'])).stdout.trim(), `${childId} ${busyboxId}`);
    t.is((await other.docker(['image', 'inspect', '-f', '{{.Parent}}', 'busybox'])).stdout.trim(), '');
    // a link the Engine would refuse (busybox is no child of child:1) fails the load with its message
    manifest[1].Parent = childId;
    await writeFile(join(x, 'manifest.json'), JSON.stringify(manifest));
    const bad = join(dir, 'bad-parent.tar');
    await run('tar', ['-cf', bad, '-C', x, '.']);
    const l = await other.docker(['load', '-i', bad]);
    t.not(l.code, 0);
    t.regex(l.stderr, new RegExp(`image ${childId} is not a valid parent for ${busyboxId}`));
  } finally {
    await other.stop();
    await d.docker(['rmi', 'child:1']);
  }
});

test.serial('docker import with --change and --message', async (t) => {
  const file = join(dir, 'rootfs.tar');
  const pack = tar.pack();
  pack.entry({ name: 'hello.txt' }, 'hi\n');
  pack.finalize();
  const chunks: Buffer[] = [];
  for await (const c of pack as any) chunks.push(c);
  await writeFile(file, Buffer.concat(chunks));
  const r = await d.docker(['import', '--change', 'CMD ["/hello"]', '--message', 'from test', file, 'imported:1']);
  t.is(r.code, 0, r.stderr);
  t.regex(r.stdout.trim(), /^sha256:[a-f0-9]{64}$/);
  const i = JSON.parse((await d.docker(['image', 'inspect', 'imported:1'])).stdout)[0];
  t.deepEqual(i.Config.Cmd, ['/hello']);
  t.is(i.Comment, 'from test');
  const rm1 = await d.docker(['rmi', 'imported:1']);
  t.regex(rm1.stdout, /Untagged: imported:1\nDeleted: sha256:/);
});
