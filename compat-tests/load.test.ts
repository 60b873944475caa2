// A short load run in npm test (scripts/bench/reliability runs 200 containers x 16 clients).
import test from 'ava';
import { startDaemon } from './harness.js';
import { ensureBusyboxTar, removeAllAndStop } from './images-fixture.js';
import { loadRun } from './load.js';

test('40 containers by 8 concurrent clients: every call answers, nothing lost, memory comes back', async (t) => {
  const d = await startDaemon();
  try {
    await d.docker(['load', '-i', await ensureBusyboxTar()]);
    const r = await loadRun(d, 40, 8);
    t.log(JSON.stringify(r));
    t.deepEqual(r.failedCalls, []);
    t.is(r.lost, 0);
    t.is(r.duplicated, 0);
    t.true(r.rssAfterMiB < r.rssIdleMiB + 40, `daemon memory ${r.rssIdleMiB.toFixed(1)} -> ${r.rssAfterMiB.toFixed(1)} MiB`);
  } finally {
    await removeAllAndStop(d);
  }
});
