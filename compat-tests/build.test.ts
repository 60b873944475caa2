// docker build (classic builder, DOCKER_BUILDKIT=0) through the stock CLI.
import test from 'ava';
import { execFile } from 'node:child_process';
import { mkdir, mkdtemp, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import type { Daemon } from './harness.js';
import { removeAllAndStop, startDaemonWithBusybox } from './images-fixture.js';

const run = promisify(execFile);
let d: Daemon;
let root: string;
test.before(async () => { d = await startDaemonWithBusybox(); root = await mkdtemp('/tmp/bbuild-'); });
test.after.always(async () => { await removeAllAndStop(d); await rm(root, { recursive: true, force: true }); });

const env = { DOCKER_BUILDKIT: '0' };
async function context(name: string, files: Record<string, string>): Promise<string> {
  const dir = join(root, name);
  for (const [p, body] of Object.entries(files)) {
    await mkdir(join(dir, p, '..'), { recursive: true });
    await writeFile(join(dir, p), body);
  }
  return dir;
}
const build = (args: string[], input?: string) => d.docker(['build', ...args], { env, input });
const runOut = async (img: string, ...cmd: string[]) => (await d.docker(['run', '--rm', img, ...cmd])).stdout;

test('every instruction, with args, heredocs, chown/chmod, wildcards and ADD of a tar', async (t) => {
  const dir = await context('all', {
    'Dockerfile': [
      'ARG BASE=busybox',
      'FROM ${BASE}',
      'MAINTAINER someone',
      'ARG WHO=world',
      'ENV GREETING="hello ${WHO}" OTHER=x',
      'LABEL org.example.a=1 b="two words"',
      'WORKDIR /app',
      'COPY --chown=65534:65534 --chmod=640 *.txt ./',
      'COPY sub/ ./copied/',
      'ADD files.tar /unpacked/',
      'RUN <<EOF',
      'echo "$GREETING" > /app/greeting',
      'id -u >> /app/greeting',
      'echo "proxy:$no_proxy" >> /app/greeting',
      'EOF',
      'COPY <<EOF /app/inline.conf',
      'inline=yes',
      'EOF',
      'SHELL ["/bin/sh", "-c"]',
      'USER nobody',
      'EXPOSE 8080 9090/udp',
      'VOLUME /data',
      'STOPSIGNAL SIGINT',
      'HEALTHCHECK --interval=5s --retries=2 CMD true',
      'ONBUILD RUN echo triggered > /tmp/onbuild',
      'ENTRYPOINT ["/bin/sh", "-c"]',
      'CMD ["cat /app/greeting /app/inline.conf; ls /app /app/copied /unpacked; stat -c \'%U %a\' /app/a.txt"]',
    ].join('\n'),
    'a.txt': 'A\n', 'b.txt': 'B\n', 'sub/inner.txt': 'inner\n',
  });
  await run('tar', ['-C', dir, '-cf', join(dir, 'files.tar'), 'sub']);
  const r = await build(['--build-arg', 'WHO=berth', '--build-arg', 'no_proxy=example.invalid', '-t', 'all:1', dir]);
  t.is(r.code, 0, r.stderr + r.stdout);
  t.regex(r.stdout, /Step 1\/\d+ : ARG BASE=busybox/);
  t.regex(r.stdout, /Successfully tagged all:1/);
  const out = await runOut('all:1');
  t.regex(out, /^hello berth\n0\nproxy:example\.invalid\ninline=yes\n/);
  t.regex(out, /a\.txt\nb\.txt\ncopied\ngreeting\ninline\.conf/);
  t.regex(out, /\/app\/copied:\ninner\.txt/);
  t.regex(out, /\/unpacked:\nsub/);
  t.regex(out, /nobody 640\n$/);
  const cfg = JSON.parse((await d.docker(['image', 'inspect', '-f', '{{json .Config}}', 'all:1'])).stdout);
  t.is(cfg.User, 'nobody');
  t.is(cfg.WorkingDir, '/app');
  t.deepEqual(Object.keys(cfg.ExposedPorts).sort(), ['8080/tcp', '9090/udp']);
  t.deepEqual(cfg.Volumes, { '/data': {} });
  t.is(cfg.StopSignal, 'SIGINT');
  t.deepEqual(cfg.Healthcheck, { Test: ['CMD-SHELL', 'true'], Interval: 5e9, Retries: 2 });
  t.deepEqual(cfg.OnBuild, ['RUN echo triggered > /tmp/onbuild']);
  t.deepEqual(cfg.Labels, { 'org.example.a': '1', b: 'two words' });
  t.true(cfg.Env.includes('GREETING=hello berth'));
  // ONBUILD triggers run in a child build
  const child = await context('child', { 'Dockerfile': 'FROM all:1\nENTRYPOINT []\nCMD ["cat", "/tmp/onbuild"]\n' });
  t.is((await build(['-t', 'child:1', child])).code, 0);
  t.is(await runOut('child:1'), 'triggered\n');
});

test('multi-stage with COPY --from and --target; only the stages the target needs are built', async (t) => {
  const dir = await context('multi', {
    'Dockerfile': 'FROM busybox AS builder\nRUN echo compiled > /artifact\nFROM busybox AS unused\nRUN exit 9\nFROM busybox AS final\nCOPY --from=builder /artifact /final\nCMD ["cat", "/final"]\nFROM busybox AS later\nRUN exit 7\n',
  });
  const r = await build(['--target', 'final', '-t', 'multi:t', dir]);
  t.is(r.code, 0, r.stdout + r.stderr);
  t.notRegex(r.stdout, /exit 9|exit 7/);
  t.is(await runOut('multi:t'), 'compiled\n');
  const all = await build(['-t', 'multi:all', dir]);
  t.regex(all.stderr, /returned a non-zero code: 7/); // the last stage is the default target
  t.notRegex(all.stdout, /exit 9/);
});

test.serial('a failing RUN reports the command and its exit code; intermediate containers are removed', async (t) => {
  const dir = await context('fail', { 'Dockerfile': 'FROM busybox\nRUN echo before && exit 3\n' });
  const r = await build(['-t', 'fail:1', dir]);
  t.is(r.code, 3); // the CLI exits with the failing step's code, as with the Engine
  t.regex(r.stderr, /The command '\/bin\/sh -c echo before && exit 3' returned a non-zero code: 3/);
  t.regex(r.stdout, /before/);
  // without --force-rm the failed step's container stays (as with the Engine); with it, it goes
  const kept = (await d.docker(['ps', '-aq', '--filter', 'status=exited'])).stdout.trim().split('\n').filter(Boolean).length;
  t.regex((await build(['--force-rm', '-t', 'fail:2', dir])).stderr, /non-zero code: 3/);
  t.is((await d.docker(['ps', '-aq', '--filter', 'status=exited'])).stdout.trim().split('\n').filter(Boolean).length, kept);
});

test('cache: an unchanged rebuild uses it for every step; editing one file invalidates from its COPY on', async (t) => {
  const dir = await context('cache', {
    'Dockerfile': 'FROM busybox\nRUN echo one > /one\nCOPY f.txt /f.txt\nRUN cat /f.txt > /copy\n',
    'f.txt': 'v1\n',
  });
  t.is((await build(['-t', 'cache:1', dir])).code, 0);
  const again = await build(['-t', 'cache:1', dir]);
  t.is((again.stdout.match(/Using cache/g) ?? []).length, 3);
  await writeFile(join(dir, 'f.txt'), 'v2\n');
  const changed = await build(['-t', 'cache:2', dir]);
  t.is((changed.stdout.match(/Using cache/g) ?? []).length, 1);
  t.is(await runOut('cache:2', 'cat', '/copy'), 'v2\n');
  const nocache = await build(['--no-cache', '-t', 'cache:3', dir]);
  t.notRegex(nocache.stdout, /Using cache/);
  const df = await d.docker(['system', 'df', '-v', '--format', '{{json .BuildCache}}']);
  t.regex(df.stdout, /COPY f\.txt \/f\.txt/);
  const prune = await d.docker(['builder', 'prune', '-f']);
  t.is(prune.code, 0, prune.stderr);
});

test('.dockerignore with exceptions; -q, --iidfile, a Dockerfile from stdin', async (t) => {
  const dir = await context('ignore', {
    'Dockerfile': 'FROM busybox\nCOPY . /ctx/\nCMD ["sh", "-c", "cd /ctx && find . -type f | sort"]\n',
    '.dockerignore': '*.log\nsecret/\n!keep.log\n',
    'a.log': 'x', 'keep.log': 'y', 'secret/key': 'k', 'src/main.c': 'int main;',
  });
  const iid = join(root, 'iid');
  const q = await build(['-q', '--iidfile', iid, dir]);
  t.is(q.code, 0, q.stderr);
  t.regex(q.stdout.trim(), /^sha256:[0-9a-f]{64}$/);
  t.is((await readFile(iid, 'utf8')).trim(), q.stdout.trim());
  const files = await runOut(q.stdout.trim());
  t.deepEqual(files.trim().split('\n'), ['./.dockerignore', './Dockerfile', './keep.log', './src/main.c']);
  const stdin = await build(['-t', 'stdin:1', '-f', '-', dir], 'FROM busybox\nCMD ["echo", "from stdin"]\n');
  t.is(stdin.code, 0, stdin.stderr);
  t.is(await runOut('stdin:1'), 'from stdin\n');
});

test('a hostile context never reads outside itself', async (t) => {
  const secretDir = await mkdtemp('/tmp/bbuild-secret-');
  await writeFile(join(secretDir, 'secret.txt'), 'TOP SECRET');
  const dir = await context('hostile', { 'Dockerfile': 'FROM busybox\nCOPY link/secret.txt /got\n' });
  await symlink(secretDir, join(dir, 'link'));
  const viaLink = await build(['-t', 'hostile:1', dir]);
  if (viaLink.code === 0) t.notRegex(await runOut('hostile:1', 'cat', '/got'), /TOP SECRET/);
  else t.regex(viaLink.stderr, /outside the build context|not found|does not exist/);
  const dotdot = await context('hostile2', { 'Dockerfile': 'FROM busybox\nCOPY ../../../../etc/hostname /got\n' });
  const up = await build(['-t', 'hostile:2', dotdot]);
  if (up.code === 0) t.not(await runOut('hostile:2', 'cat', '/got'), await readFile('/etc/hostname', 'utf8'));
  else t.regex(up.stderr, /outside the build context|not found|does not exist/);
  const bad = await context('bad', { 'Dockerfile': 'FROM busybox\nFROBNICATE now\n' });
  t.regex((await build([bad])).stderr, /line 2: unknown instruction: FROBNICATE/);
  await rm(secretDir, { recursive: true, force: true });
});
