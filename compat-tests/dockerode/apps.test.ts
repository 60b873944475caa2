// dockerode as applications use it beyond containers: pull from a registry, stats stream,
// networks, volumes, build from a tar stream, getArchive/putArchive.
import test from 'ava';
import Docker from 'dockerode';
import tar from 'tar-stream';
import type { Daemon } from '../harness.js';
import { removeAllAndStop, startDaemonWithBusybox } from '../images-fixture.js';
import { startRegistry, type Registry } from '../registry-fixture.js';

let d: Daemon;
let docker: any;
let reg: Registry;
test.before(async () => {
  reg = await startRegistry();
  d = await startDaemonWithBusybox();
  await reg.trustIn(d.dir);
  docker = new Docker({ socketPath: d.socket });
});
test.after.always(async () => { await removeAllAndStop(d); await reg?.stop(); });

const follow = (stream: any): Promise<any[]> => new Promise((resolve, reject) => docker.modem.followProgress(stream, (err: any, out: any[]) => (err ? reject(err) : resolve(out))));
const auth = () => ({ username: reg.user, password: reg.password, serveraddress: reg.host });

function tarOf(files: Record<string, string>): Promise<Buffer> {
  return new Promise((resolve) => {
    const p = tar.pack();
    const chunks: Buffer[] = [];
    p.on('data', (c: unknown) => chunks.push(c as Buffer));
    p.on('end', () => resolve(Buffer.concat(chunks)));
    for (const [name, body] of Object.entries(files)) p.entry({ name }, body);
    p.finalize();
  });
}

test.serial('push with credentials, remove, pull back through dockerode', async (t) => {
  const name = `${reg.host}/dode/img`;
  await docker.getImage('busybox').tag({ repo: name, tag: 'v1' });
  const pushed = await follow(await docker.getImage(`${name}:v1`).push({ authconfig: auth() }));
  t.true(pushed.some((m) => m.aux?.Digest));
  await docker.getImage(`${name}:v1`).remove();
  const pulled = await follow(await docker.pull(`${name}:v1`, { authconfig: auth() }));
  t.true(pulled.some((m) => /Status: Downloaded newer image|Image is up to date/.test(m.status ?? '')));
  t.true((await docker.getImage(`${name}:v1`).inspect()).RepoTags.includes(`${name}:v1`));
});

test('build from a tar stream, then run the result', async (t) => {
  const ctx = await tarOf({ 'Dockerfile': 'FROM busybox\nCOPY msg /msg\nCMD ["cat", "/msg"]\n', msg: 'built by dockerode\n' });
  const out = await follow(await docker.buildImage(ctx, { t: 'dode-built:1' }));
  t.true(out.some((m) => /Successfully tagged dode-built:1/.test(m.stream ?? '')));
  const c = await docker.createContainer({ Image: 'dode-built:1', Tty: true });
  await c.start();
  await c.wait();
  t.is(String(await c.logs({ stdout: true })).trim(), 'built by dockerode');
  await c.remove();
});

test('networks and volumes: create, connect, inspect, remove', async (t) => {
  const net = await docker.createNetwork({ Name: 'dode-net', Labels: { app: 'dode' } });
  const vol = await docker.createVolume({ Name: 'dode-vol', Labels: { app: 'dode' } });
  t.is(vol.name, 'dode-vol');
  const c = await docker.createContainer({ Image: 'busybox', Cmd: ['sleep', '600'], HostConfig: { Binds: ['dode-vol:/data'] } });
  await c.start();
  await net.connect({ Container: c.id, EndpointConfig: { Aliases: ['dodey'] } });
  const info = await net.inspect();
  t.is(Object.keys(info.Containers).length, 1);
  t.regex(info.Containers[c.id].IPv4Address, /^\d+\.\d+\.\d+\.\d+\/\d+$/);
  const list = await docker.listVolumes({ filters: { label: ['app=dode'] } });
  t.deepEqual(list.Volumes.map((v: any) => v.Name), ['dode-vol']);
  await net.disconnect({ Container: c.id });
  await c.remove({ force: true });
  await net.remove();
  await docker.getVolume('dode-vol').remove();
  t.is((await docker.listNetworks({ filters: { name: ['dode-net'] } })).length, 0);
});

test('stats stream and getArchive/putArchive', async (t) => {
  const c = await docker.createContainer({ Image: 'busybox', Cmd: ['sleep', '600'] });
  await c.start();
  const stream = await c.stats({ stream: true });
  const samples: any[] = await new Promise((resolve) => {
    const got: any[] = [];
    let buf = '';
    stream.on('data', (b: Buffer) => {
      buf += b;
      let i;
      while ((i = buf.indexOf('\n')) >= 0) { got.push(JSON.parse(buf.slice(0, i))); buf = buf.slice(i + 1); }
      if (got.length >= 2) { stream.destroy(); resolve(got); }
    });
  });
  t.true(samples[1].memory_stats.usage > 0);
  t.is(samples[1].precpu_stats.cpu_usage.total_usage, samples[0].cpu_stats.cpu_usage.total_usage);
  await c.putArchive(await tarOf({ 'hello.txt': 'put by dockerode\n' }), { path: '/tmp' });
  const archive = await c.getArchive({ path: '/tmp/hello.txt' });
  const content = await new Promise<string>((resolve) => {
    const ex = tar.extract();
    let s = '';
    ex.on('entry', (_h: any, st: any, next: any) => { st.on('data', (b: Buffer) => { s += b; }); st.on('end', next); });
    ex.on('finish', () => resolve(s));
    archive.pipe(ex);
  });
  t.is(content, 'put by dockerode\n');
  const head = await d.request('HEAD', `/containers/${c.id}/archive?path=/tmp/hello.txt`);
  const stat = JSON.parse(Buffer.from(head.headers['x-docker-container-path-stat']!, 'base64').toString());
  t.is(stat.name, 'hello.txt');
  t.is(stat.size, 17);
  await c.remove({ force: true });
});
