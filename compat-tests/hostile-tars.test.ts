// The hostile tar table against layer extraction, docker load and docker import: nothing is
// written outside, and each archive is refused with a clear message or contained.
import test from 'ava';
import { lstat, mkdir, mkdtemp, readdir, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { extractLayer } from '../src/oci/tar-extract.js';
import { startDaemon, type Daemon } from './harness.js';
import { asImageArchive, hostileArchives, hostileTars, outsideState } from './hostile-tars.js';

let d: Daemon;
let outside: string;
let untouched: Record<string, unknown>;
test.before(async () => {
  outside = await mkdtemp('/tmp/bhostile-');
  untouched = await outsideState(outside);
  d = await startDaemon();
});
test.after.always(async () => {
  await d?.stop();
  await rm(outside, { recursive: true, force: true });
});


test.serial('layer extraction contains or refuses every hostile tar', async (t) => {
  for (const c of await hostileTars(outside)) {
    // the layer two levels down a directory of the test's own: a whiteout of ".." stays in it
    const box = await mkdtemp('/tmp/bhostile-layer-');
    const dest = join(box, 'layer', 'diff');
    await mkdir(dest, { recursive: true });
    try {
      await extractLayer(Readable.from([c.tar]), dest).then(() => 'contained', (e: Error) => `refused: ${e.message}`);
      t.deepEqual(await outsideState(outside), untouched, c.name);
      t.true((await stat(dest)).isDirectory(), `${c.name}: the layer directory is still there`);
      // a hard link inside the layer to a host file would let a container write to it
      const host = await stat('/etc/hostname');
      for (const name of await readdir(dest).catch(() => [] as string[])) {
        const st = await lstat(join(dest, name));
        t.false(st.ino === host.ino && st.dev === host.dev, `${c.name}: ${name} is the host's /etc/hostname`);
      }
    } finally {
      await rm(box, { recursive: true, force: true });
    }
  }
});

test.serial('docker import and docker load contain or refuse every hostile tar', async (t) => {
  let i = 0;
  for (const c of await hostileTars(outside)) {
    i++;
    const imp = await d.docker(['import', '-', `hostile-import:${i}`], { input: c.tar });
    if (imp.code !== 0) t.regex(imp.stderr, /(Error response from daemon|error importing tar): .+/, `${c.name}: ${imp.stderr}`);
    t.deepEqual(await outsideState(outside), untouched, `import: ${c.name}`);
    const load = await d.docker(['load'], { input: await asImageArchive(c.tar, `hostile-load:${i}`) });
    if (load.code !== 0) t.regex(load.stderr, /\S/, `${c.name}: ${load.stderr}`);
    t.deepEqual(await outsideState(outside), untouched, `load: ${c.name}`);
  }
  for (const c of await hostileArchives(outside)) {
    const load = await d.docker(['load'], { input: c.tar });
    t.not(load.code, 0, c.name);
    t.deepEqual(await outsideState(outside), untouched, `load: ${c.name}`);
  }
  // as build contexts: the context is unpacked (no Dockerfile in these, so the build then fails)
  for (const c of await hostileTars(outside)) {
    const r = await d.request('POST', '/build?dockerfile=Dockerfile', c.tar, { 'Content-Type': 'application/x-tar' });
    t.regex(r.body, /errorDetail|Error|error/i, c.name);
    t.deepEqual(await outsideState(outside), untouched, `build context: ${c.name}`);
  }
  t.is((await d.docker(['version'])).code, 0);
});

test.serial('a tar cut short is refused by load, import, build and archive upload with a clear error, and nothing fails unheard', async (t) => {
  const { ensureBusyboxTar } = await import('./images-fixture.js');
  const { readFile } = await import('node:fs/promises');
  const whole = await readFile(await ensureBusyboxTar());
  t.is((await d.request('POST', '/images/load?quiet=1', whole, { 'Content-Type': 'application/x-tar' })).status, 200);
  const c = await d.request('POST', '/containers/create?name=cut-short', { Image: 'busybox', Cmd: ['true'] });
  t.is(c.status, 201, c.body);
  const cut = whole.subarray(0, whole.length >> 1);
  const unheard = async (): Promise<number> => (await d.logs()).split('\n').filter((l) => /unhandled/i.test(l)).length;
  const before = await unheard();
  for (const [method, path] of [['POST', '/images/load'], ['POST', '/images/create?fromSrc=-&repo=cut-short'], ['POST', '/build?t=cut-short'], ['PUT', '/containers/cut-short/archive?path=/tmp']] as const) {
    const r = await d.request(method, path, cut, { 'Content-Type': 'application/x-tar' });
    // tar-stream's words (load, build, archive upload) or the native unpacker's (import)
    t.regex(r.body, /Unexpected end of data|unexpected EOF/, `${path}: ${r.body}`);
  }
  await new Promise((r) => setTimeout(r, 300)); // a late rejection would be logged by now
  t.is(await unheard(), before, 'no unhandled rejection in the daemon log');
  t.is((await d.request('DELETE', '/containers/cut-short')).status, 204);
});
