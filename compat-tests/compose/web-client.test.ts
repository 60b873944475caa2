// Compose v2 (Debian trixie's plugin, installed by scripts/setup) against berthd: a web service
// built from its own Dockerfile, a client that waits for it to be healthy and reaches it by its
// service name, a named volume, a published port, logs, exec, and `down -v` leaving nothing.
import test from 'ava';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { request } from 'node:http';
import type { Daemon } from '../harness.js';
import { removeAllAndStop, startDaemonWithBusybox } from '../images-fixture.js';

const plugin = join(homedir(), '.docker', 'cli-plugins', 'docker-compose');
let d: Daemon;
let dir: string;

test.before(async () => {
  d = await startDaemonWithBusybox();
  dir = await mkdtemp('/tmp/bcompose-');
  await mkdir(join(dir, 'web'));
  await writeFile(join(dir, 'web', 'Dockerfile'), 'FROM busybox\nRUN mkdir /www && echo compose-ok > /www/index.html\nCMD ["httpd", "-f", "-p", "80", "-h", "/www"]\n');
  await writeFile(join(dir, 'compose.yaml'), [
    'services:',
    '  web:',
    '    build: ./web',
    '    init: true',
    '    ports: ["127.0.0.1::80"]',
    '    volumes: ["data:/data"]',
    '    healthcheck: { test: ["CMD", "wget", "-qO-", "http://127.0.0.1/"], interval: 1s, retries: 10 }',
    '  client:',
    '    image: busybox',
    '    init: true',
    '    command: sh -c "wget -qO- http://web/ && echo seen > /data/seen && exec sleep 600"',
    '    volumes: ["data:/data"]',
    '    depends_on: { web: { condition: service_healthy } }',
    'volumes:',
    '  data: {}',
    '',
  ].join('\n'));
});
test.after.always(async () => { await removeAllAndStop(d); if (dir) await rm(dir, { recursive: true, force: true }); });

const compose = (args: string[]) => d.docker(['compose', '--project-directory', dir, '-p', 'webapp', ...args], { env: { DOCKER_BUILDKIT: '0' }, timeoutMs: 120_000 });

test('up --build, ps, logs, exec, port, down -v', async (t) => {
  if (!existsSync(plugin)) { t.fail(`the compose plugin is missing at ${plugin}: scripts/setup installs it`); return; }
  const up = await compose(['up', '-d', '--build', '--wait']);
  t.is(up.code, 0, up.stderr);
  const ps = await compose(['ps', '--format', '{{.Service}} {{.Status}}']);
  t.regex(ps.stdout, /^web Up .*\(healthy\)$/m);
  t.regex(ps.stdout, /^client Up/m);
  for (let i = 0; i < 50 && !(await compose(['logs', 'client'])).stdout.includes('compose-ok'); i++) await new Promise((r) => setTimeout(r, 100));
  t.regex((await compose(['logs', 'client'])).stdout, /compose-ok/);
  t.is((await compose(['exec', '-T', 'web', 'cat', '/data/seen'])).stdout, 'seen\n'); // the shared named volume
  const port = (await compose(['port', 'web', '80'])).stdout.trim();
  t.regex(port, /^127\.0\.0\.1:\d+$/);
  const body = await new Promise<string>((resolve, reject) => request(`http://${port}/`, (res) => { let s = ''; res.on('data', (b) => { s += b; }); res.on('end', () => resolve(s)); }).on('error', reject).end());
  t.is(body, 'compose-ok\n');
  const down = await compose(['down', '-v']);
  t.is(down.code, 0, down.stderr);
  t.is((await d.docker(['ps', '-aq', '--filter', 'label=com.docker.compose.project=webapp'])).stdout.trim(), '');
  t.notRegex((await d.docker(['network', 'ls', '--format', '{{.Name}}'])).stdout, /webapp_default/);
  t.notRegex((await d.docker(['volume', 'ls', '--format', '{{.Name}}'])).stdout, /webapp_data/);
});
