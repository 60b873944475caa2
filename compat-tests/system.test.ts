// System commands through the stock docker CLI: version, info, system df, events (replay and
// live), API version negotiation and refusal, 501/503 answers, malformed bodies; and berthd's
// own start-up rules (data-root lock, daemon.json checks, clean SIGTERM).
import test from 'ava';
import { spawn } from 'node:child_process';
import { access, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { BERTHD, startDaemon, type Daemon } from './harness.js';
import { removeHostNetworkObjects } from '../src/services/networks.js';
import { ensureBusyboxTar } from './images-fixture.js';

let d: Daemon;
test.before(async () => {
  d = await startDaemon();
  const r = await d.docker(['load', '-i', await ensureBusyboxTar()]);
  if (r.code !== 0) throw new Error(`docker load failed: ${r.stderr}`);
});
test.after.always(async () => { await d?.stop(); });

/** Runs berthd directly; resolves with its exit code and output (killed after ms). */
function runBerthd(args: string[], ms = 10_000): Promise<{ code: number | null; out: string }> {
  return new Promise((resolve) => {
    const p = spawn(process.execPath, [BERTHD, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    p.stdout.on('data', (b) => { out += b; });
    p.stderr.on('data', (b) => { out += b; });
    const t = setTimeout(() => p.kill('SIGKILL'), ms);
    p.on('close', (code) => { clearTimeout(t); resolve({ code, out }); });
  });
}

test.serial('docker version shows the server with API 1.55, minimum 1.24', async (t) => {
  const r = await d.docker(['version', '--format', '{{json .Server}}']);
  t.is(r.code, 0, r.stderr);
  const s = JSON.parse(r.stdout);
  t.is(s.ApiVersion, '1.55');
  t.is(s.MinAPIVersion, '1.24');
  t.is(s.Os, 'linux');
  t.truthy(s.KernelVersion);
  t.true('GoVersion' in s);
  t.is(s.Components[0].Name, 'Engine');
  const plain = await d.docker(['version']);
  t.regex(plain.stdout, /Server:.*\n Engine:\n  Version:\s+\S+\n  API version:\s+1\.55 \(minimum version 1\.24\)/);
});

test.serial('docker info: host facts, stable ID across restarts, live image count', async (t) => {
  const r = await d.docker(['info', '--format', '{{json .}}']);
  t.is(r.code, 0, r.stderr);
  const info = JSON.parse(r.stdout);
  t.is(info.Name, hostname());
  t.true(info.NCPU >= 1);
  t.true(info.MemTotal > 0);
  t.is(info.OSType, 'linux');
  t.is(info.Driver, 'overlay2');
  t.is(info.CgroupDriver, 'cgroupfs');
  t.regex(info.CgroupVersion, /^[12]$/);
  t.is(info.DockerRootDir, d.dataRoot);
  t.is(info.LoggingDriver, 'json-file');
  t.deepEqual(info.SecurityOptions.slice(0, 1), ['name=seccomp,profile=builtin']);
  t.true(info.Images >= 1, 'busybox was loaded');
  t.truthy(info.OperatingSystem);
  t.regex(info.ID, /^[0-9a-f-]{36}$/);
  await d.restart();
  const again = JSON.parse((await d.docker(['info', '--format', '{{json .}}'])).stdout);
  t.is(again.ID, info.ID);
  const text = await d.docker(['info']);
  t.regex(text.stdout, /Server Version: /);
});

test.serial('docker system df (API 1.50 shape) and the 1.52+ shape over HTTP', async (t) => {
  const r = await d.docker(['system', 'df']);
  t.is(r.code, 0, r.stderr);
  t.regex(r.stdout, /TYPE\s+TOTAL\s+ACTIVE\s+SIZE\s+RECLAIMABLE/);
  t.regex(r.stdout, /Images\s+1\s+0\s/);
  const legacy = await d.request('GET', '/v1.50/system/df');
  t.is(legacy.status, 200);
  t.true(Array.isArray(legacy.json.Images));
  t.is(typeof legacy.json.LayersSize, 'number');
  const modern = await d.request('GET', '/v1.55/system/df?type=image');
  t.is(modern.json.ImageUsage.TotalCount, 1);
  t.false('Items' in modern.json.ImageUsage);
  t.false('ContainerUsage' in modern.json);
  const verbose = await d.request('GET', '/v1.55/system/df?verbose=1');
  t.is(verbose.json.ImageUsage.Items.length, 1);
});

test.serial('docker events --since 1m --until 0s replays and returns', async (t) => {
  t.is((await d.docker(['tag', 'busybox', 'replay:one'])).code, 0);
  // The CLI sends whole seconds; as on the Engine, events after `until` (same second) are left out.
  await new Promise((r) => setTimeout(r, 1000 - (Date.now() % 1000) + 20));
  const r = await d.docker(['events', '--since', '1m', '--until', '0s', '--filter', 'type=image', '--format', '{{.Type}} {{.Action}} {{.Actor.ID}}'], { timeoutMs: 10_000 });
  t.is(r.code, 0, r.stderr);
  t.true(r.stdout.split('\n').includes('image tag replay:one'), r.stdout);
  const none = await d.docker(['events', '--since', '1m', '--until', '0s', '--filter', 'type=network'], { timeoutMs: 10_000 });
  t.is(none.code, 0);
  t.is(none.stdout, '');
});

test.serial('docker events streams live events as they happen', async (t) => {
  const p = spawn('docker', ['events', '--filter', 'event=tag', '--format', '{{.Action}} {{.Actor.Attributes.name}}'], {
    env: { ...process.env, DOCKER_HOST: d.host, DOCKER_CONFIG: join(d.dir, 'docker-config') },
  });
  let out = '';
  const seen = new Promise<void>((resolve) => p.stdout.on('data', (b) => { out += b; if (out.includes('live:two')) resolve(); }));
  await new Promise((r) => setTimeout(r, 500)); // let the CLI subscribe
  t.is((await d.docker(['tag', 'busybox', 'live:two'])).code, 0);
  const timeout = new Promise<void>((resolve) => setTimeout(resolve, 5000));
  await Promise.race([seen, timeout]);
  p.kill('SIGTERM');
  t.true(out.includes('tag live:two'), out);
});

test.serial('API version: too old and too new are refused with the Engine messages', async (t) => {
  const old = await d.docker(['version'], { env: { DOCKER_API_VERSION: '1.12' } });
  t.not(old.code, 0);
  t.regex(old.stderr, /client version 1\.12 is too old\. Minimum supported API version is 1\.24/);
  const neu = await d.docker(['info'], { env: { DOCKER_API_VERSION: '1.99' } });
  t.not(neu.code, 0);
  t.regex(neu.stderr, /client version 1\.99 is too new\. Maximum supported API version is 1\.55/);
  const ok = await d.docker(['version', '--format', '{{.Client.APIVersion}}'], { env: { DOCKER_API_VERSION: '1.24' } });
  t.is(ok.code, 0, ok.stderr);
  t.is(ok.stdout.trim(), '1.24');
});

test.serial('unimplemented operations answer 501, swarm ones 503, with messages', async (t) => {
  const ni = await d.docker(['plugin', 'inspect', 'foo']);
  t.not(ni.code, 0);
  t.regex(ni.stderr, /berth does not implement PluginInspect yet/);
  const sw = await d.docker(['node', 'ls']);
  t.not(sw.code, 0);
  t.regex(sw.stderr, /This node is not a swarm manager\. Use "docker swarm init" or "docker swarm join" to connect this node to swarm and try again\./);
  const pl = await d.docker(['plugin', 'ls']);
  t.is(pl.code, 0, pl.stderr);
});

test.serial('malformed and mistyped JSON bodies get 400 with a message; the daemon stays up', async (t) => {
  const bad = await d.request('POST', '/v1.50/containers/create', '{"Image": "busybox",', { 'content-type': 'application/json' });
  t.is(bad.status, 400);
  t.regex(bad.json.message, /^invalid JSON/);
  const typed = await d.request('POST', '/v1.50/containers/create', { Image: 'busybox', Cmd: 'not-a-list', HostConfig: { Memory: 'x' } });
  t.is(typed.status, 400);
  t.regex(typed.json.message, /Cmd|HostConfig\.Memory/);
  t.is((await d.request('GET', '/_ping')).body, 'OK');
});

test('a second daemon on the same data-root is refused', async (t) => {
  const dir = await mkdtemp('/tmp/bt2-');
  try {
    const r = await runBerthd(['-H', `unix://${dir}/s.sock`, '--data-root', d.dataRoot, '--exec-root', `${dir}/exec`, '--pidfile', `${dir}/p`, '--config-file', join(d.dir, 'daemon.json')]);
    t.is(r.code, 1);
    t.regex(r.out, new RegExp(`data-root ${d.dataRoot} is in use by another berthd \\(pid ${d.pid}\\)`));
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('a second daemon on a socket that is in use is refused and leaves it alone', async (t) => {
  const dir = await mkdtemp('/tmp/bt4-');
  try {
    const r = await runBerthd(['-H', d.host, '--data-root', `${dir}/data`, '--exec-root', `${dir}/exec`, '--pidfile', `${dir}/p`, '--config-file', join(d.dir, 'daemon.json')]);
    t.is(r.code, 1);
    t.regex(r.out, /another daemon is already listening on/);
    t.is((await d.request('GET', '/_ping')).body, 'OK');
  } finally {
    // it got as far as setting up its default bridge before it found the socket taken
    await removeHostNetworkObjects(`${dir}/data`);
    await rm(dir, { recursive: true, force: true });
  }
});

test('daemon.json: unknown keys and flag/file duplicates are refused like dockerd', async (t) => {
  const dir = await mkdtemp('/tmp/bt3-');
  try {
    await writeFile(`${dir}/bad.json`, JSON.stringify({ 'data-root': `${dir}/data`, 'no-such-option': true }));
    const unknown = await runBerthd(['--config-file', `${dir}/bad.json`, '-H', `unix://${dir}/s.sock`]);
    t.is(unknown.code, 1);
    t.regex(unknown.out, /the following directives don't match any configuration option: no-such-option/);
    await writeFile(`${dir}/dup.json`, JSON.stringify({ 'data-root': `${dir}/data`, hosts: [`unix://${dir}/a.sock`] }));
    const dup = await runBerthd(['--config-file', `${dir}/dup.json`, '-H', `unix://${dir}/s.sock`]);
    t.is(dup.code, 1);
    t.regex(dup.out, /the following directives are specified both as a flag and in the configuration file: hosts: \(from flag: \[unix:\/\/.*s\.sock\], from file: \[unix:\/\/.*a\.sock\]\)/);
    const missing = await runBerthd(['--config-file', `${dir}/nope.json`]);
    t.is(missing.code, 1);
    t.regex(missing.out, /nope\.json/);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('SIGTERM: clean exit 0, socket and pidfile removed, lock released', async (t) => {
  const other = await startDaemon();
  try {
    await access(other.socket);
    const code = await other.stop({ keep: true });
    t.is(code, 0);
    await t.throwsAsync(access(other.socket));
    await t.throwsAsync(access(join(other.dir, 'berthd.pid')));
    await t.throwsAsync(access(join(other.dataRoot, 'berthd.lock')));
    t.regex(await other.logs(), /API listen on .*api\.sock/);
    await other.restart(); // the same data-root can be taken again
    t.is((await other.docker(['version', '--format', '{{.Server.APIVersion}}'])).stdout.trim(), '1.55');
  } finally {
    await other.stop();
  }
});

test('after SIGKILL the stale lock is taken over', async (t) => {
  const other = await startDaemon();
  try {
    const before = other.pid;
    await other.kill();
    await access(join(other.dataRoot, 'berthd.lock')); // left behind by the crash
    await other.restart();
    t.not(other.pid, before);
    t.is((await other.request('GET', '/_ping')).body, 'OK');
  } finally {
    await other.stop();
  }
});

