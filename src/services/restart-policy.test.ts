import test from 'ava';
import { Backoff, shouldRestart, startsWithDaemon, validateRestartPolicy } from './restart-policy.js';

test('policies decide restarts as the Engine does', (t) => {
  const exit = (exitCode: number, restartCount = 0, manual = false) => ({ exitCode, restartCount, manual });
  t.false(shouldRestart(undefined, exit(1)));
  t.false(shouldRestart({ Name: 'no' }, exit(1)));
  t.true(shouldRestart({ Name: 'always' }, exit(0)));
  t.false(shouldRestart({ Name: 'always' }, exit(0, 0, true)));
  t.true(shouldRestart({ Name: 'unless-stopped' }, exit(0)));
  t.false(shouldRestart({ Name: 'on-failure' }, exit(0)));
  t.true(shouldRestart({ Name: 'on-failure' }, exit(2, 50)));
  t.true(shouldRestart({ Name: 'on-failure', MaximumRetryCount: 2 }, exit(2, 1)));
  t.false(shouldRestart({ Name: 'on-failure', MaximumRetryCount: 2 }, exit(2, 2)));
  t.true(startsWithDaemon({ Name: 'always' }, false));
  t.false(startsWithDaemon({ Name: 'unless-stopped' }, true));
  t.false(startsWithDaemon({ Name: 'on-failure' }, false));
});

test('back-off doubles from 100 ms, caps at a minute, resets after 10 s up', (t) => {
  const b = new Backoff();
  t.deepEqual([b.next(0), b.next(0), b.next(0), b.next(5)], [100, 200, 400, 800]);
  for (let i = 0; i < 20; i++) b.next(0);
  t.is(b.next(0), 60_000);
  t.is(b.next(10_000), 100);
});

test('invalid policies are refused with the Engine messages', (t) => {
  t.throws(() => validateRestartPolicy({ Name: 'sometimes' }), { message: /unknown policy 'sometimes'/ });
  t.throws(() => validateRestartPolicy({ Name: 'always', MaximumRetryCount: 3 }), { message: /only be used with 'on-failure'/ });
  t.notThrows(() => validateRestartPolicy({ Name: 'on-failure', MaximumRetryCount: 3 }));
});
