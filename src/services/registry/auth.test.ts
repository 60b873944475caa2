import test from 'ava';
import { parseChallenge, parseRegistryAuth } from './auth.js';

test('X-Registry-Auth: base64url and standard, auth field, empty forms', (t) => {
  const json = JSON.stringify({ username: 'u', password: 'p?>', serveraddress: '127.0.0.1:5000' });
  const url = Buffer.from(json).toString('base64').replace(/\+/g, '-').replace(/\//g, '_');
  t.is(parseRegistryAuth(url).password, 'p?>');
  t.is(parseRegistryAuth(Buffer.from(json).toString('base64')).username, 'u');
  t.is(parseRegistryAuth(Buffer.from(JSON.stringify({ auth: Buffer.from('a:b:c').toString('base64') })).toString('base64')).password, 'b:c');
  t.deepEqual(parseRegistryAuth(''), {});
  t.deepEqual(parseRegistryAuth('e30='), {});
  t.throws(() => parseRegistryAuth(Buffer.from('not json').toString('base64')), { message: /X-Registry-Auth/ });
});

test('WWW-Authenticate challenges', (t) => {
  t.deepEqual(parseChallenge('Bearer realm="https://auth.example/token",service="registry",scope="repository:a/b:pull,push"'),
    { scheme: 'bearer', params: { realm: 'https://auth.example/token', service: 'registry', scope: 'repository:a/b:pull,push' } });
  t.deepEqual(parseChallenge('Basic realm="basic-realm"'), { scheme: 'basic', params: { realm: 'basic-realm' } });
  t.is(parseChallenge(undefined), null);
});
