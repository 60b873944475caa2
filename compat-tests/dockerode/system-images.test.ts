// dockerode's events stream, image save/load and inspect, as applications use them.
import test from 'ava';
import Docker from 'dockerode';
import { startDaemon, type Daemon } from '../harness.js';
import { ensureBusyboxTar, removeAllAndStop } from '../images-fixture.js';

let d: Daemon;
let docker: any;

test.before(async () => {
  d = await startDaemon();
  docker = new Docker({ socketPath: d.socket });
  await docker.loadImage(await ensureBusyboxTar()).then((s: any) => new Promise((r) => { s.on('end', r); s.resume(); }));
});

test.after.always(() => removeAllAndStop(d));

test('the events stream delivers container events as they happen, filtered', async (t) => {
  const stream = await docker.getEvents({ filters: { type: ['container'], event: ['start', 'die'] } });
  const seen: any[] = [];
  let buf = '';
  stream.on('data', (b: Buffer) => {
    buf += b;
    let i;
    while ((i = buf.indexOf('\n')) >= 0) { seen.push(JSON.parse(buf.slice(0, i))); buf = buf.slice(i + 1); }
  });
  const c = await docker.createContainer({ Image: 'busybox', Cmd: ['sh', '-c', 'exit 4'], name: 'dode-ev' });
  await c.start();
  await c.wait();
  for (let i = 0; i < 50 && seen.length < 2; i++) await new Promise((r) => setTimeout(r, 20));
  stream.destroy();
  t.deepEqual(seen.map((e) => e.Action), ['start', 'die']);
  t.is(seen[1].Actor.Attributes.exitCode, '4');
  t.is(seen[1].Actor.Attributes.name, 'dode-ev');
  t.is(seen[0].Actor.ID, c.id);
  await c.remove();
});

test('image inspect, list, save and load round-trip', async (t) => {
  const img = docker.getImage('busybox');
  const info = await img.inspect();
  t.regex(info.Id, /^sha256:[0-9a-f]{64}$/);
  t.deepEqual(info.RepoTags, ['busybox:latest']);
  const list = await docker.listImages({ filters: { reference: ['busybox'] } });
  t.is(list.length, 1);
  t.is(list[0].Id, info.Id);
  // save to a stream, remove, load it back
  const saved: Buffer[] = [];
  const stream = await img.get();
  await new Promise((r) => { stream.on('data', (b: Buffer) => saved.push(b)); stream.on('end', r); });
  const tar = Buffer.concat(saved);
  t.true(tar.length > 500_000);
  await img.tag({ repo: 'dode/copy', tag: 'v1' });
  t.deepEqual((await docker.getImage('dode/copy:v1').inspect()).Id, info.Id);
  await docker.getImage('dode/copy:v1').remove();
  const loaded = await docker.loadImage(tar);
  const out = await new Promise<string>((r) => { let s = ''; loaded.on('data', (b: Buffer) => { s += b; }); loaded.on('end', () => r(s)); });
  t.regex(out, /Loaded image: busybox:latest/);
  t.is((await docker.getImage('busybox').inspect()).Id, info.Id);
});
