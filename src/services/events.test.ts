// EventService: filters, legacy fields for old API versions, since/until replay, live delivery.
import test from 'ava';
import { encodeEvent, eventMatches, EventService, parseEventTime, type EventMessage } from './events.js';

const read = (s: NodeJS.ReadableStream): Promise<string> => new Promise((resolve) => {
  let out = '';
  s.on('data', (d) => { out += d; });
  s.on('end', () => resolve(out));
});

const container = (svc: EventService, action: string, id = 'c1', name = 'web', image = 'busybox:latest'): EventMessage =>
  svc.publish({ Type: 'container', Action: action, Actor: { ID: id, Attributes: { name, image, 'com.example': 'x' } } });

test('publish stamps time/timeNano (increasing) and scope local', (t) => {
  const svc = new EventService();
  const a = container(svc, 'create');
  const b = container(svc, 'start');
  t.is(a.scope, 'local');
  t.true(b.timeNano > a.timeNano);
  t.is(a.time, Number(a.timeNano / 1_000_000_000n));
  t.true(Math.abs(a.time * 1000 - Date.now()) < 5000);
});

test('filters: type, event, container by id prefix or name, image with or without tag, label', (t) => {
  const svc = new EventService();
  const ev = container(svc, 'exec_start: sh -c true', 'abcdef123', 'web');
  const img = svc.publish({ Type: 'image', Action: 'tag', Actor: { ID: 'sha256:1', Attributes: { name: 'busybox:latest' } } });
  t.true(eventMatches(ev, { type: ['container'] }));
  t.false(eventMatches(img, { type: ['container'] }));
  t.true(eventMatches(ev, { event: ['exec_start'] }));
  t.false(eventMatches(ev, { event: ['die'] }));
  t.true(eventMatches(ev, { container: ['abc'] }));
  t.true(eventMatches(ev, { container: ['web'] }));
  t.false(eventMatches(ev, { container: ['other'] }));
  t.false(eventMatches(img, { container: ['abc'] }));
  t.true(eventMatches(ev, { image: ['busybox'] }));
  t.true(eventMatches(img, { image: ['busybox:latest'] }));
  t.true(eventMatches(ev, { label: ['com.example=x'] }));
  t.true(eventMatches(ev, { label: ['com.example'] }));
  t.false(eventMatches(ev, { label: ['com.example=y'] }));
  t.true(eventMatches(ev, { type: ['image', 'container'], event: ['create', 'exec_start'] }));
  const net = svc.publish({ Type: 'network', Action: 'create', Actor: { ID: 'n1', Attributes: { name: 'front' } } });
  t.true(eventMatches(net, { network: ['front'] }));
  t.false(eventMatches(ev, { network: ['front'] }));
  t.true(eventMatches(ev, { scope: ['local'] }));
});

test('wire form: exact timeNano, legacy status/id/from below API 1.52 only', (t) => {
  const svc = new EventService();
  const ev = container(svc, 'start');
  const modern = encodeEvent(ev, '1.55');
  t.true(modern.endsWith(`"timeNano":${ev.timeNano}}`));
  t.false('status' in JSON.parse(modern));
  const legacy = JSON.parse(encodeEvent(ev, '1.41'));
  t.is(legacy.status, 'start');
  t.is(legacy.id, 'c1');
  t.is(legacy.from, 'busybox:latest');
  t.is(legacy.Action, 'start');
});

test('timestamps: seconds with fraction, RFC 3339, relative; junk refused', (t) => {
  t.is(parseEventTime('since', '1700000000.5'), 1_700_000_000_500_000_000n);
  t.is(parseEventTime('since', '1700000000'), 1_700_000_000_000_000_000n);
  t.is(parseEventTime('since', '2023-11-14T22:13:20Z'), 1_700_000_000_000_000_000n);
  t.is(parseEventTime('since', '1m', 120_000_000_000n), 60_000_000_000n);
  t.throws(() => parseEventTime('since', 'yesterday'), { message: /since/ });
});

test('since/until in the past: replay then end', async (t) => {
  const svc = new EventService();
  const start = container(svc, 'create').timeNano;
  const end = container(svc, 'start').timeNano;
  svc.publish({ Type: 'image', Action: 'pull', Actor: { ID: 'busybox', Attributes: {} } });
  container(svc, 'die');
  const lines = (await read(svc.stream({ since: start, until: end, filters: { type: ['container'] } }))).trim().split('\n');
  t.deepEqual(lines.map((l) => JSON.parse(l).Action), ['create', 'start']);
});

test('live stream: receives events published after subscribing; ends at until; abort unsubscribes', async (t) => {
  const svc = new EventService();
  const ac = new AbortController();
  const live = svc.stream({ signal: ac.signal });
  const got: string[] = [];
  live.on('data', (d) => got.push(...String(d).trim().split('\n').map((l) => JSON.parse(l).Action)));
  container(svc, 'start');
  await new Promise((r) => setImmediate(r));
  t.deepEqual(got, ['start']);
  t.is(svc.listenerCount, 1);
  ac.abort();
  t.is(svc.listenerCount, 0);

  const until = BigInt(Date.now() + 300) * 1_000_000n;
  const t0 = Date.now();
  const bounded = read(svc.stream({ until }));
  container(svc, 'die');
  const text = await bounded;
  t.true(Date.now() - t0 >= 250);
  t.is(JSON.parse(text.trim()).Action, 'die');
});

test('the ring is bounded', (t) => {
  const svc = new EventService(10);
  for (let i = 0; i < 25; i++) container(svc, `a${i}`);
  const all = svc.history(0n);
  t.is(all.length, 10);
  t.is(all[0].Action, 'a15');
});

test('unknown filter keys are refused', (t) => {
  const svc = new EventService();
  t.throws(() => svc.stream({ filters: { colour: ['red'] } }), { message: /invalid filter 'colour'/ });
});

test('a subscriber that stops reading is cut off, not buffered without bound', async (t) => {
  const ev = new EventService();
  const s = ev.stream({});
  s.pause(); // never reads
  const big = { a: 'x'.repeat(10_000) };
  for (let i = 0; i < 1000; i++) ev.publish({ Type: 'container', Action: 'start', Actor: { ID: String(i), Attributes: big } });
  t.true(s.destroyed);
  await new Promise((r) => setImmediate(r)); // 'close' follows destroy on the next tick
  t.is(ev.listenerCount, 0);
});
