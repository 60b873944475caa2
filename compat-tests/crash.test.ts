// A few rounds of SIGKILL fault injection in npm test (scripts/bench/reliability runs 50).
import test from 'ava';
import { startDaemon } from './harness.js';
import { ensureBusyboxTar, removeAllAndStop } from './images-fixture.js';
import { crashRounds } from './crash.js';

test('SIGKILL at random moments under parallel load: every object whole or gone, nothing leaks', async (t) => {
  // live-restore: the clean stops between rounds (for the offline check) keep containers running
  const d = await startDaemon({ config: { 'live-restore': true } });
  try {
    const tar = await ensureBusyboxTar();
    await d.docker(['load', '-i', tar]);
    const rounds = await crashRounds(d, Number(process.env.CRASH_ROUNDS ?? 6), tar, (s) => t.log(s));
    t.deepEqual(rounds.flatMap((r) => r.problems), []);
    t.true(rounds.some((r) => r.containers > 0), 'the driver created containers');
  } finally {
    await removeAllAndStop(d);
  }
});
