import test from 'ava';
import { InvalidParameterError } from '../errors.js';
import { mergeImageConfig } from './merge-config.js';

const image = {
  User: 'app', Env: ['PATH=/image/bin', 'LANG=C'], Cmd: ['serve'], Entrypoint: ['/entry.sh'],
  WorkingDir: '/srv', Labels: { a: 'image', b: 'image' }, ExposedPorts: { '80/tcp': {} },
  Volumes: { '/data': {} }, StopSignal: 'SIGQUIT',
  Healthcheck: { Test: ['CMD', 'true'], Interval: 5e9, Retries: 2 },
};

test('empty create config takes everything from the image', (t) => {
  const m = mergeImageConfig(image, {});
  t.is(m.User, 'app');
  t.deepEqual(m.Env, ['PATH=/image/bin', 'LANG=C']);
  t.deepEqual(m.Entrypoint, ['/entry.sh']);
  t.deepEqual(m.Cmd, ['serve']);
  t.is(m.WorkingDir, '/srv');
  t.deepEqual(m.Labels, { a: 'image', b: 'image' });
  t.deepEqual(m.ExposedPorts, { '80/tcp': {} });
  t.deepEqual(m.Volumes, { '/data': {} });
  t.is(m.StopSignal, 'SIGQUIT');
  t.deepEqual(m.Healthcheck, image.Healthcheck);
});

test('user values win; Env merges by key, Labels by key, ports and volumes are unions', (t) => {
  const m = mergeImageConfig(image, {
    User: '1000', Env: ['LANG=de_DE', 'X=1'], Labels: { b: 'user' }, ExposedPorts: { '443/tcp': {} },
    Volumes: { '/logs': {} }, WorkingDir: '/w', StopSignal: 'SIGTERM',
  });
  t.is(m.User, '1000');
  t.deepEqual(m.Env, ['LANG=de_DE', 'X=1', 'PATH=/image/bin']);
  t.deepEqual(m.Labels, { a: 'image', b: 'user' });
  t.deepEqual(Object.keys(m.ExposedPorts!).sort(), ['443/tcp', '80/tcp']);
  t.deepEqual(Object.keys(m.Volumes!).sort(), ['/data', '/logs']);
  t.is(m.WorkingDir, '/w');
  t.is(m.StopSignal, 'SIGTERM');
});

test('Cmd given: image Entrypoint kept, image Cmd replaced', (t) => {
  const m = mergeImageConfig(image, { Cmd: ['sh'] });
  t.deepEqual(m.Entrypoint, ['/entry.sh']);
  t.deepEqual(m.Cmd, ['sh']);
});

test('Entrypoint given without Cmd: the image Cmd is dropped', (t) => {
  const m = mergeImageConfig(image, { Entrypoint: ['/bin/echo'] });
  t.deepEqual(m.Entrypoint, ['/bin/echo']);
  t.true(m.Cmd == null || m.Cmd.length === 0);
});

test('Entrypoint and Cmd given: both the user\'s', (t) => {
  const m = mergeImageConfig(image, { Entrypoint: ['/bin/echo'], Cmd: ['hi'] });
  t.deepEqual([m.Entrypoint, m.Cmd], [['/bin/echo'], ['hi']]);
});

test('Entrypoint [""] resets the entrypoint; with Cmd it runs Cmd alone', (t) => {
  const m = mergeImageConfig(image, { Entrypoint: [''], Cmd: ['ls'] });
  t.true(m.Entrypoint == null);
  t.deepEqual(m.Cmd, ['ls']);
  const err = t.throws(() => mergeImageConfig(image, { Entrypoint: [''] }), { instanceOf: InvalidParameterError });
  t.is(err?.message, 'no command specified');
});

test('no command anywhere is an InvalidParameterError', (t) => {
  t.throws(() => mergeImageConfig({ Env: ['A=1'] }, {}), { instanceOf: InvalidParameterError, message: 'no command specified' });
});

test('Healthcheck fields merge individually', (t) => {
  const m = mergeImageConfig(image, { Healthcheck: { Timeout: 3e9 } });
  t.deepEqual(m.Healthcheck, { Test: ['CMD', 'true'], Interval: 5e9, Timeout: 3e9, StartPeriod: undefined, StartInterval: undefined, Retries: 2 });
});

test('the inputs are not mutated', (t) => {
  const create = { Env: ['A=1'], Labels: { x: '1' } };
  const img = structuredClone(image);
  mergeImageConfig(img, create);
  t.deepEqual(create, { Env: ['A=1'], Labels: { x: '1' } });
  t.deepEqual(img, image);
});
