// The two layer unpackers (the native berth-unpack, and the JavaScript one used when it is not
// built: unpackLayer with batched asynchronous writes) on real layers, checked against what
// they must produce and against each other for the same bytes; layers that fail in each (cut
// short, corrupt, not matching their digests, a download that fails for good) leaving nothing
// of themselves in the store; hostile tars; the native server's restart.
import test from 'ava';
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { lstat, mkdir, mkdtemp, readdir, readFile, readlink, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { promisify } from 'node:util';
import { gzipSync } from 'node:zlib';
import { ImageService } from '../services/images.js';
import { DownloadError } from '../services/registry/blob-download.js';
import { DigestMismatchError } from './content.js';
import { unpack, useUnpackerForTests, type Unpacked, type Unpacker } from './unpack.js';
import { nativeUnpackServerPid, nativeUnpackerUsable } from './native-unpack.js';
import { hostileTars, outsideState, packTar } from '../../compat-tests/hostile-tars.js';
import { sha256 } from '../oci/image.js';

const run = promisify(execFile);

// incompressible, larger than a few write batches (BatchWriter's 1 MiB): the ingest file and
// this file are both written in several asynchronous batches
const big = randomBytes((3 << 20) + 12345);
const small = Buffer.from('hello from a layer\n');
const mtime = new Date('2021-03-04T05:06:07Z');

const layerTar = packTar([
  { header: { name: 'etc/', type: 'directory', mode: 0o750, mtime } },
  { header: { name: 'etc/conf', mode: 0o640, uid: 12, gid: 34, mtime }, data: small },
  { header: { name: 'etc/conf-link', type: 'symlink', linkname: 'conf' } },
  { header: { name: 'etc/conf-hard', type: 'link', linkname: 'etc/conf' } },
  { header: { name: 'var/lib/data.bin', mode: 0o600, mtime }, data: big },
  { header: { name: 'usr/.wh.gone', mode: 0o644 } },
  { header: { name: 'opt/', type: 'directory', mode: 0o755 } },
  { header: { name: 'opt/.wh..wh..opq', mode: 0o644 } },
]);

/** The bytes in 64 KiB chunks, as a stream would bring them. */
const chunked = (b: Buffer, size = 64 << 10): Readable => Readable.from((function* () { for (let o = 0; o < b.length; o += size) yield b.subarray(o, o + size); })());

async function sandbox(t: any): Promise<string> {
  const root = await mkdtemp(join(tmpdir(), 'berth-unpack-'));
  t.teardown(() => rm(root, { recursive: true, force: true }));
  return root;
}

/** An image store in a sandbox with the given unpacker, and the test layer plain and gzipped. */
async function storeWith(t: any, u: Unpacker): Promise<{ root: string; images: ImageService; plain: Buffer; gz: Buffer }> {
  useUnpackerForTests(u);
  const root = await sandbox(t);
  const images = new ImageService(root);
  await images.init();
  const plain = await layerTar;
  return { root, images, plain, gz: gzipSync(plain) };
}

/** Every path under dir (names of temp files included), sorted. */
const tree = async (dir: string): Promise<string[]> => ((await readdir(dir, { recursive: true })) as string[]).sort();

/** The files of an unpacked layer as the test reads them back. */
async function describeLayer(dir: string): Promise<Record<string, unknown>> {
  const st = async (p: string) => lstat(join(dir, p));
  const conf = await st('etc/conf');
  const gone = await st('usr/gone');
  const opaque = (await run('getfattr', ['--only-values', '-n', 'trusted.overlay.opaque', join(dir, 'opt')])).stdout;
  return {
    tree: await tree(dir),
    etc: [(await st('etc')).mode & 0o7777, (await st('etc')).mtime.getTime()],
    conf: [(await readFile(join(dir, 'etc/conf'))).toString(), conf.mode & 0o7777, conf.uid, conf.gid, conf.nlink, conf.mtime.getTime()],
    hard: [(await st('etc/conf-hard')).ino === conf.ino],
    link: [await readlink(join(dir, 'etc/conf-link'))],
    big: [(await readFile(join(dir, 'var/lib/data.bin'))).equals(big), (await st('var/lib/data.bin')).mode & 0o7777],
    whiteout: [gone.isCharacterDevice(), gone.rdev],
    opaque,
  };
}

test.afterEach.always(() => useUnpackerForTests(undefined));

const unpackers: Unpacker[] = ['native', 'javascript'];

test('the native unpacker is built (scripts/setup): the daemon uses it for every layer', (t) => {
  t.true(nativeUnpackerUsable(), 'native/build/berth-unpack is missing: run scripts/setup');
});

test.serial('every unpacker: a gzip layer with files, a symlink, a hard link, a dir and whiteouts is unpacked, hashed and stored the same way', async (t) => {
  const root = await sandbox(t);
  const plain = await layerTar;
  const gz = gzipSync(plain);
  const results: Record<string, { out: Unpacked; ingest: Buffer; layer: Record<string, unknown> }> = {};
  for (const u of unpackers) for (const keepInput of [true, false]) {
    const name = `${u}, ${keepInput ? 'blob' : 'tar'} kept`;
    useUnpackerForTests(u);
    const diff = join(root, name, 'diff');
    await mkdir(diff, { recursive: true });
    const ingest = join(root, name, 'ingest');
    const out = await unpack(chunked(gz), ingest, diff, { keepInput });
    results[name] = { out, ingest: await readFile(ingest), layer: await describeLayer(diff) };
  }
  const fb = results['javascript, blob kept']!;
  t.deepEqual(fb.out, { diffId: sha256(plain), size: small.length + big.length, inputDigest: sha256(gz), inputSize: gz.length });
  t.true(fb.ingest.equals(gz), 'the ingest file holds the gzip blob as given');
  t.deepEqual(fb.layer, {
    tree: ['etc', 'etc/conf', 'etc/conf-hard', 'etc/conf-link', 'opt', 'usr', 'usr/gone', 'var', 'var/lib', 'var/lib/data.bin'],
    etc: [0o750, mtime.getTime()],
    conf: [small.toString(), 0o640, 12, 34, 2, mtime.getTime()],
    hard: [true],
    link: ['conf'],
    big: [true, 0o600],
    whiteout: [true, 0],
    opaque: 'y',
  });
  for (const [name, r] of Object.entries(results)) {
    t.deepEqual(r.out, fb.out, `${name}: the same digests and sizes`);
    t.true(r.ingest.equals(name.endsWith('blob kept') ? gz : plain), `${name}: the ingest file holds ${name.endsWith('blob kept') ? 'the gzip blob as given' : 'the decompressed tar'}`);
    t.deepEqual(r.layer, fb.layer, `${name}: the same files`);
  }
});

for (const u of unpackers) test.serial(`${u} unpacker: a layer cut short, corrupt or not matching its digests fails and leaves nothing in the store`, async (t) => {
  const { root, images, plain, gz } = await storeWith(t, u);
  const corrupt = Buffer.from(gz);
  corrupt[gz.length >> 1] ^= 0xff; // inside the incompressible file: the gzip CRC catches it
  const before = await tree(root);
  const blob = { digest: sha256(gz), mediaType: 'application/vnd.docker.image.rootfs.diff.tar.gzip' };
  const cases: Array<[string, () => Promise<unknown>, RegExp | (new (...a: any[]) => Error)]> = [
    ['cut inside the big file', () => images.prepareLayer(chunked(gz.subarray(0, gz.length >> 1)), null, sha256(plain), { blob }), /unexpected (end of file|EOF)/],
    ['cut in the gzip trailer', () => images.prepareLayer(chunked(gz.subarray(0, gz.length - 4)), null, sha256(plain), { blob }), /unexpected (end of file|EOF)/],
    ['a flipped byte', () => images.prepareLayer(chunked(corrupt), null, sha256(plain), { blob }), /incorrect data check|invalid/],
    ['a blob digest other than the manifest says', () => images.prepareLayer(chunked(gz), null, sha256(plain), { blob: { ...blob, digest: sha256(Buffer.from('other')) } }), DigestMismatchError],
    ['a diffID other than the config says', () => images.prepareLayer(chunked(gz), null, sha256(Buffer.from('other')), { blob }), DigestMismatchError],
    ['a stream that fails mid-way', () => images.prepareLayer(Readable.from((async function* () { yield gz.subarray(0, 2 << 20); throw new Error('client went away'); })()), null, sha256(plain), { blob }), /client went away/],
  ];
  for (const [name, attempt, expected] of cases) {
    const err = await t.throwsAsync(attempt(), typeof expected === 'function' ? { instanceOf: expected } : { message: expected }, name);
    t.truthy(err, name);
    t.deepEqual(await tree(root), before, `${name}: no .ingest- file, .partial- directory or layer left`);
  }
  // the same bytes whole go through, and are the only thing then in the store
  const ok = await images.prepareLayer(chunked(gz), null, sha256(plain), { blob });
  await ok.commit();
  t.deepEqual(images.layers.all().map((l) => [l.diffId, l.blob?.digest]), [[sha256(plain), sha256(gz)]]);
  t.true((await readFile(images.content.path(sha256(gz)))).equals(gz));
});

for (const u of unpackers) test.serial(`${u} unpacker: a download that fails for good (cut each time) leaves nothing in the store`, async (t) => {
  const { root, images, plain, gz } = await storeWith(t, u);
  let requests = 0;
  // every connection cut after 1 MiB of the blob
  const server: Server = createServer((_req, res) => {
    requests++;
    res.writeHead(200, { 'content-length': gz.length });
    res.write(gz.subarray(0, 1 << 20), () => res.destroy());
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.teardown(() => new Promise<void>((resolve) => { server.closeAllConnections(); server.close(() => resolve()); }));
  const before = await tree(root);
  const download = { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/v2/r/blobs/${sha256(gz)}`, headers: {}, size: gz.length, attempts: 2, retryDelayMs: 10 };
  const err = await t.throwsAsync(images.prepareLayer({ download, signal: new AbortController().signal, events: {} }, null, sha256(plain), {
    blob: { digest: sha256(gz), mediaType: 'application/vnd.docker.image.rootfs.diff.tar.gzip' },
  }), { instanceOf: DownloadError });
  t.regex(err!.message, new RegExp(`^unexpected EOF after ${1 << 20} of ${gz.length} bytes`));
  t.is(requests, 2);
  t.deepEqual(await tree(root), before, 'no .ingest- file, .partial- directory or layer left');
});

test.serial('every unpacker contains or refuses every hostile tar, and they agree on which', async (t) => {
  const root = await sandbox(t);
  const outside = join(root, 'outside');
  await mkdir(outside);
  const untouched = await outsideState(outside);
  const host = await stat('/etc/hostname');
  const outcomes: Record<string, string[]> = {};
  for (const u of unpackers) {
    useUnpackerForTests(u);
    outcomes[u] = [];
    let i = 0;
    for (const c of await hostileTars(outside)) {
      // the layer two levels down a directory of the test's own: a whiteout of ".." stays in it
      const box = join(root, `${u}-${++i}`);
      const dest = join(box, 'layer', 'diff');
      await mkdir(dest, { recursive: true });
      const outcome = await unpack(Readable.from([c.tar]), join(box, 'ingest'), dest).then(() => 'contained', () => 'refused');
      outcomes[u]!.push(`${c.name}: ${outcome}`);
      t.deepEqual(await outsideState(outside), untouched, `${u}: ${c.name}`);
      t.true((await stat(dest)).isDirectory(), `${u}: ${c.name}: the layer directory is still there`);
      for (const name of await readdir(dest)) {
        const st = await lstat(join(dest, name));
        t.false(st.ino === host.ino && st.dev === host.dev, `${u}: ${c.name}: ${name} is the host's /etc/hostname`);
      }
    }
  }
  t.deepEqual(outcomes.native, outcomes.javascript, 'the native unpacker refuses what the JavaScript one refuses');
});

/** Every path under dir with what tar keeps of it (times to the second: the JavaScript unpacker keeps milliseconds). */
async function snapshot(dir: string): Promise<Record<string, unknown>> {
  const out: Record<string, unknown> = {};
  const walk = async (rel: string): Promise<void> => {
    for (const name of (await readdir(join(dir, rel))).sort()) {
      const p = rel ? `${rel}/${name}` : name;
      const st = await lstat(join(dir, p));
      const type = st.isDirectory() ? 'dir' : st.isSymbolicLink() ? 'symlink' : st.isFile() ? 'file' : st.isCharacterDevice() ? 'char' : st.isBlockDevice() ? 'block' : st.isFIFO() ? 'fifo' : 'other';
      out[p] = {
        type, mode: st.mode & 0o7777, uid: st.uid, gid: st.gid, mtime: Math.floor(st.mtimeMs / 1000), rdev: st.rdev, nlink: type === 'dir' ? undefined : st.nlink,
        content: type === 'file' ? sha256(await readFile(join(dir, p))) : type === 'symlink' ? await readlink(join(dir, p)) : undefined,
      };
      if (type === 'dir') await walk(p);
    }
  };
  await walk('');
  const xattrs = await run('getfattr', ['-R', '-h', '-d', '-m', '-', '--absolute-names', dir]).then((r) => r.stdout.split(dir).join('<root>'), () => 'getfattr failed');
  return { tree: out, xattrs };
}

// device nodes, ownership and trusted xattrs need root; CI runs as root
const asRoot = process.getuid?.() === 0 ? test.serial : test.skip;
asRoot('the native and JavaScript unpackers make the same tree of a tar GNU tar wrote (pax and GNU formats; needs root)', async (t) => {
  const root = await sandbox(t);
  const src = join(root, 'src');
  const long = `${'long-directory-name-'.repeat(6)}/${'very-long-file-name-'.repeat(8)}`;
  await mkdir(join(src, long.split('/')[0]!), { recursive: true });
  const sh = [
    `cd ${src}`,
    `printf 'long\\n' > '${long}'`,
    'mkdir -p dir/sub && chmod 2750 dir && printf x > dir/sub/f && chown 1234:5678 dir/sub/f',
    'printf suid > suid && chmod 4755 suid',
    'ln -s dir/sub/f link && ln link hard-to-link',
    'printf data > data && ln data data-hard',
    'mknod chr c 1 3 && mknod blk b 7 0 && mkfifo fifo',
    "printf u > 'ünïcödé 日本'",
    'setfattr -n user.berth -v hello data && setfattr -n trusted.berth -v secret dir',
    'touch -h -d @1000000000.123456789 link && touch -d @1234567890.5 dir/sub/f dir/sub dir data',
  ].join(' && ');
  await run('sh', ['-c', sh]);
  for (const format of ['pax', 'gnu']) {
    const archive = join(root, `${format}.tar`);
    // GNU tar writes xattrs in pax archives only
    await run('tar', [...(format === 'pax' ? ['--xattrs', '--xattrs-include=*'] : []), `--format=${format}`, '-C', src, '-cf', archive, '.']);
    const bytes = await readFile(archive);
    const trees: Record<string, Record<string, unknown>> = {};
    for (const u of unpackers) {
      useUnpackerForTests(u);
      const dest = join(root, `${format}-${u}`);
      await mkdir(dest);
      const out = await unpack(chunked(bytes), join(root, `${format}-${u}-ingest`), dest);
      t.is(out.diffId, sha256(bytes), `${format}, ${u}`);
      trees[u] = await snapshot(dest);
    }
    t.deepEqual(trees.native, trees.javascript, `${format}: the same files, owners, modes, times, links, devices and xattrs`);
    const tree = trees.native!.tree as Record<string, any>;
    t.is(tree[long]?.type, 'file', `${format}: a name longer than 100 bytes`);
    t.is(tree['dir/sub/f']?.uid, 1234);
    t.is(tree.suid?.mode, 0o4755);
    t.is(tree.dir?.mode, 0o2750);
    t.is(tree.chr?.type, 'char');
    t.is(tree['hard-to-link']?.type, 'symlink', `${format}: a hard link to a symlink is the symlink`);
    if (format === 'pax') {
      t.regex(trees.native!.xattrs as string, /user\.berth="hello"/, `${format}: xattrs`);
      t.regex(trees.native!.xattrs as string, /trusted\.berth="secret"/);
    }
  }
});

test.serial('the native unpacker\'s server ending is noticed: the next layer starts a new one', async (t) => {
  const root = await sandbox(t);
  const tarBytes = await packTar([{ header: { name: 'f' }, data: 'x' }]);
  const once = async (i: number): Promise<Unpacked> => {
    await mkdir(join(root, `d${i}`));
    return unpack(Readable.from([tarBytes]), join(root, `i${i}`), join(root, `d${i}`));
  };
  useUnpackerForTests('native');
  t.is((await once(1)).diffId, sha256(tarBytes));
  const pid = nativeUnpackServerPid()!;
  t.truthy(pid);
  process.kill(pid, 'SIGKILL'); // our own child
  for (let i = 0; i < 100 && nativeUnpackServerPid() === pid; i++) await new Promise((r) => setTimeout(r, 20));
  t.is((await once(2)).diffId, sha256(tarBytes));
  t.not(nativeUnpackServerPid(), pid, 'a new server');
});
