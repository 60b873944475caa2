// A short fuzz run against a live daemon (scripts/bench/reliability runs 20,000 requests):
// no crash, no unexpected 5xx, and the daemon still serves the CLI and reloads its store.
import test from 'ava';
import { startDaemon } from '../harness.js';
import { ensureBusyboxTar, removeAllAndStop } from '../images-fixture.js';
import { runFuzz } from './fuzzer.js';

test('2,000 fuzzed requests: no crash, no 5xx beyond 501/503, the daemon still serves and restarts', async (t) => {
  const d = await startDaemon();
  try {
    // real objects for the fuzzed path parameters to hit: an image and a running container named busybox
    await d.docker(['load', '-i', await ensureBusyboxTar()]);
    await d.docker(['run', '-d', '--name', 'busybox', 'busybox', 'sleep', '600']);
    const seed = Number(process.env.FUZZ_SEED ?? Date.now() % 1_000_000);
    t.log(`seed ${seed} (FUZZ_SEED=${seed} reproduces it)`);
    const r = await runFuzz({ socket: d.socket, count: Number(process.env.FUZZ_COUNT ?? 2000), seed });
    t.log(JSON.stringify(r.byStatus));
    t.deepEqual(r.serverErrors.slice(0, 10), []);
    t.true(process.kill(d.pid, 0));
    const ps = await d.docker(['ps', '-a']);
    t.is(ps.code, 0, ps.stderr);
    await d.restart();
    t.is((await d.docker(['ps', '-a'])).code, 0);
  } finally {
    await removeAllAndStop(d);
  }
});
