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

/** ip6tables lines that mention a bridge or an IPv6 subnet. */
async function traces6(bridge: string, subnet: string): Promise<string[]> {
  return (await run('ip6tables-save')).stdout.split('\n').filter((l) => l.includes(bridge) || l.includes(subnet));
}

test('IPv6 network: addresses in inspect, ping6 and wget over IPv6 between containers, AAAA, nothing left', async (t) => {
  const subnet = 'fd42:be:7e::/64';
  const c = await d.docker(['network', 'create', '--ipv6', '--subnet', subnet, 'v6net']);
  t.is(c.code, 0, c.stderr);
  const id = c.stdout.trim();
  const bridge = `br-${id.slice(0, 12)}`;
  const net = JSON.parse((await d.docker(['network', 'inspect', 'v6net'])).stdout)[0];
  t.true(net.EnableIPv6);
  t.deepEqual(net.IPAM.Config[1], { Subnet: subnet, Gateway: 'fd42:be:7e::1' });
  t.regex(net.IPAM.Config[0].Subnet, /^\d+\.\d+\.\d+\.\d+\/\d+$/); // an IPv4 subnet from the pools as well
  t.regex((await run('ip', ['-6', 'addr', 'show', 'dev', bridge])).stdout, /inet6 fd42:be:7e::1\/64 scope global/);

  await httpd('six', ['--network', 'v6net', '--network-alias', 'sixes', '-p', '80'], 'over-v6');
  await httpd('six2', ['--network', 'v6net', '--network-alias', 'sixes', '--ip6', 'fd42:be:7e::99'], 'over-v6-2');
  const ins = JSON.parse((await d.docker(['inspect', 'six'])).stdout)[0].NetworkSettings.Networks.v6net;
  t.is(ins.GlobalIPv6Address, 'fd42:be:7e::2');
  t.is(ins.GlobalIPv6PrefixLen, 64);
  t.is(ins.IPv6Gateway, 'fd42:be:7e::1');
  t.is((await d.docker(['inspect', '-f', '{{.NetworkSettings.Networks.v6net.GlobalIPv6Address}}', 'six2'])).stdout.trim(), 'fd42:be:7e::99');
  const members = JSON.parse((await d.docker(['network', 'inspect', 'v6net'])).stdout)[0].Containers;
  t.deepEqual(Object.values(members).map((m: any) => m.IPv6Address).sort(), ['fd42:be:7e::2/64', 'fd42:be:7e::99/64']);

  const r = await sh(['--network', 'v6net'], [
    'ip -o -6 addr show dev eth0 scope global | grep -o "inet6 [^ ]*"',
    'ip -6 route show default | grep -o "default via [^ ]*"',
    'ping6 -c 1 -W 3 fd42:be:7e::2 >/dev/null && echo ping6-container',
    'ping6 -c 1 -W 3 fd42:be:7e::1 >/dev/null && echo ping6-gateway',
    'wget -qO- "http://[fd42:be:7e::2]/"',
    'nslookup -type=AAAA six | grep -c "fd42:be:7e::2$"',
    'nslookup -type=AAAA sixes | grep -c "Address: fd42:be:7e::"',
    'grep -c "^fd42:be:7e::3\\s" /etc/hosts',
  ].join('; '));
  t.is(r.code, 0, r.stderr);
  t.deepEqual(r.stdout.split('\n'), [
    'inet6 fd42:be:7e::3/64', 'default via fd42:be:7e::1', 'ping6-container', 'ping6-gateway', 'over-v6', '1', '2', '1', '',
  ]);
  // the embedded DNS's AAAA answer is what wget connects to when asked for an IPv6 name
  const byName = await sh(['--network', 'v6net'], 'wget -qO- "http://[$(nslookup -type=AAAA six2 | grep -o "fd42:be:7e::[0-9a-f]*$")]/"');
  t.is(byName.stdout, 'over-v6-2\n', byName.stderr);
  // a port published on all addresses: DNAT'ed in ip6tables to the container's IPv6 address,
  // and answered on [::1] and 127.0.0.1 by the proxy
  t.true((await traces6(bridge, subnet)).some((l) => l.includes('-j DNAT --to-destination [fd42:be:7e::2]:80')));
  const port = (await d.docker(['port', 'six', '80'])).stdout.split('\n')[0]!.split(':').pop()!;
  t.is(await get(`http://127.0.0.1:${port}/`), 'over-v6\n');
  t.is(await get(`http://[::1]:${port}/`), 'over-v6\n');
  // connected live: the IPv6 address appears on the new interface at once
  await d.docker(['run', '-d', '--name', 'late6', 'busybox', 'sleep', '600']);
  t.is((await d.docker(['network', 'connect', 'v6net', 'late6'])).code, 0);
  const late = await d.docker(['exec', 'late6', 'sh', '-c', 'ip -o -6 addr show dev eth1 scope global | grep -o "inet6 [^ ]*"; wget -qO- "http://[fd42:be:7e::99]/"']);
  t.is(late.stdout, 'inet6 fd42:be:7e::3/64\nover-v6-2\n', late.stderr);

  await d.docker(['rm', '-f', 'six', 'six2', 'late6']);
  t.is((await d.docker(['network', 'rm', 'v6net'])).code, 0);
  t.deepEqual(await traces6(bridge, subnet), []);
  t.deepEqual(await traces(bridge, subnet), []);
});

test('IPv6 networks: a subnet from the unique local pool when none is given; a v6 subnet without --ipv6 is refused', async (t) => {
  const r = await d.request('POST', '/networks/create', { Name: 'v6auto', EnableIPv6: true });
  t.is(r.status, 201, r.body);
  const net = JSON.parse((await d.docker(['network', 'inspect', 'v6auto'])).stdout)[0];
  t.regex(net.IPAM.Config[1].Subnet, /^fd[0-9a-f]{2}:[0-9a-f]{1,4}:[0-9a-f]{1,4}::\/64$/);
  const ip6 = (await sh(['--network', 'v6auto'], 'ip -o -6 addr show dev eth0 scope global')).stdout;
  t.true(ip6.includes(`${net.IPAM.Config[1].Subnet.replace('::/64', '::2/64')}`), ip6);
  const plain = await d.docker(['network', 'create', '--subnet', 'fd42:be:7f::/64', 'nov6']);
  t.not(plain.code, 0);
  t.regex(plain.stderr, /needs IPv6 enabled/);
  const overlap = await d.docker(['network', 'create', '--ipv6', '--subnet', net.IPAM.Config[1].Subnet, 'v6clash']);
  t.regex(overlap.stderr, /Pool overlaps/);
  t.is((await d.docker(['network', 'rm', 'v6auto'])).code, 0);
});

test('the default bridge with ipv6 and fixed-cidr-v6 from daemon.json: top-level IPv6 fields, ping6 between containers', async (t) => {
  const d6 = await startDaemonWithBusybox({ config: { ipv6: true, 'fixed-cidr-v6': 'fd42:be:80::/64' } });
  try {
    const bridge = JSON.parse((await d6.docker(['network', 'inspect', 'bridge'])).stdout)[0];
    t.true(bridge.EnableIPv6);
    t.deepEqual(bridge.IPAM.Config[1], { Subnet: 'fd42:be:80::/64', Gateway: 'fd42:be:80::1' });
    await d6.docker(['run', '-d', '--name', 'b6', 'busybox', 'sleep', '600']);
    const ns = JSON.parse((await d6.docker(['inspect', 'b6'])).stdout)[0].NetworkSettings;
    t.is(ns.GlobalIPv6Address, 'fd42:be:80::2');
    t.is(ns.GlobalIPv6PrefixLen, 64);
    t.is(ns.IPv6Gateway, 'fd42:be:80::1');
    const r = await d6.docker(['run', '--rm', 'busybox', 'sh', '-c', 'ping6 -c 1 -W 3 fd42:be:80::2 >/dev/null && echo reached']);
    t.is(r.stdout, 'reached\n', r.stderr);
  } finally {
    await removeAllAndStop(d6);
  }
  t.false((await run('ip6tables-save')).stdout.includes('fd42:be:80::'));
});
