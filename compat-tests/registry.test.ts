// docker login / push / pull / rmi against a real registry on 127.0.0.1 with TLS and htpasswd,
// and cross-repository mounts against one with token auth.
import test from 'ava';
import { readdir, readFile, writeFile } from 'node:fs/promises';
import { createServer, type AddressInfo } from 'node:net';
import { join } from 'node:path';
import { startDaemon, type Daemon } from './harness.js';
import { removeAllAndStop, startDaemonWithBusybox } from './images-fixture.js';
import { startRegistry, type Registry } from './registry-fixture.js';

let d: Daemon;
let reg: Registry;
let tok: Registry; // token auth; LIMITED may push to its own repository only
const LIMITED = { user: 'pusher', password: 'no-pull-on-a', repo: 'only-mine' };
test.before(async () => {
  reg = await startRegistry();
  tok = await startRegistry({ auth: 'token', policy: { [LIMITED.user]: { password: LIMITED.password, access: { [LIMITED.repo]: ['pull', 'push'] } } } });
  d = await startDaemonWithBusybox();
  await reg.trustIn(d.dir); // the daemon's config dir is where its daemon.json is
  await tok.trustIn(d.dir);
});
test.after.always(async () => { await removeAllAndStop(d); await reg?.stop(); await tok?.stop(); });

test.serial('login: a wrong password is refused with the Engine message; the right one succeeds', async (t) => {
  const bad = await d.docker(['login', '-u', reg.user, '--password-stdin', reg.host], { input: 'wrong\n' });
  t.not(bad.code, 0);
  t.regex(bad.stderr, new RegExp(`login attempt to https://${reg.host}/v2/ failed with status: 401 Unauthorized`));
  const ok = await d.docker(['login', '-u', reg.user, '--password-stdin', reg.host], { input: `${reg.password}\n` });
  t.is(ok.code, 0, ok.stderr);
  t.regex(ok.stdout, /Login Succeeded/);
});

test.serial('push, rmi, pull by tag and by digest round-trip the image', async (t) => {
  const name = `${reg.host}/app`;
  t.is((await d.docker(['tag', 'busybox', `${name}:1`])).code, 0);
  const push = await d.docker(['push', `${name}:1`]);
  t.is(push.code, 0, push.stderr);
  t.regex(push.stdout, /The push refers to repository \[127\.0\.0\.1:\d+\/app\]/);
  t.regex(push.stdout, /Pushed/);
  const digest = /1: digest: (sha256:[0-9a-f]{64}) size: \d+/.exec(push.stdout)?.[1];
  t.truthy(digest, push.stdout);
  const again = await d.docker(['push', `${name}:1`]);
  t.regex(again.stdout, /Layer already exists/);
  const id = (await d.docker(['image', 'inspect', '-f', '{{.Id}}', `${name}:1`])).stdout.trim();
  t.is((await d.docker(['rmi', `${name}:1`])).code, 0);
  const pull = await d.docker(['pull', `${name}:1`]);
  t.is(pull.code, 0, pull.stderr);
  t.regex(pull.stdout, new RegExp(`Digest: ${digest}`));
  t.regex(pull.stdout, /Status: (Downloaded newer image|Image is up to date) for 127\.0\.0\.1:\d+\/app:1/);
  t.is((await d.docker(['image', 'inspect', '-f', '{{.Id}}', `${name}:1`])).stdout.trim(), id);
  t.regex((await d.docker(['image', 'inspect', '-f', '{{json .RepoDigests}}', `${name}:1`])).stdout, new RegExp(`app@${digest}`));
  // into a fresh daemon (nothing present): every layer downloaded and extracted, and it runs
  const fresh = await startDaemonWithBusybox();
  try {
    await reg.trustIn(fresh.dir);
    await fresh.docker(['login', '-u', reg.user, '--password-stdin', reg.host], { input: `${reg.password}\n` });
    await fresh.docker(['rmi', 'busybox']);
    const byDigest = await fresh.docker(['pull', `${name}@${digest}`]);
    t.is(byDigest.code, 0, byDigest.stderr);
    t.regex(byDigest.stdout, /Pull complete/);
    const r = await fresh.docker(['run', '--rm', `${name}@${digest}`, 'echo', 'pulled']);
    t.is(r.stdout, 'pulled\n', r.stderr);
    const dist = await fresh.request('GET', `/distribution/${name}:1/json`, undefined, { 'X-Registry-Auth': Buffer.from(JSON.stringify({ username: reg.user, password: reg.password })).toString('base64') });
    t.is(dist.json.Descriptor.digest, digest);
    t.deepEqual(dist.json.Platforms, [{ architecture: 'amd64', os: 'linux' }]);
    // the pulled layers are kept as the compressed blobs downloaded: pushed to another
    // repository they are mounted, not recompressed, so the manifest is the same one
    t.is((await fresh.docker(['tag', `${name}@${digest}`, `${reg.host}/app-copy:1`])).code, 0);
    const back = await fresh.docker(['push', `${reg.host}/app-copy:1`]);
    t.is(back.code, 0, back.stderr);
    t.regex(back.stdout, /Mounted from app/);
    t.regex(back.stdout, new RegExp(`1: digest: ${digest} size`));
    // saved (with those blobs), removed and loaded again: the same image, and it runs
    const { mkdtemp: mkd, rm: rmd } = await import('node:fs/promises');
    const tmp = await mkd('/tmp/bpullsave-');
    try {
      const saved = join(tmp, 'pulled.tar');
      const s = await fresh.docker(['save', '-o', saved, `${reg.host}/app-copy:1`]);
      t.is(s.code, 0, s.stderr);
      t.is((await fresh.docker(['rmi', '-f', id])).code, 0);
      t.deepEqual((await readdir(join(fresh.dataRoot, 'layers'))).filter((n) => !n.startsWith('.')), []);
      const l = await fresh.docker(['load', '-i', saved]);
      t.is(l.code, 0, l.stderr);
      t.is((await fresh.docker(['image', 'inspect', '-f', '{{.Id}}', `${reg.host}/app-copy:1`])).stdout.trim(), id);
      const ran = await fresh.docker(['run', '--rm', `${reg.host}/app-copy:1`, 'echo', 'loaded']);
      t.is(ran.stdout, 'loaded\n', ran.stderr);
    } finally { await rmd(tmp, { recursive: true, force: true }); }
  } finally {
    await removeAllAndStop(fresh);
  }
});

test.serial('docker build --pull fetches a base image named with a registry', async (t) => {
  const { mkdtemp, writeFile: wf, rm: rmd } = await import('node:fs/promises');
  const ctx = await mkdtemp('/tmp/bpullbuild-');
  try {
    await d.docker(['rmi', '-f', `${reg.host}/app:1`]);
    await wf(join(ctx, 'Dockerfile'), `FROM ${reg.host}/app:1\nCMD ["echo", "built on pulled"]\n`);
    const b = await d.docker(['build', '--pull', '-t', 'onpulled:1', ctx], { env: { DOCKER_BUILDKIT: '0' } });
    t.is(b.code, 0, b.stderr + b.stdout);
    t.is((await d.docker(['run', '--rm', 'onpulled:1'])).stdout, 'built on pulled\n');
  } finally { await rmd(ctx, { recursive: true, force: true }); }
});

test.serial('unknown tags and missing credentials give the Engine errors', async (t) => {
  const missing = await d.docker(['pull', `${reg.host}/app:nope`]);
  t.not(missing.code, 0);
  t.regex(missing.stderr, /manifest for 127\.0\.0\.1:\d+\/app:nope not found: manifest unknown/);
  const other = await startDaemonWithBusybox();
  try {
    await reg.trustIn(other.dir);
    const denied = await other.docker(['pull', `${reg.host}/app:1`]);
    t.not(denied.code, 0);
    t.regex(denied.stderr, /pull access denied for 127\.0\.0\.1:\d+\/app, repository does not exist or may require 'docker login'/);
  } finally {
    await removeAllAndStop(other);
  }
});

test.serial('search against a registry without a search endpoint is a clear error', async (t) => {
  const r = await d.docker(['search', `${reg.host}/app`]);
  t.not(r.code, 0);
  t.regex(r.stderr, /does not offer search/);
});

test.serial('a corrupted blob in the registry fails the pull cleanly, leaving nothing behind', async (t) => {
  const name = `${reg.host}/corrupt`;
  await d.docker(['tag', 'busybox', `${name}:1`]);
  t.is((await d.docker(['push', `${name}:1`])).code, 0);
  // corrupt every layer blob's data in the registry's storage (same size, other bytes)
  const blobsDir = join(reg.storage, 'docker/registry/v2/blobs/sha256');
  let corrupted = 0;
  for (const pre of await readdir(blobsDir)) {
    for (const hex of await readdir(join(blobsDir, pre))) {
      const f = join(blobsDir, pre, hex, 'data');
      const data = await readFile(f);
      if (data[0] === 0x1f && data[1] === 0x8b) { data[data.length - 20] ^= 0xff; await writeFile(f, data); corrupted++; }
    }
  }
  t.true(corrupted > 0);
  const fresh = await startDaemonWithBusybox();
  try {
    await reg.trustIn(fresh.dir);
    await fresh.docker(['login', '-u', reg.user, '--password-stdin', reg.host], { input: `${reg.password}\n` });
    await fresh.docker(['rmi', 'busybox']);
    const layersBefore = await readdir(join(fresh.dataRoot, 'layers'));
    const pull = await fresh.docker(['pull', `${name}:1`]);
    t.not(pull.code, 0);
    t.regex(pull.stderr + pull.stdout, /verification failed|digest/);
    t.deepEqual(await readdir(join(fresh.dataRoot, 'layers')), layersBefore);
    t.is((await fresh.docker(['images', '-q'])).stdout.trim(), '');
    t.deepEqual((await readdir(join(fresh.dataRoot, 'tmp'))).filter((n) => n.startsWith('pull-')), []);
  } finally {
    await removeAllAndStop(fresh);
  }
});

test.serial('hostile layers served by a registry are contained or refused when pulled', async (t) => {
  const { mkdtemp: mkd, rm: rmd } = await import('node:fs/promises');
  const { hostileTars, asImageArchive, outsideState } = await import('./hostile-tars.js');
  const outside = await mkd('/tmp/bhostile-pull-');
  const fresh = await startDaemonWithBusybox();
  try {
    await reg.trustIn(fresh.dir);
    await fresh.docker(['login', '-u', reg.user, '--password-stdin', reg.host], { input: `${reg.password}\n` });
    let pushed = 0;
    let i = 0;
    const untouched = await outsideState(outside);
    for (const c of await hostileTars(outside)) {
      const name = `${reg.host}/hostile:${++i}`;
      // load (contained or refused here already), then push the original layer bytes
      const load = await d.docker(['load'], { input: await asImageArchive(c.tar, name) });
      if (load.code !== 0) continue;
      if ((await d.docker(['push', name])).code !== 0) continue;
      pushed++;
      const pull = await fresh.docker(['pull', name]);
      if (pull.code !== 0) t.regex(pull.stderr + pull.stdout, /\S/, c.name);
      t.deepEqual(await outsideState(outside), untouched, `pull: ${c.name}`);
    }
    t.true(pushed >= 3, `only ${pushed} hostile images could be pushed`);
  } finally {
    await removeAllAndStop(fresh);
    await rmd(outside, { recursive: true, force: true });
  }
});

const login = (x: Daemon, user: string, password: string) => x.docker(['login', '-u', user, '--password-stdin', tok.host], { input: `${password}\n` });

/** busybox pushed to <tok>/a:1 once; its manifest digest. */
let pushedA: Promise<string> | undefined;
const pushA = (): Promise<string> => pushedA ??= (async () => {
  if ((await login(d, tok.user, tok.password)).code !== 0) throw new Error('login to the token registry failed');
  await d.docker(['tag', 'busybox', `${tok.host}/a:1`]);
  const r = await d.docker(['push', `${tok.host}/a:1`]);
  const digest = /1: digest: (sha256:[0-9a-f]{64})/.exec(r.stdout)?.[1];
  if (r.code !== 0 || !/Pushed/.test(r.stdout) || !digest) throw new Error(`push to a failed: ${r.stdout}${r.stderr}`);
  return digest;
})();

/** A fresh daemon (no images) that trusts tok, with <tok>/a:1 pulled as the default user. */
async function pulledA(): Promise<Daemon> {
  const x = await startDaemon();
  await tok.trustIn(x.dir);
  if ((await login(x, tok.user, tok.password)).code !== 0 || (await x.docker(['pull', `${tok.host}/a:1`])).code !== 0) {
    await removeAllAndStop(x);
    throw new Error('pull of a:1 from the token registry failed');
  }
  return x;
}

test.serial('token auth: a pulled image pushed to another repository is mounted, with a token for both repositories', async (t) => {
  const digest = await pushA();
  const x = await pulledA();
  try {
    t.is((await x.docker(['tag', `${tok.host}/a:1`, `${tok.host}/b:1`])).code, 0);
    const seen = tok.tokenRequests.length;
    const push = await x.docker(['push', `${tok.host}/b:1`]);
    t.is(push.code, 0, push.stderr);
    t.regex(push.stdout, /Mounted from a/);
    t.notRegex(push.stdout, /Pushed/);
    t.regex(push.stdout, new RegExp(`1: digest: ${digest} size`));
    // distribution checks pull on the source of a mount: one token request names both
    t.true(tok.tokenRequests.slice(seen).some((r) => r.user === tok.user
      && JSON.stringify(r.scopes) === JSON.stringify(['repository:b:pull,push', 'repository:a:pull'])), JSON.stringify(tok.tokenRequests.slice(seen)));
  } finally { await removeAllAndStop(x); }
});

test.serial('token auth: without pull access on the source the mount is refused and the layers are uploaded', async (t) => {
  const digest = await pushA();
  const x = await pulledA();
  try {
    t.is((await login(x, LIMITED.user, LIMITED.password)).code, 0);
    t.is((await x.docker(['tag', `${tok.host}/a:1`, `${tok.host}/${LIMITED.repo}:1`])).code, 0);
    const seen = tok.tokenRequests.length;
    const push = await x.docker(['push', `${tok.host}/${LIMITED.repo}:1`]);
    t.is(push.code, 0, push.stderr);
    t.notRegex(push.stdout, /Mounted from/);
    t.regex(push.stdout, /Pushed/);
    t.regex(push.stdout, new RegExp(`1: digest: ${digest} size`));
    const asked = tok.tokenRequests.slice(seen);
    t.true(asked.some((r) => r.user === LIMITED.user && r.scopes.includes('repository:a:pull')), JSON.stringify(asked));
    t.true(asked.every((r) => r.user === LIMITED.user), JSON.stringify(asked));
    // and the source stays closed to that user
    const denied = await x.docker(['pull', `${tok.host}/a:1`]);
    t.not(denied.code, 0);
  } finally { await removeAllAndStop(x); }
});

/** A loopback port nothing listens on (bound, then released). */
async function closedPort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const { port } = s.address() as AddressInfo;
  await new Promise((r) => s.close(r));
  return port;
}

test.serial('registry-mirrors: docker.io images come from the first mirror that has them; a bad entry stops the daemon', async (t) => {
  const mirror = await startRegistry({ auth: false });
  // the same content served under a path, as a proxy often does: the mirror's path goes before /v2/
  const proxied = await startRegistry({ auth: false, prefix: '/hub/', storage: mirror.storage });
  let m: Daemon | undefined;
  try {
    await mirror.trustIn(d.dir);
    t.is((await d.docker(['tag', 'busybox', `${mirror.host}/library/busybox:latest`])).code, 0);
    const push = await d.docker(['push', `${mirror.host}/library/busybox:latest`]);
    t.is(push.code, 0, push.stderr);
    const digest = /latest: digest: (sha256:[0-9a-f]{64})/.exec(push.stdout)?.[1];
    t.truthy(digest, push.stdout);
    // the first mirror is down: the pull goes on to the next one (never to Docker Hub here)
    const down = `https://127.0.0.1:${await closedPort()}`;
    m = await startDaemon({ config: { 'registry-mirrors': [down, `https://${proxied.host}/hub`] } });
    await proxied.trustIn(m.dir);
    const pull = await m.docker(['pull', 'busybox']);
    t.is(pull.code, 0, pull.stderr);
    t.regex(pull.stdout, /Status: Downloaded newer image for busybox:latest/);
    t.regex(pull.stdout, new RegExp(`Digest: ${digest}`));
    t.is((await m.docker(['image', 'inspect', '--format', '{{json .RepoDigests}}', 'busybox'])).stdout.trim(), JSON.stringify([`busybox@${digest}`]));
    t.is((await m.docker(['run', '--rm', 'busybox', 'echo', 'from the mirror'])).stdout, 'from the mirror\n');
    const info = await m.docker(['info', '--format', '{{json .RegistryConfig.Mirrors}}']);
    t.is(info.stdout.trim(), JSON.stringify([`${down}/`, `https://${proxied.host}/hub/`]));
    // distribution inspect asks the mirrors too
    const dist = await m.request('GET', '/distribution/busybox/json');
    t.is(dist.status, 200, dist.body);
    t.is(dist.json.Descriptor.digest, digest);
    // a registry that is not docker.io is never looked for on a mirror
    const other = await m.docker(['pull', `127.0.0.1:${await closedPort()}/library/busybox`]);
    t.not(other.code, 0);
    await t.throwsAsync(startDaemon({ config: { 'registry-mirrors': ['ftp://mirror.invalid'] } }), { message: /invalid mirror: unsupported scheme "ftp"/ });
    await t.throwsAsync(startDaemon({ config: { 'registry-mirrors': ['https://user:pw@127.0.0.1:1'] } }), { message: /invalid mirror: username\/password not allowed/ });
    await t.throwsAsync(startDaemon({ config: { 'registry-mirrors': ['127.0.0.1:1'] } }), { message: /invalid mirror: no scheme specified for "127.0.0.1:1"/ });
    await t.throwsAsync(startDaemon({ config: { 'registry-mirrors': ['https://127.0.0.1:1/?q=1'] } }), { message: /invalid mirror: query or fragment at end of the URI/ });
  } finally {
    await d.docker(['rmi', `${mirror.host}/library/busybox:latest`]);
    await removeAllAndStop(m);
    await proxied.stop();
    await mirror.stop();
  }
});
