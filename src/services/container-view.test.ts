import test from 'ava';
import { filterContainers, statusText } from './container-view.js';
import { ZERO_TIME, type ContainerRecord } from '../store/containers.js';
import { humanDuration } from './time.js';
import { parseSignal } from './signals.js';
import { normaliseName } from './names.js';

function rec(id: string, name: string, running: boolean, created: string, extra: Partial<ContainerRecord['State']> = {}): ContainerRecord {
  return {
    Id: id, Name: name, Created: created, Path: 'sh', Args: [], Config: { Labels: { a: '1' } }, HostConfig: { NetworkMode: 'none' },
    Image: 'sha256:x', RestartCount: 0, Driver: 'overlay2', Platform: 'linux', ExecIDs: null, LogPath: '', ResolvConfPath: '',
    HostnamePath: '', HostsPath: '', Runtime: 'berth',
    State: { Status: running ? 'running' : 'exited', Running: running, Paused: false, Restarting: false, OOMKilled: false,
      Dead: false, Pid: 0, ExitCode: 0, Error: '', StartedAt: created, FinishedAt: running ? ZERO_TIME : created, ...extra },
  };
}

test('filters: status, label, name, id, exited, before/since and validation', (t) => {
  const a = rec('aaa1', '/web', true, '2026-01-01T00:00:00Z');
  const b = rec('bbb2', '/db', false, '2026-01-02T00:00:00Z', { ExitCode: 3 });
  const ctx = { lookup: (r: string) => [a, b].find((x) => x.Id === r || x.Name === `/${r}`)!, matchesAncestor: () => false };
  t.deepEqual(filterContainers([a, b], {}, false, ctx), [a]);
  t.deepEqual(filterContainers([a, b], {}, true, ctx), [a, b]);
  t.deepEqual(filterContainers([a, b], { status: ['exited'] }, false, ctx), [b]);
  t.deepEqual(filterContainers([a, b], { exited: ['3'] }, false, ctx), [b]);
  t.deepEqual(filterContainers([a, b], { name: ['we'] }, true, ctx), [a]);
  t.deepEqual(filterContainers([a, b], { id: ['bb'] }, true, ctx), [b]);
  t.deepEqual(filterContainers([a, b], { label: ['a=1'] }, true, ctx), [a, b]);
  t.deepEqual(filterContainers([a, b], { label: ['a=2'] }, true, ctx), []);
  t.deepEqual(filterContainers([a, b], { since: ['web'] }, true, ctx), [b]);
  t.deepEqual(filterContainers([a, b], { before: ['db'] }, true, ctx), [a]);
  t.throws(() => filterContainers([a], { bogus: ['x'] }, true, ctx), { message: "invalid filter 'bogus'" });
  t.throws(() => filterContainers([a], { status: ['sleepy'] }, true, ctx), { message: "invalid filter 'status=sleepy'" });
});

test('status text as docker ps shows it', (t) => {
  const now = Date.parse('2026-01-01T00:00:05Z');
  t.is(statusText(rec('a', '/a', true, '2026-01-01T00:00:00Z'), now), 'Up 5 seconds');
  t.is(statusText(rec('a', '/a', false, '2026-01-01T00:00:00Z', { ExitCode: 137 }), now), 'Exited (137) 5 seconds ago');
  t.is(statusText(rec('a', '/a', false, '2026-01-01T00:00:00Z', { Status: 'created', FinishedAt: ZERO_TIME }), now), 'Created');
  t.is(humanDuration(90_000), '2 minutes');
  t.is(humanDuration(400), 'Less than a second');
});

test('signals and names', (t) => {
  t.is(parseSignal('SIGTERM'), 15);
  t.is(parseSignal('term'), 15);
  t.is(parseSignal('9'), 9);
  t.is(parseSignal(undefined, 'SIGKILL'), 9);
  t.throws(() => parseSignal('SIGNOPE'), { message: 'Invalid signal: SIGNOPE' });
  t.is(normaliseName('web'), '/web');
  t.throws(() => normaliseName('-bad'), { message: /Invalid container name/ });
});
