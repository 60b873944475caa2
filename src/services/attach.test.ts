import test from 'ava';
import { DetachScanner, parseDetachKeys } from './attach.js';

test('detach keys parse like the Engine', (t) => {
  t.deepEqual([...parseDetachKeys(undefined)], [16, 17]);
  t.deepEqual([...parseDetachKeys('ctrl-a,x')], [1, 120]);
  t.throws(() => parseDetachKeys('ctrl-é'), { message: /Invalid detach keys/ });
  t.throws(() => parseDetachKeys('abc'), { message: /Invalid detach keys/ });
});

test('detach scanner forwards everything but a complete sequence', (t) => {
  const s = new DetachScanner(parseDetachKeys(undefined));
  t.deepEqual(s.push(Buffer.from('ab')), { forward: Buffer.from('ab'), detach: false });
  // a partial match is held back, then released when the next byte breaks it
  t.deepEqual(s.push(Buffer.from([16])), { forward: Buffer.alloc(0), detach: false });
  t.deepEqual(s.push(Buffer.from('c')), { forward: Buffer.from([16, 99]), detach: false });
  const r = s.push(Buffer.from([104, 16, 17, 105]));
  t.deepEqual(r, { forward: Buffer.from('h'), detach: true });
});
