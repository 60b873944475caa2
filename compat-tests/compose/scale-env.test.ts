// Compose: scaling with service-name round robin, custom networks with aliases, network_mode
// service:x, profiles, .env and env_file interpolation, one-shot init services
// (service_completed_successfully), lifecycle commands, and a volume that survives down/up.
import test from 'ava';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Daemon } from '../harness.js';
import { removeAllAndStop, startDaemonWithBusybox } from '../images-fixture.js';

let d: Daemon;
let dir: string;

test.before(async () => {
  d = await startDaemonWithBusybox();
  dir = await mkdtemp('/tmp/bcompose2-');
  await writeFile(join(dir, '.env'), 'GREETING=from-dotenv\nWEB_TAG=scaled\n');
  await writeFile(join(dir, 'app.env'), 'APP_MODE=env-file\n');
  await writeFile(join(dir, 'compose.yaml'), [
    'services:',
    '  init:',
    '    image: busybox',
    '    command: sh -c "echo ${GREETING} > /state/greeting"',
    '    volumes: ["state:/state"]',
    '  web:',
    '    image: busybox',
    '    init: true',
    '    command: sh -c "hostname > /tmp/index.html && exec httpd -f -p 80 -h /tmp"',
    '    labels: { tier: "${WEB_TAG}" }',
    '    networks: { back: { aliases: ["backend"] } }',
    '    depends_on: { init: { condition: service_completed_successfully } }',
    '  probe:',
    '    image: busybox',
    '    init: true',
    '    env_file: app.env',
    '    environment: { GREETING: "${GREETING}" }',
    '    command: sleep 600',
    '    volumes: ["state:/state"]',
    '    networks: [back]',
    '    restart: unless-stopped',
    '  sidecar:',
    '    image: busybox',
    '    init: true',
    '    network_mode: "service:probe"',
    '    command: sleep 600',
    '  debug:',
    '    image: busybox',
    '    profiles: ["debug"]',
    '    command: sleep 600',
    'networks:',
    '  back: {}',
    'volumes:',
    '  state: {}',
    '',
  ].join('\n'));
});
test.after.always(async () => { await removeAllAndStop(d); if (dir) await rm(dir, { recursive: true, force: true }); });

const compose = (args: string[], env: Record<string, string> = {}) =>
  d.docker(['compose', '--project-directory', dir, '-p', 'scaled', ...args], { env: { DOCKER_BUILDKIT: '0', ...env }, timeoutMs: 120_000 });

test.serial('config interpolates .env; up with --scale; profiles stay off', async (t) => {
  const cfg = await compose(['config']);
  t.regex(cfg.stdout, /from-dotenv/);
  t.regex(cfg.stdout, /tier: scaled/);
  const up = await compose(['up', '-d', '--scale', 'web=3', '--wait']);
  t.is(up.code, 0, up.stderr);
  const ps = (await compose(['ps', '--format', '{{.Service}}'])).stdout.trim().split('\n').sort();
  t.deepEqual(ps, ['probe', 'sidecar', 'web', 'web', 'web']);
  t.is((await compose(['ps', '-a', '--format', '{{.Service}} {{.State}}'])).stdout.includes('init exited'), true);
  const labels = await d.docker(['ps', '--filter', 'label=com.docker.compose.project=scaled', '--filter', 'label=com.docker.compose.service=web', '--format', '{{.Label "tier"}}']);
  t.deepEqual(labels.stdout.trim().split('\n'), ['scaled', 'scaled', 'scaled']);
});

test.serial('service-name DNS answers all replicas; the alias on the custom network resolves', async (t) => {
  // all three replicas behind the service name (each answers with its own hostname)
  const names = await compose(['exec', '-T', 'probe', 'sh', '-c', 'for ip in $(nslookup web | awk \'/^Address: /{print $2}\'); do wget -qO- http://$ip/; done | sort -u | wc -l']);
  t.is(names.stdout.trim(), '3', names.stderr);
  const alias = await compose(['exec', '-T', 'probe', 'sh', '-c', 'nslookup backend | grep -c "^Address: " ']);
  t.is(alias.stdout.trim(), '3');
  // the sidecar shares probe's network namespace: it sees probe's address
  const ipProbe = (await compose(['exec', '-T', 'probe', 'hostname', '-i'])).stdout.trim();
  const ipSide = (await compose(['exec', '-T', 'sidecar', 'hostname', '-i'])).stdout.trim();
  t.is(ipSide, ipProbe);
  const env = await compose(['exec', '-T', 'probe', 'sh', '-c', 'echo $APP_MODE $GREETING; cat /state/greeting']);
  t.is(env.stdout, 'env-file from-dotenv\nfrom-dotenv\n');
});

test.serial('run --rm, top, pause/unpause, stop/start/restart, cp, events', async (t) => {
  const run = await compose(['run', '--rm', '-T', 'probe', 'cat', '/state/greeting']);
  t.is(run.stdout.trim(), 'from-dotenv', run.stderr);
  t.regex((await compose(['top', 'probe'])).stdout, /sleep 600/);
  t.is((await compose(['pause', 'probe'])).code, 0);
  t.regex((await compose(['ps', '-a', '--format', '{{.Service}} {{.State}}'])).stdout, /probe paused/);
  t.is((await compose(['unpause', 'probe'])).code, 0);
  t.is((await compose(['stop', 'probe'])).code, 0);
  t.regex((await compose(['ps', '-a', '--format', '{{.Service}} {{.State}}'])).stdout, /probe exited/);
  t.is((await compose(['start', 'probe'])).code, 0);
  t.is((await compose(['restart', 'probe'])).code, 0);
  t.regex((await compose(['ps', '--format', '{{.Service}} {{.State}}'])).stdout, /probe running/);
  const tmp = await mkdtemp('/tmp/bcompose2-cp-');
  try {
    t.is((await compose(['cp', 'probe:/state/greeting', join(tmp, 'g')])).code, 0);
  } finally { await rm(tmp, { recursive: true, force: true }); }
  const ev = await d.docker(['events', '--since', '2m', '--until', String(Math.ceil(Date.now() / 1000) + 1), '--filter', 'label=com.docker.compose.service=probe', '--filter', 'type=container', '--format', '{{.Action}}']);
  for (const a of ['pause', 'unpause', 'stop', 'start', 'restart']) t.true(ev.stdout.split('\n').includes(a), `${a} event missing`);
});

test.serial('a named volume persists across down and up; down -v --remove-orphans removes everything', async (t) => {
  t.is((await compose(['down'])).code, 0);
  t.is((await compose(['up', '-d', 'probe', '--wait'])).code, 0);
  t.is((await compose(['exec', '-T', 'probe', 'cat', '/state/greeting'])).stdout, 'from-dotenv\n');
  const down = await compose(['down', '-v', '--remove-orphans']);
  t.is(down.code, 0, down.stderr);
  t.is((await d.docker(['ps', '-aq', '--filter', 'label=com.docker.compose.project=scaled'])).stdout.trim(), '');
  t.notRegex((await d.docker(['volume', 'ls', '--format', '{{.Name}}'])).stdout, /scaled_state/);
  t.notRegex((await d.docker(['network', 'ls', '--format', '{{.Name}}'])).stdout, /scaled_/);
});
