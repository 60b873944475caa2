// Faults injected into pulls: the registry connection cut mid-blob (resumed, or a clean error
// once max-download-attempts are used up), blobs that do not match their digest, berthd killed
// with SIGKILL mid-pull and restarted. Each time: a clean error for the client, no partial
// layer, blob or image left behind, a retry that pulls the image whole, and `berthd check`
// finding nothing wrong.
import test from 'ava';
import { createHash, randomBytes } from 'node:crypto';
import { copyFile, mkdir, readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Agent, request } from 'undici';
import { runCheck } from './crash.js';
import { startFaultProxy, type FaultProxy } from './fault-proxy.js';
import { startDaemon, type Daemon } from './harness.js';
import { packTar } from './hostile-tars.js';
import { startRegistry, type Registry } from './registry-fixture.js';

let reg: Registry;
let proxy: FaultProxy;
let pusher: Daemon;
const daemons: Daemon[] = [];

const sha = (b: Buffer | string): string => createHash('sha256').update(b).digest('hex');

/** A docker-archive of `layers` random files of `size` bytes each (plus a few small entries). */
async function randomImage(tag: string, layers: number, size: number): Promise<Buffer> {
  const tars: Buffer[] = [];
  for (let i = 0; i < layers; i++) {
    tars.push(await packTar([
      { header: { name: `l${i}/`, type: 'directory', mode: 0o755 } },
      { header: { name: `l${i}/blob`, mode: 0o644 }, data: randomBytes(size) },
      { header: { name: `l${i}/small`, mode: 0o600 }, data: `layer ${i}\n` },
      { header: { name: `l${i}/link`, type: 'symlink', linkname: 'small' } },
    ]));
  }
  const config = JSON.stringify({
    architecture: 'amd64', os: 'linux', config: { Cmd: ['/bin/sh'] },
    rootfs: { type: 'layers', diff_ids: tars.map((t) => `sha256:${sha(t)}`) },
    history: tars.map((_t, i) => ({ created_by: `layer ${i}` })),
  });
  return packTar([
    ...tars.map((t, i) => ({ header: { name: `${i}/layer.tar` }, data: t })),
    { header: { name: 'config.json' }, data: config },
    { header: { name: 'manifest.json' }, data: JSON.stringify([{ Config: 'config.json', RepoTags: [tag], Layers: tars.map((_t, i) => `${i}/layer.tar`) }]) },
  ]);
}

/** Loads the image into the pusher and pushes it straight to the registry; returns its ID. */
async function publish(repo: string, layers: number, size: number): Promise<string> {
  const name = `${reg.host}/${repo}:1`;
  const load = await pusher.docker(['load'], { input: await randomImage(name, layers, size) });
  if (load.code !== 0) throw new Error(load.stderr);
  const push = await pusher.docker(['push', name], { timeoutMs: 120_000 });
  if (push.code !== 0) throw new Error(push.stderr);
  return (await pusher.docker(['image', 'inspect', '-f', '{{.Id}}', name])).stdout.trim();
}

/** The layer blobs of repo:1 as the registry lists them in its manifest. */
async function layerDigests(repo: string): Promise<string[]> {
  return (await layerBlobs(repo)).map((l) => l.digest);
}

async function layerBlobs(repo: string): Promise<Array<{ digest: string; size: number }>> {
  const agent = new Agent({ connect: { ca: await readFile(reg.caFile) } });
  try {
    const res = await request(`https://${reg.host}/v2/${repo}/manifests/1`, {
      dispatcher: agent,
      headers: { accept: 'application/vnd.docker.distribution.manifest.v2+json', authorization: `Basic ${Buffer.from(`${reg.user}:${reg.password}`).toString('base64')}` },
    });
    return ((await res.body.json()) as { layers: Array<{ digest: string; size: number }> }).layers;
  } finally { await agent.close(); }
}

const blobFile = (digest: string): string => {
  const hex = digest.replace(/^sha256:/, '');
  return join(reg.storage, 'docker/registry/v2/blobs/sha256', hex.slice(0, 2), hex, 'data');
};

/** A daemon with an empty store that trusts the proxy's address and is logged in through it. */
async function freshDaemon(config?: Record<string, unknown>): Promise<Daemon> {
  const d = await startDaemon({ config });
  daemons.push(d);
  await mkdir(join(d.dir, 'certs.d', proxy.host), { recursive: true });
  await copyFile(reg.caFile, join(d.dir, 'certs.d', proxy.host, 'ca.crt'));
  const mode = proxy.mode;
  proxy.mode = { kind: 'pass' };
  const login = await d.docker(['login', '-u', reg.user, '--password-stdin', proxy.host], { input: `${reg.password}\n` });
  proxy.mode = mode;
  if (login.code !== 0) throw new Error(login.stderr);
  return d;
}

/** What a pull leaves in the store: layers, blobs, temp names, images. */
async function storeState(d: Daemon): Promise<{ layers: string[]; blobs: string[]; temp: string[]; images: string }> {
  const layers = await readdir(join(d.dataRoot, 'layers')).catch(() => [] as string[]);
  const blobs = await readdir(join(d.dataRoot, 'content', 'sha256')).catch(() => [] as string[]);
  const images = (await d.docker(['images', '-aq'])).stdout.trim();
  return {
    layers: layers.filter((n) => !n.startsWith('.')).sort(),
    blobs: blobs.filter((n) => !n.startsWith('.')).sort(),
    temp: [...layers, ...blobs].filter((n) => n.startsWith('.')),
    images,
  };
}

/** `berthd check` on the stopped daemon's data-root (then started again). */
async function offlineCheck(d: Daemon): Promise<string[]> {
  await d.stop({ keep: true });
  const r = await runCheck(d);
  await d.restart();
  return r.code === 0 ? [] : r.out.trim().split('\n');
}

test.before(async () => {
  reg = await startRegistry();
  proxy = await startFaultProxy(reg.host);
  pusher = await startDaemon();
  daemons.push(pusher);
  await reg.trustIn(pusher.dir);
  const login = await pusher.docker(['login', '-u', reg.user, '--password-stdin', reg.host], { input: `${reg.password}\n` });
  if (login.code !== 0) throw new Error(login.stderr);
});

test.after.always(async () => {
  for (const d of daemons) await d.stop().catch(() => {});
  await proxy?.stop();
  await reg?.stop();
});

test.serial('a registry connection cut mid-blob is retried up to max-download-attempts, then fails cleanly; nothing is kept; a retry pulls', async (t) => {
  const id = await publish('faults/cut', 3, 3 << 20);
  const d = await freshDaemon({ 'max-download-attempts': 2 });
  const before = await storeState(d);
  proxy.mode = { kind: 'cut', after: 1 << 20 };
  const started = Date.now();
  const pull = await d.docker(['pull', `${proxy.host}/faults/cut:1`], { timeoutMs: 120_000 });
  proxy.mode = { kind: 'pass' };
  t.not(pull.code, 0);
  t.true(proxy.cuts > 0, 'the proxy cut connections');
  t.regex(pull.stdout, /Retrying in 5 seconds/, 'the second try was announced');
  t.true(Date.now() - started >= 4000, 'and waited for');
  t.regex(pull.stderr, /error pulling blob sha256:[0-9a-f]{64}: unexpected EOF/);
  t.notRegex(pull.stderr, /panic|TypeError|undefined/);
  t.is((await d.docker(['version', '-f', '{{.Server.Version}}'])).code, 0, 'the daemon still serves');
  t.deepEqual(await storeState(d), before);

  const retry = await d.docker(['pull', `${proxy.host}/faults/cut:1`], { timeoutMs: 120_000 });
  t.is(retry.code, 0, retry.stderr);
  t.is((await d.docker(['image', 'inspect', '-f', '{{.Id}}', `${proxy.host}/faults/cut:1`])).stdout.trim(), id);
  t.deepEqual(await offlineCheck(d), []);
});

test.serial('a download cut mid-blob is resumed where it stopped and the pull succeeds', async (t) => {
  const repo = 'faults/resume';
  const id = await publish(repo, 3, 3 << 20);
  const blobs = await layerBlobs(repo);
  const total = blobs.reduce((n, b) => n + b.size, 0);
  const d = await freshDaemon();
  proxy.mode = { kind: 'cut', after: 1 << 20, times: 2 };
  const cutsBefore = proxy.cuts;
  const relayedBefore = proxy.relayed;
  const pull = await d.docker(['pull', `${proxy.host}/${repo}:1`], { timeoutMs: 120_000 });
  proxy.mode = { kind: 'pass' };
  t.is(pull.code, 0, pull.stderr);
  t.is(proxy.cuts - cutsBefore, 2, 'two connections were cut');
  t.regex(pull.stdout, /Retrying in 5 seconds/);
  // a download started again from its first byte would fetch about 2 MiB more than the blobs
  t.true(proxy.relayed - relayedBefore < total + (512 << 10), `relayed ${proxy.relayed - relayedBefore} for ${total} bytes of blobs: resumed with Range`);
  t.is((await d.docker(['image', 'inspect', '-f', '{{.Id}}', `${proxy.host}/${repo}:1`])).stdout.trim(), id);
  t.deepEqual(await offlineCheck(d), []);
});

test.serial('a blob that does not match its digest fails the pull; nothing is kept; a retry pulls', async (t) => {
  // a valid gzip of the right tar under another digest (header byte changed), then a flipped content byte
  const cases: Array<{ repo: string; tamper: (b: Buffer) => void }> = [
    { repo: 'faults/digest-header', tamper: (b) => { b[4] ^= 0x5a; } },
    { repo: 'faults/digest-content', tamper: (b) => { b[b.length >> 1] ^= 0xff; } },
  ];
  const d = await freshDaemon();
  for (const c of cases) {
    const id = await publish(c.repo, 3, 1 << 20);
    const middle = (await layerDigests(c.repo))[1]!;
    const original = await readFile(blobFile(middle));
    const bad = Buffer.from(original);
    c.tamper(bad);
    await writeFile(blobFile(middle), bad);
    const before = await storeState(d);
    const pull = await d.docker(['pull', `${proxy.host}/${c.repo}:1`], { timeoutMs: 120_000 });
    t.not(pull.code, 0, c.repo);
    t.regex(pull.stderr, new RegExp(`filesystem layer verification failed for digest ${middle}`), c.repo);
    t.deepEqual(await storeState(d), before, c.repo);

    await writeFile(blobFile(middle), original);
    const retry = await d.docker(['pull', `${proxy.host}/${c.repo}:1`], { timeoutMs: 120_000 });
    t.is(retry.code, 0, retry.stderr);
    t.is((await d.docker(['image', 'inspect', '-f', '{{.Id}}', `${proxy.host}/${c.repo}:1`])).stdout.trim(), id, c.repo);
  }
  t.deepEqual(await offlineCheck(d), []);
});

test.serial('berthd killed mid-pull: after a restart no partial layer, blob or image is left; a retry pulls', async (t) => {
  const repo = 'faults/kill';
  const name = `${proxy.host}/${repo}:1`;
  const id = await publish(repo, 3, 4 << 20);
  const d = await freshDaemon();
  const empty = await storeState(d);
  // about 1.5 s per layer, the three side by side: kills land while downloading, unpacking or committing
  const delays = [-1, 150, 700, 1300, 1700, 2300];
  for (const delay of delays) {
    proxy.mode = { kind: 'slow', bytesPerSec: 3 << 20 };
    const pull = d.docker(['pull', name], { timeoutMs: 120_000 });
    if (delay < 0) {
      // once a layer is being unpacked
      for (let i = 0; i < 400 && !(await readdir(join(d.dataRoot, 'layers'))).some((n) => n.startsWith('.partial-')); i++) await new Promise((r) => setTimeout(r, 10));
    } else {
      await new Promise((r) => setTimeout(r, delay));
    }
    await d.kill();
    const r = await pull;
    proxy.mode = { kind: 'pass' };
    const label = delay < 0 ? 'while unpacking' : `after ${delay} ms`;
    // the data-root as the kill left it is consistent: temp names are the daemon's to sweep
    const killed = await runCheck(d);
    t.is(killed.code, 0, `${label}: ${killed.out}`);
    await d.restart();
    const after = await storeState(d);
    t.deepEqual(after.temp, [], `${label}: temp names swept at start`);
    if (after.images) {
      // the pull committed its image before the kill: the image is whole (the client may still
      // have seen the pull fail, when the kill fell between the commit and the last message)
      if (r.code !== 0) t.log(`${label}: killed after the image was committed, before the client heard`);
      t.is((await d.docker(['image', 'inspect', '-f', '{{.Id}}', name])).stdout.trim(), id, label);
      t.is((await d.docker(['rmi', name])).code, 0);
    } else {
      t.not(r.code, 0, `${label}: the client saw the pull fail`);
      t.deepEqual(after, empty, `${label}: nothing of the pull is left`);
    }
    t.deepEqual(await offlineCheck(d), [], label);
  }
  const retry = await d.docker(['pull', name], { timeoutMs: 120_000 });
  t.is(retry.code, 0, retry.stderr);
  t.is((await d.docker(['image', 'inspect', '-f', '{{.Id}}', name])).stdout.trim(), id);
  t.deepEqual(await offlineCheck(d), []);
});
