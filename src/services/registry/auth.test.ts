import test from 'ava';
import { parseChallenge, parseRegistryAuth, scopeKey, tokenUrl } from './auth.js';

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

test('token requests: one scope parameter per scope; the cache key ignores order', (t) => {
  const u = tokenUrl('https://auth.invalid/token?x=1', 'reg', 'repository:b:pull,push repository:a:pull');
  t.deepEqual(u.searchParams.getAll('scope'), ['repository:b:pull,push', 'repository:a:pull']);
  t.is(u.searchParams.get('service'), 'reg');
  t.is(u.searchParams.get('x'), '1');
  t.false(tokenUrl('https://auth.invalid/token', undefined, '').searchParams.has('scope'));
  t.is(scopeKey('repository:b:pull,push repository:a:pull'), scopeKey(' repository:a:pull  repository:b:pull,push'));
  t.not(scopeKey('repository:b:pull,push'), scopeKey('repository:b:pull,push repository:a:pull'));
});
