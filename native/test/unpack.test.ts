// berth-unpack on its own: the one-shot mode (stdin) for the gzip and tar edge cases, and the
// server mode for who may use it and what a malformed request gets. The daemon's side of it
// (native-unpack.ts) is tested with the other unpackers in src/store/unpack.test.ts.
import test from 'ava';
import { spawn, spawnSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, readdir, rm } from 'node:fs/promises';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { gzipSync } from 'node:zlib';
import { packTar } from '../../compat-tests/hostile-tars.js';

const REPO = resolve(dirname(fileURLToPath(import.meta.url)), '../../..');
const UNPACK = join(REPO, 'native/build/berth-unpack');
const sha = (b: Buffer): string => `sha256:${createHash('sha256').update(b).digest('hex')}`;

const ntest = existsSync(UNPACK) ? test : test.skip;
if (!existsSync(UNPACK)) test('berth-unpack tests skipped', (t) => { t.log(`skipped: ${UNPACK} is not built (make -C native)`); t.pass(); });

async function sandbox(t: any): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'berth-unpack-native-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

/** One-shot run on `input`: exit code, stdout, stderr, and the files made. */
async function once(t: any, input: Buffer, keep = true) {
  const dir = await sandbox(t);
  await mkdir(join(dir, 'diff'));
  const r = spawnSync(UNPACK, [join(dir, 'diff'), join(dir, 'ingest'), ...(keep ? ['--keep-input'] : [])], { input });
  return { code: r.status, out: r.stdout.toString(), err: r.stderr.toString().trim(), files: await readdir(join(dir, 'diff')), ingest: await readFile(join(dir, 'ingest')).catch(() => undefined) };
}

const tarOf = (names: string[]) => packTar(names.map((name) => ({ header: { name }, data: `${name}\n` })));

ntest('concatenated gzip members are one stream, as Go reads them; the digests are of the whole', async (t) => {
  const tar = await tarOf(['a', 'b']);
  const gz = Buffer.concat([gzipSync(tar.subarray(0, 700)), gzipSync(tar.subarray(700))]);
  const r = await once(t, gz);
  t.is(r.code, 0, r.err);
  t.deepEqual(JSON.parse(r.out), { diffId: sha(tar), size: 4, inputDigest: sha(gz), inputSize: gz.length });
  t.deepEqual(r.files.sort(), ['a', 'b']);
  t.true(r.ingest!.equals(gz));
  const plain = await once(t, gz, false);
  t.true(plain.ingest!.equals(tar), 'without --keep-input the ingest file is the tar');
});

ntest('zstd layers (OCI tar+zstd), in one frame or several, are decompressed; bytes after the last frame are refused', async (t) => {
  const tar = await tarOf(['a', 'b']);
  const zst = spawnSync('zstd', ['-q', '-c'], { input: tar });
  t.is(zst.status, 0, 'the zstd tool (scripts/setup installs it)');
  const frames = Buffer.concat([spawnSync('zstd', ['-q', '-c'], { input: tar.subarray(0, 700) }).stdout, spawnSync('zstd', ['-q', '-c'], { input: tar.subarray(700) }).stdout]);
  for (const [name, input] of [['one frame', zst.stdout], ['two frames', frames]] as const) {
    const r = await once(t, input);
    t.is(r.code, 0, `${name}: ${r.err}`);
    t.deepEqual(JSON.parse(r.out), { diffId: sha(tar), size: 4, inputDigest: sha(input), inputSize: input.length }, name);
    t.deepEqual(r.files.sort(), ['a', 'b'], name);
  }
  const cut = await once(t, zst.stdout.subarray(0, zst.stdout.length - 5));
  t.is(cut.code, 3, cut.err);
  const trailing = await once(t, Buffer.concat([zst.stdout, Buffer.from('trailing bytes')]));
  t.is(trailing.code, 3);
  t.regex(trailing.err, /zstd: /);
});

ntest('bytes after the last gzip member, a cut stream and garbage are refused with the exit code for each', async (t) => {
  const tar = await tarOf(['a']);
  const gz = gzipSync(tar);
  const cases: Array<[string, Buffer, number, RegExp]> = [
    ['garbage after the gzip stream', Buffer.concat([gz, Buffer.from('trailing')]), 3, /gzip: invalid header/],
    ['zstd that is not', Buffer.concat([Buffer.from([0x28, 0xb5, 0x2f, 0xfd]), Buffer.alloc(64, 0xff)]), 3, /zstd: |unexpected EOF/],
    ['gzip cut short', gz.subarray(0, gz.length - 10), 3, /unexpected EOF/],
    ['tar cut short', tar.subarray(0, 600), 3, /unexpected EOF/],
    ['not a tar', randomBytes(4096), 3, /invalid tar/],
  ];
  for (const [name, input, code, message] of cases) {
    const r = await once(t, input);
    t.is(r.code, code, `${name}: ${r.err}`);
    t.regex(r.err, message, name);
  }
});

ntest('no bytes at all is an empty layer; a tar of zero blocks too', async (t) => {
  const empty = await once(t, Buffer.alloc(0));
  t.is(empty.code, 0, empty.err);
  t.is(JSON.parse(empty.out).diffId, sha(Buffer.alloc(0)));
  const zeros = await once(t, Buffer.alloc(1024));
  t.is(zeros.code, 0, zeros.err);
  t.deepEqual(zeros.files, []);
});

/** A server on a fresh name; stopped (its stdin closed) at the end of the test. */
async function server(t: any): Promise<string> {
  const name = `berth-unpack-test-${randomBytes(6).toString('hex')}`;
  const p = spawn(UNPACK, ['--serve', name], { stdio: ['pipe', 'pipe', 'inherit'] });
  t.teardown(() => new Promise<void>((r) => { p.once('exit', () => r()); p.stdin.end(); }));
  await new Promise<void>((resolve, reject) => { p.stdout.once('data', () => resolve()); p.once('exit', (c) => reject(new Error(`server ended: ${c}`))); });
  return name;
}

/** Sends raw bytes as a job's whole request and returns what the server answers. */
function ask(name: string, bytes: Buffer): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = connect({ path: `\0${name}` });
    let out = '';
    s.setEncoding('utf8');
    s.on('data', (c: string) => { out += c; });
    s.on('error', reject);
    s.on('close', () => resolve(out));
    s.end(bytes);
  });
}

const request = (fields: string[]): Buffer => {
  const body = Buffer.from(fields.join('\0'));
  const len = Buffer.alloc(4);
  len.writeUInt32LE(body.length);
  return Buffer.concat([len, body]);
};

ntest('server: a job per connection; a malformed request is answered as such', async (t) => {
  const name = await server(t);
  const dir = await sandbox(t);
  const tar = await tarOf(['x']);
  const answers = await Promise.all([1, 2].map(async (i) => {
    await mkdir(join(dir, `d${i}`));
    return ask(name, Buffer.concat([request(['1', join(dir, `d${i}`), join(dir, `i${i}`)]), gzipSync(tar)]));
  }));
  for (const a of answers) t.regex(a, /^0 \{"diffId":"sha256:[0-9a-f]{64}"/);
  t.is(await ask(name, request(['2', join(dir, 'd1'), join(dir, 'i3')])), '1 bad request\n');
  t.is(await ask(name, request(['1', join(dir, 'd1')])), '1 bad request\n');
  t.is(await ask(name, Buffer.from([0xff, 0xff, 0xff, 0x7f])), '1 bad request\n', 'a request longer than the limit');
  t.regex(await ask(name, Buffer.concat([request(['1', join(dir, 'no-such-dir'), join(dir, 'i4')]), gzipSync(tar)])), /^1 open .*no-such-dir: No such file or directory\n$/);
});

ntest('server: only the process that started it is served, not another of the same or another uid', async (t) => {
  const name = await server(t);
  // a request that, served, would get an answer ("create /: File exists")
  const script = `const s=require('net').connect({path:'\\0${name}'});let o='';s.on('data',c=>o+=c);s.on('error',()=>{});s.on('close',()=>{process.stdout.write(JSON.stringify(o))});s.end(Buffer.from([5,0,0,0,49,0,47,0,47]));`;
  t.is(await ask(name, Buffer.from([5, 0, 0, 0, 49, 0, 47, 0, 47])), '1 create /: File exists\n', 'the process that started it is answered');
  const same = spawnSync(process.execPath, ['-e', script], { encoding: 'utf8' });
  t.is(same.stdout, '""', 'another process of the same uid: closed without an answer');
  if (process.getuid?.() !== 0) { t.log('another uid: skipped, needs root to switch users; CI runs as root'); return; }
  const other = spawnSync('setpriv', ['--reuid=65534', '--regid=65534', '--clear-groups', process.execPath, '-e', script], { encoding: 'utf8' });
  t.is(other.status, 0, other.stderr);
  t.is(other.stdout, '""', 'another uid: closed without an answer');
});
