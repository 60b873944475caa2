import test from 'ava';
import { applyResult, goDuration, probeCommand, timings, type HealthState } from './health.js';

test('probe commands from CMD, CMD-SHELL and NONE', (t) => {
  t.deepEqual(probeCommand({ Test: ['CMD', 'true', 'x'] }), ['true', 'x']);
  t.deepEqual(probeCommand({ Test: ['CMD-SHELL', 'wget -q localhost || exit 1'] }), ['/bin/sh', '-c', 'wget -q localhost || exit 1']);
  t.is(probeCommand({ Test: ['NONE'] }), null);
  t.is(probeCommand(undefined), null);
});

test('defaults and nanosecond durations', (t) => {
  t.deepEqual(timings({}), { interval: 30_000, timeout: 30_000, startPeriod: 0, startInterval: 5_000, retries: 3 });
  t.is(timings({ Interval: 2e9, Retries: 1 }).interval, 2000);
  t.is(goDuration(1000), '1s');
  t.is(goDuration(1500), '1.5s');
  t.is(goDuration(500), '500ms');
});

test('status follows results: retries, start period, last five entries', (t) => {
  const st: HealthState = { Status: 'starting', FailingStreak: 0, Log: [] };
  const r = (code: number, inStartPeriod = false) => applyResult(st,
    { Start: '', End: '', ExitCode: code, Output: 'o'.repeat(5000) }, { retries: 2, inStartPeriod });
  t.is(r(1, true), null);           // inside the start period: not counted
  t.is(st.FailingStreak, 0);
  t.is(r(0), 'healthy');
  t.is(r(1), null);
  t.is(st.FailingStreak, 1);
  t.is(r(1), 'unhealthy');
  t.is(r(1, true), null);           // the start period no longer matters once not starting
  t.is(st.FailingStreak, 3);
  t.is(r(0), 'healthy');
  t.is(st.FailingStreak, 0);
  t.is(st.Log.length, 5);
  t.is(st.Log[0]!.Output.length, 4096);
});
