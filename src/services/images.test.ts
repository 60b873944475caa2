import test from 'ava';
import { execFile } from 'node:child_process';
import { createReadStream } from 'node:fs';
import { mkdtemp, rm, lstat, readdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { promisify } from 'node:util';
import tar from 'tar-stream';
import { ImageService, applyChanges, validParent } from './images.js';
import { ensureBusyboxTar } from '../../compat-tests/images-fixture.js';

const run = promisify(execFile);

async function fresh(t: any): Promise<{ svc: ImageService; root: string }> {
  const root = await mkdtemp(join(tmpdir(), 'berth-img-'));
  t.teardown(() => rm(root, { recursive: true, force: true }));
  const events: string[] = [];
  const svc = new ImageService(root, { publish: (e) => { events.push(e.Action); } });
  (svc as any).events_ = events;
  await svc.init();
  return { svc, root };
}

async function collect(s: Readable): Promise<Buffer> { const c: Buffer[] = []; for await (const x of s) c.push(x as Buffer); return Buffer.concat(c); }

test('load busybox archive, resolve by name/ID/prefix, layerDirs, inspect shape', async (t) => {
  const { svc } = await fresh(t);
  const archive = await ensureBusyboxTar();
  const lines: string[] = [];
  const loaded = await svc.load(createReadStream(archive), (l) => lines.push(l));
  t.deepEqual(loaded, ['busybox:latest']);
  t.deepEqual(lines, ['Loaded image: busybox:latest\n']);
  const { stdout } = await run(join(process.cwd(), 'scripts/make-test-image'), [join(tmpdir(), `bb-${process.pid}.tar`)]);
  await rm(join(tmpdir(), `bb-${process.pid}.tar`));
  const img = await svc.resolve('busybox');
  t.is(img.Id, stdout.trim());
  t.is((await svc.resolve('docker.io/library/busybox:latest')).Id, img.Id);
  t.is((await svc.resolve(img.Id.slice(7, 19))).Id, img.Id);
  t.is((await svc.resolve(img.Id)).Id, img.Id);
  t.is((await svc.resolve(img.Id.slice(0, 15))).Id, img.Id);
  await t.throwsAsync(svc.resolve('nope'), { message: 'No such image: nope' });
  await t.throwsAsync(svc.resolve('busybox:other'), { message: 'No such image: busybox:other' });
  t.deepEqual(img.RepoTags, ['busybox:latest']);
  t.deepEqual(img.Config.Cmd, ['sh']);
  t.is(img.RootFS.Type, 'layers');
  t.is(img.GraphDriver.Name, 'overlay2');
  const dirs = svc.layerDirs(img.Id);
  t.is(dirs.length, 1);
  t.true((await lstat(join(dirs[0], 'bin/busybox'))).isFile());
  t.is(await (await import('node:fs/promises')).readlink(join(dirs[0], 'bin/sh')), 'busybox');
  t.is((await lstat(join(dirs[0], 'tmp'))).mode & 0o7777, 0o1777);
  t.true(img.Size > 1_000_000);
});

test('state survives a restart: records and indexes rebuilt from disk', async (t) => {
  const { svc, root } = await fresh(t);
  await svc.load(createReadStream(await ensureBusyboxTar()));
  await svc.tag('busybox', 'example.com/x/bb', 'v1');
  const again = new ImageService(root);
  await again.init();
  const img = await again.resolve('example.com/x/bb:v1');
  t.deepEqual(img.RepoTags.sort(), ['busybox:latest', 'example.com/x/bb:v1']);
  t.is(again.layerDirs(img.Id).length, 1);
});

test('tag, untag, rmi with usage conflict, delete removes layers', async (t) => {
  const { svc, root } = await fresh(t);
  await svc.load(createReadStream(await ensureBusyboxTar()));
  const id = (await svc.resolve('busybox')).Id;
  await svc.tag('busybox', 'mine', 'v2');
  t.deepEqual(await svc.remove('mine:v2'), [{ Untagged: 'mine:v2' }]);
  svc.setUsageChecker((i) => (i === id ? ['c'.repeat(64)] : []));
  const err = await t.throwsAsync(svc.remove('busybox'));
  t.is(err?.message, `conflict: unable to remove repository reference "busybox" (must force) - container cccccccccccc is using its referenced image ${id.slice(7, 19)}`);
  const err2 = await t.throwsAsync(svc.remove(id.slice(7, 19)));
  t.regex(err2!.message, /must be forced\) - image is being used by stopped container cccccccccccc/);
  svc.setUsageChecker(() => []);
  t.deepEqual(await svc.remove('busybox'), [{ Untagged: 'busybox:latest' }, { Deleted: id }]);
  t.deepEqual(await readdir(join(root, 'layers')), []);
  t.deepEqual(svc.list(), []);
});

test('save then load into a fresh store gives the same ID; archive has the current docker layout', async (t) => {
  const { svc } = await fresh(t);
  await svc.load(createReadStream(await ensureBusyboxTar()));
  const id = (await svc.resolve('busybox')).Id;
  const buf = await collect(svc.save(['busybox']));
  const names: string[] = [];
  const ex = tar.extract();
  const files = new Map<string, Buffer>();
  Readable.from([buf]).pipe(ex);
  for await (const e of ex) { names.push(e.header.name); t.is(e.header.mtime?.getTime(), 0); files.set(e.header.name, await collect(e as any)); }
  t.true(names.includes('index.json')); t.true(names.includes('oci-layout')); t.true(names.includes('manifest.json')); t.true(names.includes('repositories'));
  const index = JSON.parse(files.get('index.json')!.toString());
  t.is(index.manifests[0].annotations['io.containerd.image.name'], 'docker.io/library/busybox:latest');
  t.is(index.manifests[0].annotations['org.opencontainers.image.ref.name'], 'latest');
  const { svc: other } = await fresh(t);
  t.deepEqual(await other.load(Readable.from([buf])), ['busybox:latest']);
  t.is((await other.resolve('busybox')).Id, id);
  // OCI-only (no manifest.json) also loads
  const pack = tar.pack();
  for (const [n, d] of files) if (n !== 'manifest.json' && n !== 'repositories' && !n.endsWith('/')) pack.entry({ name: n }, d);
  pack.finalize();
  const { svc: third } = await fresh(t);
  t.deepEqual(await third.load(pack as any), ['busybox:latest']);
  t.is((await third.resolve('busybox:latest')).Id, id);
});

test('import with changes and message; list filters', async (t) => {
  const { svc } = await fresh(t);
  const pack = tar.pack();
  pack.entry({ name: 'hello.txt' }, 'hi');
  pack.finalize();
  const id = await svc.importImage(pack as any, { repo: 'imported', tag: 't1', message: 'msg', changes: ['CMD ["/bin/x"]', 'ENV A=1 B="two words"', 'LABEL k=v', 'EXPOSE 80'] });
  const img = await svc.resolve('imported:t1');
  t.is(img.Id, id);
  t.deepEqual(img.Config.Cmd, ['/bin/x']);
  t.deepEqual(img.Config.Env, ['A=1', 'B=two words']);
  t.deepEqual(img.Config.ExposedPorts, { '80/tcp': {} });
  t.is(img.Comment, 'msg');
  t.is(svc.list({ filters: { label: ['k=v'] } }).length, 1);
  t.is(svc.list({ filters: { label: ['k=w'] } }).length, 0);
  t.is(svc.list({ filters: { reference: ['imp*'] } }).length, 1);
  t.is(svc.list({ filters: { dangling: ['true'] } }).length, 0);
  t.deepEqual(applyChanges({}, ['WORKDIR /w', 'USER nobody']), { WorkingDir: '/w', User: 'nobody' });
  t.throws(() => applyChanges({}, ['BOGUS x']), { message: 'BOGUS is not a valid change command' });
});

test('a layer whose content does not match its diffID is refused and nothing is kept', async (t) => {
  const { svc, root } = await fresh(t);
  const good = tar.pack(); good.entry({ name: 'f' }, 'x'); good.finalize();
  await t.throwsAsync(svc.addLayer(good as any, null, 'sha256:' + '0'.repeat(64)), { message: /digest mismatch/ });
  t.deepEqual((await readdir(join(root, 'content/sha256'))), []);
  t.deepEqual((await readdir(join(root, 'layers'))), []);
});

test('HEALTHCHECK changes: flags as Go durations, CMD exec and shell forms, NONE', (t) => {
  t.deepEqual(applyChanges({}, ['HEALTHCHECK --interval=1m30s --timeout=500ms --retries=4 CMD wget -q localhost']).Healthcheck,
    { Interval: 90e9, Timeout: 500e6, Retries: 4, Test: ['CMD-SHELL', 'wget -q localhost'] });
  t.deepEqual(applyChanges({}, ['HEALTHCHECK CMD ["true", "x"]']).Healthcheck, { Test: ['CMD', 'true', 'x'] });
  t.deepEqual(applyChanges({}, ['HEALTHCHECK NONE']).Healthcheck, { Test: ['NONE'] });
  t.throws(() => applyChanges({}, ['HEALTHCHECK --interval=5x CMD true']), { message: /invalid duration/ });
});

test('a pulled layer keeps its compressed blob (diffID mapped to it): save, check, a wrong digest, removal', async (t) => {
  const { svc, root } = await fresh(t);
  const { gzipSync } = await import('node:zlib');
  const { createHash } = await import('node:crypto');
  const { checkDataRoot } = await import('../store/check.js');
  const { unlink } = await import('node:fs/promises');
  const pack = tar.pack(); pack.entry({ name: 'f' }, 'hello'); pack.finalize();
  const plain = await collect(pack as any);
  const gz = gzipSync(plain);
  const dig = (b: Buffer): string => `sha256:${createHash('sha256').update(b).digest('hex')}`;
  const mediaType = 'application/vnd.docker.image.rootfs.diff.tar.gzip';
  // a blob digest other than the bytes': refused, nothing kept
  await t.throwsAsync(svc.prepareLayer(Readable.from([gz]), null, dig(plain), { blob: { digest: dig(plain), mediaType } }), { message: /digest mismatch/ });
  t.deepEqual((await readdir(join(root, 'content/sha256'))), []);
  const p = await svc.prepareLayer(Readable.from([gz]), null, dig(plain), { blob: { digest: dig(gz), mediaType } });
  await p.commit();
  await svc.flushLayerDirs();
  t.deepEqual(p.blob, { digest: dig(gz), size: gz.length, mediaType });
  t.deepEqual((await readdir(join(root, 'content/sha256'))), [dig(gz).slice(7)]);
  const cfg = { architecture: 'amd64', os: 'linux', config: {}, rootfs: { type: 'layers', diff_ids: [dig(plain)] } };
  const img = await svc.addImage(Buffer.from(JSON.stringify(cfg)), ['pulled:1']);
  t.deepEqual((await svc.resolve('pulled:1')).RootFS.Layers, [dig(plain)]);
  t.deepEqual(await checkDataRoot(root), []);
  // saved as the compressed blob, with its media type; loads elsewhere as the same image
  const buf = await collect(svc.save(['pulled:1']));
  const files = new Map<string, Buffer>();
  const ex = tar.extract();
  Readable.from([buf]).pipe(ex);
  for await (const e of ex) files.set(e.header.name, await collect(e as any));
  t.deepEqual(files.get(`blobs/sha256/${dig(gz).slice(7)}`), gz);
  const index = JSON.parse(files.get('index.json')!.toString());
  const manifest = JSON.parse(files.get(`blobs/sha256/${index.manifests[0].digest.slice(7)}`)!.toString());
  t.deepEqual(manifest.layers, [{ mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip', digest: dig(gz), size: gz.length }]);
  const { svc: other } = await fresh(t);
  t.deepEqual(await other.load(Readable.from([buf])), ['pulled:1']);
  t.is((await other.resolve('pulled:1')).Id, img.Id);
  // check notices a missing blob; removing the image removes the blob with the layer
  await unlink(join(root, 'content/sha256', dig(gz).slice(7)));
  t.true((await checkDataRoot(root)).some((m) => /blob .* missing/.test(m)));
  await svc.remove('pulled:1');
  t.deepEqual((await readdir(join(root, 'layers'))).filter((n) => !n.startsWith('.')), []);
  t.deepEqual((await readdir(join(root, 'content/sha256'))), []);
});

test('validParent: the Engine\'s rule for docker load Parent links', (t) => {
  const cfg = (history?: any[]) => ({ architecture: 'amd64', os: 'linux', rootfs: { type: 'layers' as const, diff_ids: [] }, ...(history ? { history } : {}) });
  const base = [{ created: '2024-01-02T03:04:05.5Z', created_by: 'a' }, { created: '2024-01-02T03:04:06Z', created_by: 'b', empty_layer: true }];
  t.true(validParent(cfg(), cfg()));
  t.true(validParent(cfg([...base, { created_by: 'c' }]), cfg(base)));
  // the same instant written otherwise (offset, trailing zeros) is the same entry
  t.true(validParent(cfg([{ ...base[0], created: '2024-01-02T04:04:05.500000000+01:00' }, base[1], { created_by: 'c' }]), cfg(base)));
  t.false(validParent(cfg([{ ...base[0], created: '2024-01-02T03:04:05.500000001Z' }, base[1], { created_by: 'c' }]), cfg(base)));
  t.false(validParent(cfg([base[0], { ...base[1], empty_layer: false }, { created_by: 'c' }]), cfg(base)));
  t.false(validParent(cfg([base[0], { ...base[1], created: undefined }, { created_by: 'c' }]), cfg(base)));
  t.false(validParent(cfg(base), cfg(base)));                 // not one more entry
  t.false(validParent(cfg([...base, {}, {}]), cfg(base)));
  t.false(validParent(cfg(base), cfg()));
});

test('an OCI layout whose layers are zstd-compressed loads (native unpacker) with the same image ID', async (t) => {
  const { sha256 } = await import('../oci/image.js');
  const { spawnSync } = await import('node:child_process');
  const { svc } = await fresh(t);
  await svc.load(createReadStream(await ensureBusyboxTar()));
  const id = (await svc.resolve('busybox')).Id;
  const files = new Map<string, Buffer>();
  const ex = tar.extract();
  Readable.from([await collect(svc.save(['busybox']))]).pipe(ex);
  for await (const e of ex) files.set(e.header.name, await collect(e as any));
  const blob = (d: string): string => `blobs/sha256/${d.slice(7)}`;
  const index = JSON.parse(files.get('index.json')!.toString());
  const manifest = JSON.parse(files.get(blob(index.manifests[0].digest))!.toString());
  for (const l of manifest.layers) {
    const zst = spawnSync('zstd', ['-q', '-c'], { input: files.get(blob(l.digest)), maxBuffer: 64 << 20 }).stdout;
    files.delete(blob(l.digest));
    Object.assign(l, { mediaType: 'application/vnd.oci.image.layer.v1.tar+zstd', digest: sha256(zst), size: zst.length });
    files.set(blob(l.digest), zst);
  }
  const mBytes = Buffer.from(JSON.stringify(manifest));
  index.manifests[0] = { ...index.manifests[0], digest: sha256(mBytes), size: mBytes.length };
  files.set(blob(sha256(mBytes)), mBytes);
  files.set('index.json', Buffer.from(JSON.stringify(index)));
  const pack = tar.pack();
  for (const [n, d] of files) if (n !== 'manifest.json' && n !== 'repositories' && !n.endsWith('/')) pack.entry({ name: n }, d);
  pack.finalize();
  const { svc: other } = await fresh(t);
  t.deepEqual(await other.load(pack as any), ['busybox:latest']);
  t.is((await other.resolve('busybox:latest')).Id, id, 'the same config, the same diff IDs');
});
