// Networking through the stock CLI: user networks with DNS, published ports, container:<id>,
// live connect/disconnect, internal networks, isolation, and nothing left behind.
import test from 'ava';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { request } from 'node:http';
import type { Daemon } from './harness.js';
import { removeAllAndStop, startDaemonWithBusybox } from './images-fixture.js';

const run = promisify(execFile);
let d: Daemon;
test.before(async () => { d = await startDaemonWithBusybox(); });
test.after.always(() => removeAllAndStop(d));

const sh = (args: string[], script: string) => d.docker(['run', '--rm', ...args, 'busybox', 'sh', '-c', script]);
const httpd = (name: string, args: string[], body: string) =>
  d.docker(['run', '-d', '--name', name, ...args, 'busybox', 'sh', '-c', `echo ${body} > /tmp/index.html; exec httpd -f -p 80 -h /tmp`]);

function get(url: string): Promise<string> {
  return new Promise((resolve, reject) => {
    request(url, (res) => { let s = ''; res.on('data', (b) => { s += b; }); res.on('end', () => resolve(s)); }).on('error', reject).end();
  });
}

/** Bridges, veths on them and iptables lines that mention a network: all must go with it. */
async function traces(bridge: string, subnet: string): Promise<string[]> {
  const links = (await run('ip', ['-o', 'link', 'show'])).stdout.split('\n').filter((l) => l.includes(` ${bridge}:`) || l.includes(`master ${bridge} `));
  const ipt = [(await run('iptables-save')).stdout].join('\n').split('\n').filter((l) => l.includes(bridge) || l.includes(subnet));
  return [...links, ...ipt];
}

test('user network: names, aliases, round robin; the default bridge resolves nothing', async (t) => {
  t.is((await d.docker(['network', 'create', 'appnet'])).code, 0);
  await httpd('web1', ['--network', 'appnet', '--network-alias', 'web'], 'one');
  await httpd('web2', ['--network', 'appnet', '--network-alias', 'web'], 'two');
  const r = await sh(['--network', 'appnet'], 'wget -qO- http://web1/; nslookup web | grep -c "^Address: 172\\|^Address: 192\\|^Address: 10"; for i in 1 2 3 4 5 6; do wget -qO- http://web/; done | sort -u | tr "\\n" " "');
  t.is(r.code, 0, r.stderr);
  const lines = r.stdout.split('\n');
  t.is(lines[0], 'one');
  t.is(lines[1], '2'); // both addresses behind the alias
  t.is(lines[2], 'one two ');
  const ns = await sh(['--network', 'appnet'], 'nslookup nosuchname 2>&1; true');
  t.regex(ns.stdout, /NXDOMAIN|can't resolve/);
  const dflt = await sh([], 'nslookup web1 2>&1 | tail -1; wget -T 2 -qO- http://web1/ 2>&1; true');
  t.notRegex(dflt.stdout, /^one$/m);
  const ins = JSON.parse((await d.docker(['network', 'inspect', 'appnet'])).stdout)[0];
  t.is(Object.keys(ins.Containers).length, 2);
  await d.docker(['rm', '-f', 'web1', 'web2']);
});

test('a published port answers on 127.0.0.1; docker port; the Engine error for a taken port', async (t) => {
  const r = await httpd('pub', ['-p', '127.0.0.1::80'], 'published');
  t.is(r.code, 0, r.stderr);
  const port = (await d.docker(['port', 'pub', '80'])).stdout.trim();
  t.regex(port, /^127\.0\.0\.1:\d+$/);
  await new Promise((res) => setTimeout(res, 200));
  t.is(await get(`http://${port}/`), 'published\n');
  const hostPort = port.split(':')[1]!;
  const clash = await d.docker(['run', '-d', '--name', 'clash', '-p', `127.0.0.1:${hostPort}:80`, 'busybox', 'sleep', '60']);
  t.not(clash.code, 0);
  t.regex(clash.stderr, /port is already allocated/);
  const ps = await d.docker(['ps', '--filter', 'name=^pub$', '--format', '{{.Ports}}']);
  t.is(ps.stdout.trim(), `${port}->80/tcp`);
  await d.docker(['rm', '-f', 'pub', 'clash']);
});

test('--network container:<id> shares the namespace; host and none', async (t) => {
  await httpd('owner', [], 'shared');
  const r = await sh(['--network', 'container:owner'], 'wget -qO- http://127.0.0.1/');
  t.is(r.stdout, 'shared\n', r.stderr);
  const none = await sh(['--network', 'none'], 'ip -o link | wc -l');
  t.is(none.stdout.trim(), '1');
  // the host's own default-route interface is visible only in the host's namespace
  const dev = /dev (\S+)/.exec((await run('ip', ['route', 'show', 'default'])).stdout)?.[1] ?? 'lo';
  const host = await sh(['--network', 'host'], `test -e /sys/class/net/${dev} && echo visible`);
  t.is(host.stdout, 'visible\n');
  const own = await sh([], `test -e /sys/class/net/${dev} && echo visible || echo hidden`);
  t.is(own.stdout, dev === 'eth0' ? 'visible\n' : 'hidden\n'); // a bridge container has its own eth0
  await d.docker(['rm', '-f', 'owner']);
});

test('connect and disconnect a running container live; isolation between networks', async (t) => {
  await d.docker(['network', 'create', 'neta']);
  await d.docker(['network', 'create', 'netb']);
  await httpd('target', ['--network', 'netb'], 'b-side');
  await d.docker(['run', '-d', '--name', 'roamer', '--network', 'neta', 'busybox', 'sleep', '600']);
  const before = await d.docker(['exec', 'roamer', 'sh', '-c', 'wget -T 2 -qO- http://target/ 2>&1; true']);
  t.notRegex(before.stdout, /b-side/);
  const targetIp = (await d.docker(['inspect', '-f', '{{.NetworkSettings.Networks.netb.IPAddress}}', 'target'])).stdout.trim();
  const isolated = await d.docker(['exec', 'roamer', 'sh', '-c', `wget -T 2 -qO- http://${targetIp}/ 2>&1; true`]);
  t.notRegex(isolated.stdout, /b-side/);
  t.is((await d.docker(['network', 'connect', '--alias', 'roam', 'netb', 'roamer'])).code, 0);
  const after = await d.docker(['exec', 'roamer', 'sh', '-c', 'ip -o -4 addr | wc -l; wget -qO- http://target/']);
  t.is(after.stdout, '3\nb-side\n', after.stderr);
  t.regex((await d.docker(['exec', 'target', 'nslookup', 'roam'])).stdout, /Address: /);
  t.is((await d.docker(['network', 'disconnect', 'netb', 'roamer'])).code, 0);
  t.is((await d.docker(['exec', 'roamer', 'sh', '-c', 'ip -o -4 addr | wc -l'])).stdout.trim(), '2');
  const inUse = await d.docker(['network', 'rm', 'netb']);
  t.regex(inUse.stderr, /has active endpoints/);
  await d.docker(['rm', '-f', 'target', 'roamer']);
  t.is((await d.docker(['network', 'rm', 'neta', 'netb'])).code, 0);
});

test('an internal network has no way out; nothing is left after rm and network rm', async (t) => {
  const c = await d.docker(['network', 'create', '--internal', '--subnet', '10.231.7.0/24', 'closed']);
  t.is(c.code, 0, c.stderr);
  const id = c.stdout.trim();
  const bridge = `br-${id.slice(0, 12)}`;
  const r = await sh(['--network', 'closed'], 'ip route; ip -o -4 addr show eth0');
  t.notRegex(r.stdout, /default/);
  t.regex(r.stdout, /10\.231\.7\.2\/24/);
  await d.docker(['run', '-d', '--name', 'inner', '--network', 'closed', 'busybox', 'sleep', '600']);
  t.true((await traces(bridge, '10.231.7.0/24')).length > 0);
  await d.docker(['rm', '-f', 'inner']);
  t.is((await d.docker(['network', 'rm', 'closed'])).code, 0);
  t.deepEqual(await traces(bridge, '10.231.7.0/24'), []);
  const until = String(Math.ceil(Date.now() / 1000) + 1);
  const events = await d.docker(['events', '--since', '5m', '--until', until, '--filter', `network=${id}`, '--format', '{{.Action}}']);
  t.deepEqual(events.stdout.trim().split('\n'), ['create', 'connect', 'disconnect', 'connect', 'disconnect', 'destroy']);
});

test('network ls filters, prune, and errors as the Engine gives them', async (t) => {
  await d.docker(['network', 'create', '--label', 'keep=no', 'prunable']);
  t.regex((await d.docker(['network', 'ls', '--filter', 'label=keep=no', '--format', '{{.Name}}'])).stdout, /^prunable$/m);
  t.regex((await d.docker(['network', 'ls', '--filter', 'type=builtin', '--format', '{{.Name}}'])).stdout, /^bridge\nhost\nnone$/m);
  t.regex((await d.docker(['network', 'create', 'prunable'])).stderr, /network with name prunable already exists/);
  t.regex((await d.docker(['network', 'rm', 'bridge'])).stderr, /bridge is a pre-defined network and cannot be removed/);
  t.regex((await d.docker(['network', 'inspect', 'nosuchnet'])).stderr, /network nosuchnet not found/);
  // (the CLI answers a 404 from create by trying to pull the image, as with the Engine: ask the API)
  const create = await d.request('POST', '/containers/create', { Image: 'busybox', HostConfig: { NetworkMode: 'nosuchnet' } });
  t.is(create.status, 404);
  t.is(create.json.message, 'network nosuchnet not found');
  const prune = await d.docker(['network', 'prune', '-f', '--filter', 'label=keep=no']);
  t.regex(prune.stdout, /prunable/);
});

test('legacy --link on the default bridge puts the linked container in /etc/hosts', async (t) => {
  await httpd('linked', [], 'via-link');
  const r = await sh(['--link', 'linked:db'], 'grep -c "db linked" /etc/hosts; wget -qO- http://db/');
  t.is(r.stdout, '1\nvia-link\n', r.stderr);
  const missing = await d.docker(['run', '--rm', '--link', 'nosuch:x', 'busybox', 'true']);
  t.not(missing.code, 0);
  await d.docker(['rm', '-f', 'linked']);
});
