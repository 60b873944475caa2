// Compose: two more apps. "counter" keeps a visit count in a named volume behind a built HTTP
// service (the value survives restarts and down/up); "chain" passes a request through a proxy
// service (nc) to a backend, with build args, logs -f/--tail and an on-failure restart policy.
import test from 'ava';
import { spawn } from 'node:child_process';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { request } from 'node:http';
import type { Daemon } from '../harness.js';
import { removeAllAndStop, startDaemonWithBusybox } from '../images-fixture.js';

let d: Daemon;
let root: string;
test.before(async () => { d = await startDaemonWithBusybox(); root = await mkdtemp('/tmp/bcompose3-'); });
test.after.always(async () => { await removeAllAndStop(d); if (root) await rm(root, { recursive: true, force: true }); });

const compose = (dir: string, project: string, args: string[]) =>
  d.docker(['compose', '--project-directory', dir, '-p', project, ...args], { env: { DOCKER_BUILDKIT: '0' }, timeoutMs: 120_000 });
const get = (url: string) => new Promise<string>((resolve, reject) =>
  request(url, (res) => { let s = ''; res.on('data', (b) => { s += b; }); res.on('end', () => resolve(s)); }).on('error', reject).end());

test.serial('counter: a value persisted in a volume across restart and down/up', async (t) => {
  const dir = join(root, 'counter');
  await mkdir(join(dir, 'app'), { recursive: true });
  // a CGI script counts visits in /data/count
  await writeFile(join(dir, 'app', 'count.sh'), '#!/bin/sh\nn=$(cat /data/count 2>/dev/null || echo 0)\nn=$((n+1))\necho $n > /data/count\nprintf "Content-Type: text/plain\\r\\n\\r\\n%s\\n" $n\n');
  await writeFile(join(dir, 'app', 'Dockerfile'), 'FROM busybox\nCOPY --chmod=755 count.sh /www/cgi-bin/count\nCMD ["httpd", "-f", "-p", "80", "-h", "/www"]\n');
  await writeFile(join(dir, 'compose.yaml'), 'services:\n  counter:\n    build: ./app\n    init: true\n    ports: ["127.0.0.1::80"]\n    volumes: ["counts:/data"]\nvolumes:\n  counts: {}\n');
  t.is((await compose(dir, 'counter', ['up', '-d', '--build', '--wait'])).code, 0);
  let port = (await compose(dir, 'counter', ['port', 'counter', '80'])).stdout.trim();
  t.is(await get(`http://${port}/cgi-bin/count`), '1\n');
  t.is(await get(`http://${port}/cgi-bin/count`), '2\n');
  t.is((await compose(dir, 'counter', ['restart'])).code, 0);
  await new Promise((r) => setTimeout(r, 300));
  port = (await compose(dir, 'counter', ['port', 'counter', '80'])).stdout.trim();
  t.is(await get(`http://${port}/cgi-bin/count`), '3\n');
  t.is((await compose(dir, 'counter', ['down'])).code, 0);
  t.is((await compose(dir, 'counter', ['up', '-d', '--wait'])).code, 0);
  port = (await compose(dir, 'counter', ['port', 'counter', '80'])).stdout.trim();
  await new Promise((r) => setTimeout(r, 300));
  t.is(await get(`http://${port}/cgi-bin/count`), '4\n');
  t.is((await compose(dir, 'counter', ['down', '-v'])).code, 0);
});

test.serial('chain: proxy to backend, build args, logs -f and --tail, on-failure restarts', async (t) => {
  const dir = join(root, 'chain');
  await mkdir(join(dir, 'backend'), { recursive: true });
  await writeFile(join(dir, 'backend', 'Dockerfile'), 'FROM busybox\nARG BANNER=default\nRUN mkdir /www && echo "backend says ${BANNER}" > /www/index.html\nCMD ["httpd", "-f", "-v", "-p", "8080", "-h", "/www"]\n');
  await writeFile(join(dir, 'compose.yaml'), [
    'services:',
    '  backend:',
    '    build: { context: ./backend, args: { BANNER: chained } }',
    '    init: true',
    '  proxy:',
    '    image: busybox',
    '    init: true',
    '    command: sh -c "while true; do nc -l -p 80 -e nc backend 8080; done"',
    '    ports: ["127.0.0.1::80"]',
    '    depends_on: [backend]',
    '  flaky:',
    '    image: busybox',
    '    command: sh -c "echo attempt; exit 1"',
    '    restart: on-failure:2',
    '',
  ].join('\n'));
  t.is((await compose(dir, 'chain', ['up', '-d', '--build'])).code, 0);
  const port = (await compose(dir, 'chain', ['port', 'proxy', '80'])).stdout.trim();
  let body = '';
  for (let i = 0; i < 30 && !body.includes('chained'); i++) {
    body = await get(`http://${port}/`).catch(() => '');
    if (!body.includes('chained')) await new Promise((r) => setTimeout(r, 100));
  }
  t.is(body, 'backend says chained\n');
  // logs -f follows new lines as requests arrive
  const follow = spawn('docker', ['compose', '--project-directory', dir, '-p', 'chain', 'logs', '-f', '--no-log-prefix', 'backend'], { env: { ...process.env, DOCKER_HOST: d.host, DOCKER_CONFIG: join(d.dir, 'docker-config') } });
  let followed = '';
  follow.stdout.on('data', (b) => { followed += b; });
  await new Promise((r) => setTimeout(r, 500));
  await get(`http://${port}/followed-path`).catch(() => '');
  for (let i = 0; i < 30 && !followed.includes('response:404'); i++) await new Promise((r) => setTimeout(r, 100));
  follow.kill();
  t.regex(followed, /response:404/); // the request for a missing path, logged while following
  const tail = await compose(dir, 'chain', ['logs', '--tail', '1', '--no-log-prefix', 'backend']);
  t.is(tail.stdout.trim().split('\n').length, 1);
  // on-failure:2 -> one run plus two restarts
  let count = '';
  for (let i = 0; i < 50; i++) {
    count = (await d.docker(['inspect', '-f', '{{.RestartCount}} {{.State.Status}}', 'chain-flaky-1'])).stdout.trim();
    if (count === '2 exited') break;
    await new Promise((r) => setTimeout(r, 100));
  }
  t.is(count, '2 exited');
  t.is((await compose(dir, 'chain', ['logs', '--no-log-prefix', 'flaky'])).stdout.replace(/\x1b\[[0-9;]*[A-Za-z]/g, '').trim().split('\n').filter((l) => l.trim() === 'attempt').length, 3);
  t.is((await compose(dir, 'chain', ['down', '--remove-orphans'])).code, 0);
});
