import test from 'ava';
import { mkdtemp, mkdir, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { InvalidParameterError } from '../errors.js';
import { resolveInRoot, resolveUser } from './user.js';

const PASSWD = [
  'root:x:0:0:root:/root:/bin/sh',
  'daemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin',
  'app:x:1000:1000:App:/home/app:/bin/sh',
  '',
].join('\n');
const GROUP = [
  'root:x:0:',
  'daemon:x:1:',
  '# a comment',
  'app:x:1000:',
  'audio:x:29:app,daemon',
  'video:x:44:app',
  'wheel:x:10:root',
].join('\n');

async function rootfs(t: any, passwd = PASSWD, group = GROUP): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'berth-user-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  await mkdir(join(dir, 'etc'));
  await writeFile(join(dir, 'etc/passwd'), passwd);
  await writeFile(join(dir, 'etc/group'), group);
  return dir;
}

test('"" is root with root\'s home and supplementary groups', async (t) => {
  const r = await rootfs(t);
  t.deepEqual(await resolveUser(r, ''), { uid: 0, gid: 0, additionalGids: [0, 10], home: '/root' });
  t.deepEqual(await resolveUser(r, undefined), { uid: 0, gid: 0, additionalGids: [0, 10], home: '/root' });
});

test('a name gives its uid, primary gid and member groups', async (t) => {
  const r = await rootfs(t);
  t.deepEqual(await resolveUser(r, 'app'), { uid: 1000, gid: 1000, additionalGids: [1000, 29, 44], home: '/home/app' });
});

test('a numeric uid matches the passwd entry, or stands alone', async (t) => {
  const r = await rootfs(t);
  t.deepEqual(await resolveUser(r, '1'), { uid: 1, gid: 1, additionalGids: [1, 29], home: '/usr/sbin' });
  t.deepEqual(await resolveUser(r, '4242'), { uid: 4242, gid: 0, additionalGids: [0] });
});

test('name:group and uid:gid set the primary group and drop implicit supplementary groups', async (t) => {
  const r = await rootfs(t);
  t.deepEqual(await resolveUser(r, 'app:video'), { uid: 1000, gid: 44, additionalGids: [44], home: '/home/app' });
  t.deepEqual(await resolveUser(r, '1000:29'), { uid: 1000, gid: 29, additionalGids: [29], home: '/home/app' });
  t.deepEqual(await resolveUser(r, '5000:6000'), { uid: 5000, gid: 6000, additionalGids: [6000] });
});

test('unknown names fail with the Engine\'s messages', async (t) => {
  const r = await rootfs(t);
  const e1 = await t.throwsAsync(resolveUser(r, 'nobody2'), { instanceOf: InvalidParameterError });
  t.is(e1?.message, 'unable to find user nobody2: no matching entries in passwd file');
  const e2 = await t.throwsAsync(resolveUser(r, 'app:nogroup'), { instanceOf: InvalidParameterError });
  t.is(e2?.message, 'unable to find group nogroup: no matching entries in group file');
  const e3 = await t.throwsAsync(resolveUser(r, 'app', ['nosuch']), { instanceOf: InvalidParameterError });
  t.is(e3?.message, 'unable to find group nosuch: no matching entries in group file');
  await t.throwsAsync(resolveUser(r, '4294967296'), { instanceOf: InvalidParameterError, message: /uids and gids must be in range/ });
});

test('GroupAdd adds names and numbers after the user\'s groups, without duplicates', async (t) => {
  const r = await rootfs(t);
  t.deepEqual(await resolveUser(r, 'app', ['wheel', '777', '29']), { uid: 1000, gid: 1000, additionalGids: [1000, 29, 44, 10, 777], home: '/home/app' });
});

test('an image without /etc/passwd: numeric users work, names fail', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'berth-user-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  t.deepEqual(await resolveUser(dir, ''), { uid: 0, gid: 0, additionalGids: [0] });
  t.deepEqual(await resolveUser(dir, '1000:1000', ['5']), { uid: 1000, gid: 1000, additionalGids: [1000, 5] });
  await t.throwsAsync(resolveUser(dir, 'app'), { message: 'unable to find user app: no matching entries in passwd file' });
});

test('symlinks are resolved inside the rootfs, never to host files', async (t) => {
  const host = await mkdtemp(join(tmpdir(), 'berth-host-'));
  t.teardown(() => rm(host, { recursive: true, force: true }));
  await writeFile(join(host, 'passwd'), 'evil:x:0:0::/:/bin/sh\n');
  const r = await mkdtemp(join(tmpdir(), 'berth-user-'));
  t.teardown(() => rm(r, { recursive: true, force: true }));
  await mkdir(join(r, 'etc'));
  await mkdir(join(r, 'real'));
  await writeFile(join(r, 'real/passwd'), 'inside:x:7:7::/in:/bin/sh\n');
  // Absolute and ../ escapes that point at the host's file if followed naively.
  await symlink(join(host, 'passwd'), join(r, 'etc/passwd'));
  await symlink(`../../../../../../../..${host}`, join(r, 'etc/group'));
  await t.throwsAsync(resolveUser(r, 'evil'), { message: /unable to find user evil/ });
  t.is(await resolveInRoot(r, '/etc/passwd'), join(r, host, 'passwd'));
  t.is(await resolveInRoot(r, '/etc/group'), join(r, host));

  // A link within the rootfs is followed.
  await rm(join(r, 'etc/passwd'));
  await symlink('/real/passwd', join(r, 'etc/passwd'));
  t.deepEqual(await resolveUser(r, 'inside'), { uid: 7, gid: 7, additionalGids: [7], home: '/in' });
});

test('a symlink loop is an error, not a hang', async (t) => {
  const r = await mkdtemp(join(tmpdir(), 'berth-user-'));
  t.teardown(() => rm(r, { recursive: true, force: true }));
  await mkdir(join(r, 'etc'));
  await symlink('/etc/passwd', join(r, 'etc/passwd'));
  await t.throwsAsync(resolveUser(r, 'x'), { instanceOf: InvalidParameterError, message: /too many levels of symbolic links/ });
});
