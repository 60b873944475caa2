import test from 'ava';
import { mkdtemp, readdir, readFile, lstat, readlink, rm, mkdir, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { gzipSync } from 'node:zlib';
import tar from 'tar-stream';
import { extractLayer } from './tar-extract.js';

type E = { header: Partial<tar.Header> & { name: string }; data?: string };
function makeTar(entries: E[]): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const p = tar.pack();
    const chunks: Buffer[] = [];
    p.on("data", (c: any) => { chunks.push(c); }); p.on('end', () => resolve(Buffer.concat(chunks))); p.on('error', reject);
    for (const e of entries) p.entry(e.header as tar.Header, e.data ?? '');
    p.finalize();
  });
}

async function sandbox(t: any): Promise<{ root: string; dest: string; outside: string }> {
  const root = await mkdtemp(join(tmpdir(), 'berth-tar-'));
  t.teardown(() => rm(root, { recursive: true, force: true }));
  const dest = join(root, 'layer', 'diff');
  const outside = join(root, 'outside');
  await mkdir(dest, { recursive: true }); await mkdir(outside);
  return { root, dest, outside };
}

test('extracts files, dirs, symlinks, hard links with modes and mtimes; gzip detected', async (t) => {
  const { dest } = await sandbox(t);
  const mtime = new Date('2020-02-02T00:00:00Z');
  const buf = await makeTar([
    { header: { name: 'etc/', type: 'directory', mode: 0o750, mtime } },
    { header: { name: 'etc/passwd', mode: 0o640, uid: 12, gid: 34, mtime }, data: 'root\n' },
    { header: { name: 'etc/link', type: 'symlink', linkname: '/etc/passwd' } },
    { header: { name: 'etc/hard', type: 'link', linkname: 'etc/passwd' } },
    { header: { name: 'tmp/', type: 'directory', mode: 0o1777 } },
  ]);
  const r = await extractLayer(Readable.from([gzipSync(buf)]), dest);
  t.regex(r.diffId, /^sha256:[a-f0-9]{64}$/);
  const st = await lstat(join(dest, 'etc/passwd'));
  t.is(st.mode & 0o7777, 0o640); t.is(st.uid, 12); t.is(st.gid, 34); t.is(st.mtime.getTime(), mtime.getTime());
  t.is(st.nlink, 2);
  t.is(await readlink(join(dest, 'etc/link')), '/etc/passwd');
  t.is((await lstat(join(dest, 'etc'))).mode & 0o7777, 0o750);
  t.is((await lstat(join(dest, 'etc'))).mtime.getTime(), mtime.getTime());
  t.is((await lstat(join(dest, 'tmp'))).mode & 0o7777, 0o1777);
  t.is(r.size, 5);
});

test('whiteouts become overlay whiteout devices', async (t) => {
  const { dest } = await sandbox(t);
  const buf = await makeTar([{ header: { name: 'a/.wh.gone', mode: 0o644 } }]);
  await extractLayer(Readable.from([buf]), dest);
  const st = await lstat(join(dest, 'a/gone'));
  t.true(st.isCharacterDevice()); t.is(st.rdev, 0);
});

const hostile: Array<[string, E[]]> = [
  ['dot-dot path', [{ header: { name: '../outside/evil' }, data: 'x' }]],
  ['nested dot-dot', [{ header: { name: 'a/../../outside/evil' }, data: 'x' }]],
  ['symlink then file through it', [
    { header: { name: 'lnk', type: 'symlink', linkname: '../../outside' } },
    { header: { name: 'lnk/evil' }, data: 'x' }]],
  ['absolute symlink then file through it', [
    { header: { name: 'lnk', type: 'symlink', linkname: '/' } },
    { header: { name: 'lnk/tmp/evil-berth-test' }, data: 'x' }]],
  ['hard link to outside', [{ header: { name: 'h', type: 'link', linkname: '../outside/secret' } }]],
  ['hard link to absolute host path', [{ header: { name: 'h', type: 'link', linkname: '/etc/hostname-nonexistent-berth' } }]],
];

for (const [name, entries] of hostile) {
  test(`refuses hostile tar: ${name}`, async (t) => {
    const { dest, outside } = await sandbox(t);
    await writeFile(join(outside, 'secret'), 'secret');
    const buf = await makeTar(entries);
    await t.throwsAsync(extractLayer(Readable.from([buf]), dest));
    t.deepEqual((await readdir(outside)).sort(), ['secret']);
    t.is(await readFile(join(outside, 'secret'), 'utf8'), 'secret');
    await t.throwsAsync(lstat('/tmp/evil-berth-test'));
  });
}

test('absolute entry names are contained in the layer', async (t) => {
  const { dest, outside } = await sandbox(t);
  await extractLayer(Readable.from([await makeTar([{ header: { name: '/abs/file' }, data: 'x' }])]), dest);
  t.is(await readFile(join(dest, 'abs/file'), 'utf8'), 'x');
  t.deepEqual(await readdir(outside), []);
});

test('huge pax header is refused', async (t) => {
  const { dest } = await sandbox(t);
  // a pax header claiming 1 GiB: the parser must refuse before buffering it
  const hdr = Buffer.alloc(512);
  hdr.write('././@PaxHeader', 0);
  hdr.write('0000644\0', 100); hdr.write('0000000\0', 108); hdr.write('0000000\0', 116);
  hdr.write((1024 ** 3).toString(8).padStart(11, '0') + '\0', 124);
  hdr.write('00000000000\0', 136); hdr.write('        ', 148); hdr.write('x', 156); hdr.write('ustar\x0000', 257);
  let sum = 0; for (const b of hdr) sum += b;
  hdr.write(sum.toString(8).padStart(6, '0') + '\0 ', 148);
  await t.throwsAsync(extractLayer(Readable.from([Buffer.concat([hdr, Buffer.alloc(4096)])]), dest), { message: /Header exceeds max size/ });
});
