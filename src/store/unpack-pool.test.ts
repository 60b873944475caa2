// The unpacking pool started ahead of work (as the daemon does once it listens) is the one the
// next layers use: warming twice or unpacking after it starts no further worker.
import test from 'ava';
import { availableParallelism } from 'node:os';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { pathToFileURL } from 'node:url';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { gzipSync } from 'node:zlib';
import tar from 'tar-stream';
import { unpack, unpackWorkerCount, useUnpackerForTests, warmUnpackers } from './unpack.js';

async function layerTar(files: Record<string, string>): Promise<Buffer> {
  const pack = tar.pack();
  for (const [name, body] of Object.entries(files)) pack.entry({ name, mode: 0o644 }, body);
  pack.finalize();
  const chunks: Buffer[] = [];
  for await (const c of pack) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

test.serial('warmUnpackers starts the whole pool once; unpacking then uses those workers', async (t) => {
  useUnpackerForTests('worker'); // the pool is what is left when the native unpacker is not built
  t.teardown(() => useUnpackerForTests(undefined));
  const expected = Math.max(2, Math.min(4, availableParallelism()));
  t.is(unpackWorkerCount(), 0);
  warmUnpackers();
  t.is(unpackWorkerCount(), expected);
  warmUnpackers();
  t.is(unpackWorkerCount(), expected, 'warming again starts nothing more');
  const dir = await mkdtemp(join(tmpdir(), 'berth-unpack-pool-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const layers = await Promise.all([1, 2, 3].map(async (i) => {
    await mkdir(join(dir, `diff${i}`));
    const gz = gzipSync(await layerTar({ [`f${i}`]: `layer ${i}\n` }));
    const out = await unpack(Readable.from([gz]), join(dir, `ingest${i}`), join(dir, `diff${i}`));
    return { i, out };
  }));
  for (const { i, out } of layers) {
    t.is(await readFile(join(dir, `diff${i}`, `f${i}`), 'utf8'), `layer ${i}\n`);
    t.regex(out.diffId, /^sha256:[0-9a-f]{64}$/);
  }
  t.is(unpackWorkerCount(), expected, 'the layers ran in the warmed workers');
});

test('a worker whose code cannot load is noticed: the layers are unpacked in the main thread', async (t) => {
  // a separate module instance: the pool's state is per thread and per module URL
  const fresh = await import(`./unpack.js?broken-worker-${Date.now()}`) as typeof import('./unpack.js');
  const dir = await mkdtemp(join(tmpdir(), 'berth-unpack-pool-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const script = join(dir, 'broken-worker.mjs');
  await writeFile(script, "import './no-such-module.js';\n");
  fresh.unpackWorkerScriptForTests(pathToFileURL(script));
  fresh.useUnpackerForTests('worker');
  for (const i of [1, 2]) {
    await mkdir(join(dir, `diff${i}`));
    const gz = gzipSync(await layerTar({ [`f${i}`]: `layer ${i}\n` }));
    const out = await fresh.unpack(Readable.from([gz]), join(dir, `ingest${i}`), join(dir, `diff${i}`));
    t.is(await readFile(join(dir, `diff${i}`, `f${i}`), 'utf8'), `layer ${i}\n`);
    t.regex(out.diffId, /^sha256:[0-9a-f]{64}$/);
  }
  t.is(fresh.unpackWorkerCount(), 0, 'no worker is kept, none is started again');
});
