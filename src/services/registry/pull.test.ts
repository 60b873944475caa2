// Pulls through RegistryService from a small token-auth registry on 127.0.0.1 (plain HTTP, as
// a 127.0.0.0/8 registry may be) whose bearer tokens expire while the layers download: the
// unpacker's blob GET is refused with 401, the registry client answers the challenge again
// (a new token) and the layer download starts over, once. Each case runs with the native
// unpacker (its own downloader) and with the JavaScript one used when it is not built.
import test from 'ava';
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { mkdtemp, readdir, readFile, readlink, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { useUnpackerForTests, type Unpacker } from '../../store/unpack.js';
import { ImageService } from '../images.js';
import type { DaemonConfig } from '../index.js';
import { RegistryService } from './index.js';
import { MEDIA } from './pull.js';
import { packTar } from '../../../compat-tests/hostile-tars.js';
import { sha256 } from '../../oci/image.js';


const REPO = 'test/app';
const SCOPE = `repository:${REPO}:pull`;

interface Image { manifest: Buffer; config: Buffer; layers: Array<{ digest: string; gz: Buffer; files: Record<string, Buffer>; mediaType?: string }> }

/**
 * Three gzip layers of a directory, a file of incompressible bytes (several download batches)
 * and a symlink; with `zstd`, the second layer is zstd-compressed (OCI tar+zstd) instead.
 */
async function makeImage(zstd = false): Promise<Image> {
  const layers: Image['layers'] = [];
  const diffIds: string[] = [];
  for (let i = 0; i < 3; i++) {
    const files = { [`l${i}/data`]: randomBytes(1536 << 10), [`l${i}/small`]: Buffer.from(`layer ${i}\n`) };
    const tarBytes = await packTar([
      { header: { name: `l${i}/`, type: 'directory', mode: 0o755 } },
      ...Object.entries(files).map(([name, data]) => ({ header: { name, mode: 0o644 }, data })),
      { header: { name: `l${i}/link`, type: 'symlink', linkname: 'small' } },
    ]);
    if (zstd && i === 1) {
      const zst = spawnSync('zstd', ['-q', '-c'], { input: tarBytes, maxBuffer: 64 << 20 }).stdout;
      layers.push({ digest: sha256(zst), gz: zst, files, mediaType: 'application/vnd.oci.image.layer.v1.tar+zstd' });
      diffIds.push(sha256(tarBytes));
      continue;
    }
    const gz = gzipSync(tarBytes);
    layers.push({ digest: sha256(gz), gz, files });
    diffIds.push(sha256(tarBytes));
  }
  const config = Buffer.from(JSON.stringify({ architecture: 'amd64', os: 'linux', config: { Cmd: ['/bin/sh'] }, rootfs: { type: 'layers', diff_ids: diffIds } }));
  const manifest = Buffer.from(JSON.stringify({
    schemaVersion: 2, mediaType: MEDIA.dockerManifest,
    config: { mediaType: MEDIA.dockerConfig, size: config.length, digest: sha256(config) },
    layers: layers.map((l) => ({ mediaType: l.mediaType ?? MEDIA.dockerLayerGzip, size: l.gz.length, digest: l.digest })),
  }));
  return { manifest, config, layers };
}

interface RegistryOptions { refuseLayerGets?: boolean; cutFirstLayerGet?: boolean }

interface Logged { method: string; path: string; token: string; range?: string; status: number; cut?: true }

/**
 * The registry and its token service in one server. Tokens are `t1`, `t2`... Every token
 * issued so far expires (401 invalid_token, as a registry answers an expired bearer token) at
 * the first layer blob GET, or with `cutFirstLayerGet` once that GET has sent part of the
 * blob and is cut (the download's resume then meets the expired token); later tokens are
 * good. With `refuseLayerGets` every layer GET is refused whatever its token (HEADs of the
 * blob pass with a good token), and a third GET of a blob gets a 404.
 */
async function startRegistry(img: Image, o: RegistryOptions = {}) {
  let issued = 0;
  let expiredUpTo = 0; // tokens t1..tN are expired
  const log: Logged[] = [];
  const layers = new Map(img.layers.map((l) => [l.digest, l.gz]));
  let realm = '';
  let cut = false;
  const challenge = (res: ServerResponse, error?: string): void => {
    res.writeHead(401, {
      'www-authenticate': `Bearer realm="${realm}",service="fake-registry",scope="${SCOPE}"${error ? `,error="${error}"` : ''}`,
      'content-type': 'application/json',
    }).end('{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}');
  };
  const handle = (req: IncomingMessage, res: ServerResponse, token: string): number => {
    const url = new URL(req.url ?? '/', 'http://x');
    if (url.pathname === '/token') {
      if (url.searchParams.getAll('scope').join(' ') !== SCOPE) { res.writeHead(400).end(); return 400; }
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ token: `t${++issued}`, expires_in: 60 }));
      return 200;
    }
    const n = /^t(\d+)$/.exec(token)?.[1];
    const layer = /^\/v2\/test\/app\/blobs\/(sha256:[0-9a-f]{64})$/.exec(url.pathname)?.[1];
    const layerBytes = layer ? layers.get(layer) : undefined;
    if (layerBytes && req.method === 'GET' && !expiredUpTo && !o.cutFirstLayerGet) expiredUpTo = issued;
    if (!n || Number(n) > issued) { challenge(res); return 401; }
    if (layerBytes && req.method === 'GET' && o.refuseLayerGets) {
      // a client that kept authenticating again would loop: its third GET of a blob ends it
      if (log.filter((r) => r.method === 'GET' && r.path === url.pathname).length >= 2) { res.writeHead(404).end(); return 404; }
      challenge(res, 'invalid_token');
      return 401;
    }
    if (Number(n) <= expiredUpTo) { challenge(res, 'invalid_token'); return 401; }
    let body: Buffer | undefined;
    const headers: Record<string, string | number> = {};
    if (url.pathname === '/v2/') body = Buffer.from('{}');
    else if (url.pathname === `/v2/${REPO}/manifests/1`) {
      body = img.manifest;
      headers['content-type'] = MEDIA.dockerManifest;
      headers['docker-content-digest'] = sha256(img.manifest);
    } else if (url.pathname === `/v2/${REPO}/blobs/${sha256(img.config)}`) body = img.config;
    else if (layerBytes) body = layerBytes;
    if (!body) { res.writeHead(404).end(); return 404; }
    res.writeHead(200, { ...headers, 'content-length': body.length });
    if (layerBytes && req.method === 'GET' && o.cutFirstLayerGet && !cut) {
      cut = true;
      res.write(body.subarray(0, body.length >> 1), () => { expiredUpTo = issued; res.destroy(); });
      return -200;
    }
    res.end(req.method === 'HEAD' ? undefined : body);
    return 200;
  };
  const server: Server = createServer((req, res) => {
    const token = /^Bearer (.+)$/.exec(req.headers.authorization ?? '')?.[1] ?? '';
    const status = handle(req, res, token);
    log.push({
      method: req.method ?? '', path: new URL(req.url ?? '/', 'http://x').pathname, token, range: req.headers.range,
      status: Math.abs(status), ...(status < 0 ? { cut: true as const } : {}),
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const host = `127.0.0.1:${(server.address() as AddressInfo).port}`;
  realm = `http://${host}/token`;
  return {
    host, log,
    /** Token requests answered so far. */
    get issued() { return issued; },
    /** The newest token that had expired (at the first layer GET). */
    get expiredUpTo() { return expiredUpTo; },
    close: () => new Promise<void>((resolve) => { server.closeAllConnections(); server.close(() => resolve()); }),
  };
}

/** Every path under dir (names of temp files included), sorted. */
async function tree(dir: string): Promise<string[]> {
  return ((await readdir(dir, { recursive: true })) as string[]).sort();
}

async function setup(t: any, mode: Unpacker, o: RegistryOptions & { zstd?: boolean } = {}) {
  useUnpackerForTests(mode);
  t.teardown(() => useUnpackerForTests(undefined));
  const root = await mkdtemp(join(tmpdir(), 'berth-pull-'));
  t.teardown(() => rm(root, { recursive: true, force: true }));
  const images = new ImageService(join(root, 'data'));
  await images.init();
  const img = await makeImage(o.zstd);
  const reg = await startRegistry(img, o);
  t.teardown(() => reg.close());
  const config = { dataRoot: join(root, 'data'), configFile: join(root, 'daemon.json'), file: { 'max-concurrent-downloads': 3 } } as unknown as DaemonConfig;
  const registry = new RegistryService(config, images);
  const progress: Array<Record<string, unknown>> = [];
  const pull = async (): Promise<string> => (await registry.startPull(`${reg.host}/${REPO}`, '1', undefined, ''))((m) => progress.push(m));
  return { root, images, img, reg, pull, progress };
}

for (const mode of ['native', 'javascript'] as const) {
  test.serial(`a layer GET refused with 401 (expired token) is authenticated again and downloaded again (${mode})`, async (t) => {
    const { root, images, img, reg, pull, progress } = await setup(t, mode);
    const id = await pull();
    t.is(id, sha256(img.config));
    t.true(reg.expiredUpTo >= 1, 'tokens expired at the first layer GET');
    t.true(reg.issued > reg.expiredUpTo, 'a new token was asked for after they expired');
    for (const l of img.layers) {
      const gets = reg.log.filter((r) => r.method === 'GET' && r.path.endsWith(l.digest));
      t.deepEqual(gets.map((r) => r.status), [401, 200], `${l.digest}: refused once, then downloaded`);
      t.true(Number(gets[0]!.token.slice(1)) <= reg.expiredUpTo, 'the refused GET carried an expired token');
      t.true(Number(gets[1]!.token.slice(1)) > reg.expiredUpTo, 'the second GET carried a token asked for after the refusal');
    }
    t.is(progress.filter((m) => m.status === 'Pull complete').length, 3);
    // the bytes the downloader reports become the Engine's Downloading progress, up to the whole
    for (const l of img.layers) {
      const shown = progress.filter((m) => m.id === l.digest.slice(7, 19) && m.status === 'Downloading').map((m) => (m.progressDetail as any)?.current);
      t.true(shown.length > 0 && shown.at(-1) === l.gz.length, `${l.digest}: Downloading up to ${l.gz.length}: ${shown}`);
    }
    const dirs = images.layerDirs(id).reverse(); // bottom-most first, as the manifest lists them
    t.is(dirs.length, 3);
    for (const [i, l] of img.layers.entries()) {
      for (const [name, data] of Object.entries(l.files)) t.true((await readFile(join(dirs[i]!, name))).equals(data), name);
      t.is(await readlink(join(dirs[i]!, `l${i}/link`)), 'small');
    }
    t.deepEqual((await tree(join(root, 'data'))).filter((p) => /(^|\/)\.(partial|ingest)-/.test(p)), [], 'no temp name of the refused tries is left');
  });

  test.serial(`a download cut mid-blob whose resume is refused with 401 (the token expired meanwhile) is authenticated again and started over (${mode})`, async (t) => {
    const { root, images, img, reg, pull, progress } = await setup(t, mode, { cutFirstLayerGet: true });
    const id = await pull();
    t.is(id, sha256(img.config));
    const cutAt = reg.log.findIndex((r) => r.cut);
    const layer = img.layers.find((l) => reg.log[cutAt]!.path.endsWith(l.digest))!;
    const gets = reg.log.filter((r) => r.method === 'GET' && r.path.endsWith(layer.digest));
    t.deepEqual(gets.map((r) => [r.status, !!r.cut, r.range === undefined]), [[200, true, true], [401, false, false], [200, false, true]],
      'cut, its resume (a Range request) refused, then the whole blob again');
    t.regex(gets[1]!.range!, /^bytes=[1-9]\d*-$/, 'the resume asked for the bytes after those it had');
    t.true(Number(gets[2]!.token.slice(1)) > reg.expiredUpTo, 'with a token asked for after the refusal');
    t.true(progress.some((m) => m.status === 'Retrying in 5 seconds'), 'the cut was retried after the wait');
    const i = img.layers.indexOf(layer);
    const dir = images.layerDirs(id).reverse()[i]!;
    for (const [name, data] of Object.entries(layer.files)) t.true((await readFile(join(dir, name))).equals(data), name);
    t.deepEqual((await tree(join(root, 'data'))).filter((p) => /(^|\/)\.(partial|ingest)-/.test(p)), [], 'no temp name of the first try is left');
  });

  test.serial(`a layer GET refused again after the new token fails the pull with a clear error and leaves nothing in the store (${mode})`, async (t) => {
    const { root, images, img, reg, pull } = await setup(t, mode, { refuseLayerGets: true });
    const before = await tree(join(root, 'data'));
    const err = await t.throwsAsync(pull());
    t.regex(err!.message, /^error pulling blob sha256:[0-9a-f]{64}: registry answered 401$/);
    t.true(img.layers.some((l) => err!.message.includes(l.digest)));
    for (const l of img.layers) {
      const gets = reg.log.filter((r) => r.method === 'GET' && r.path.endsWith(l.digest));
      t.true(gets.length <= 2, `${l.digest}: authenticated again once at most (${gets.length} GETs)`);
      t.true(gets.every((r) => r.status === 401));
    }
    const failed = img.layers.find((l) => err!.message.includes(l.digest))!;
    const failedGets = reg.log.filter((r) => r.method === 'GET' && r.path.endsWith(failed.digest));
    t.is(failedGets.length, 2, 'the failed layer was tried twice');
    t.true(Number(failedGets[1]!.token.slice(1)) > reg.expiredUpTo, 'the second time with a token asked for after the first refusal');
    t.deepEqual(await tree(join(root, 'data')), before, 'no layer, blob or temp file is left');
    t.deepEqual(images.store.all(), []);
    t.deepEqual(images.layers.all(), []);
  });
}

test.serial('a zstd layer (OCI tar+zstd) is pulled by the native unpacker; without it the pull fails clearly and keeps nothing', async (t) => {
  const { images, img, pull } = await setup(t, 'native', { zstd: true });
  const id = await pull();
  const dir = images.layerDirs(id).reverse()[1]!;
  for (const [name, data] of Object.entries(img.layers[1]!.files)) t.true((await readFile(join(dir, name))).equals(data), name);
  t.is(images.layers.all().find((l) => l.blob?.digest === img.layers[1]!.digest)?.blob?.mediaType, 'application/vnd.oci.image.layer.v1.tar+zstd', 'the blob is kept as given, with its type');
  for (const mode of ['javascript'] as const) {
    const js = await setup(t, mode, { zstd: true });
    const err = await t.throwsAsync(js.pull());
    t.regex(err!.message, /zstd-compressed layers are not supported|verification failed/, mode);
    t.deepEqual(js.images.layers.all(), [], `${mode}: nothing kept`);
  }
});
