// dockerode against berthd, the way applications use it: create/start/attach/wait/logs/exec
// with hijacked streams and the library's own demultiplexer.
import test from 'ava';
import Docker from 'dockerode';
import { PassThrough } from 'node:stream';
import type { Daemon } from '../harness.js';
import { removeAllAndStop, startDaemonWithBusybox } from '../images-fixture.js';

let d: Daemon;
let docker: any;

test.before(async () => {
  d = await startDaemonWithBusybox();
  docker = new Docker({ socketPath: d.socket });
});
test.after.always(() => removeAllAndStop(d));

function collect(): { stream: PassThrough; text: () => string } {
  const stream = new PassThrough();
  let buf = '';
  stream.on('data', (b) => { buf += b; });
  return { stream, text: () => buf };
}

test('hijacked attach with stdin: demultiplexed stdout and stderr, exit code from wait', async (t) => {
  const c = await docker.createContainer({
    Image: 'busybox', Cmd: ['sh', '-c', 'read line; echo "got $line"; echo bad >&2; exit 5'],
    OpenStdin: true, StdinOnce: true, AttachStdin: true, AttachStdout: true, AttachStderr: true,
  });
  const stream = await c.attach({ stream: true, stdin: true, stdout: true, stderr: true, hijack: true });
  const out = collect(); const err = collect();
  docker.modem.demuxStream(stream, out.stream, err.stream);
  const ended = new Promise((r) => stream.on('end', r));
  // wait before start needs next-exit: the default (not-running) is met at once by a created container
  const waited = c.wait({ condition: 'next-exit' });
  await c.start();
  stream.write('hello\n');
  const res = await waited;
  await ended;
  t.is(res.StatusCode, 5);
  t.is(out.text(), 'got hello\n');
  t.is(err.text(), 'bad\n');
  await c.remove();
});

test('attach with a TTY is a raw stream', async (t) => {
  const c = await docker.createContainer({ Image: 'busybox', Cmd: ['sh', '-c', 'echo raw; echo also >&2'], Tty: true, AttachStdout: true, AttachStderr: true });
  const stream = await c.attach({ stream: true, stdout: true, stderr: true });
  let text = '';
  stream.on('data', (b: Buffer) => { text += b; });
  const ended = new Promise((r) => stream.on('end', r));
  await c.start();
  t.is((await c.wait()).StatusCode, 0);
  await ended;
  t.is(text.replace(/\r/g, ''), 'raw\nalso\n'); // no 8-byte frame headers with a TTY
  await c.remove();
});

test('exec with hijacked stdin, demultiplexed output and inspect', async (t) => {
  const c = await docker.createContainer({ Image: 'busybox', Cmd: ['sleep', '600'] });
  await c.start();
  const exec = await c.exec({ Cmd: ['sh', '-c', 'cat; echo e >&2; exit 7'], AttachStdin: true, AttachStdout: true, AttachStderr: true, Env: ['X=1'] });
  const stream = await exec.start({ hijack: true, stdin: true });
  const out = collect(); const err = collect();
  docker.modem.demuxStream(stream, out.stream, err.stream);
  const ended = new Promise((r) => stream.on('end', r));
  stream.end('piped\n');
  await ended;
  t.is(out.text(), 'piped\n');
  t.is(err.text(), 'e\n');
  let info = await exec.inspect();
  for (let i = 0; i < 50 && info.Running; i++) { await new Promise((r) => setTimeout(r, 50)); info = await exec.inspect(); }
  t.is(info.ExitCode, 7);
  t.false(info.Running);
  t.is(info.ContainerID, c.id);
  await c.remove({ force: true });
});

test('logs follow streams new lines until the container exits', async (t) => {
  const c = await docker.createContainer({ Image: 'busybox', Cmd: ['sh', '-c', 'for i in 1 2 3; do echo line$i; sleep 0.2; done; echo done >&2'] });
  await c.start();
  const stream = await c.logs({ follow: true, stdout: true, stderr: true, timestamps: false });
  const out = collect(); const err = collect();
  docker.modem.demuxStream(stream, out.stream, err.stream);
  await new Promise((r) => stream.on('end', r));
  t.is(out.text(), 'line1\nline2\nline3\n');
  t.is(err.text(), 'done\n');
  // tail counts lines of both streams before the stream filter, as the Engine's json-file reader does
  const tail: Buffer = await c.logs({ stdout: true, stderr: true, tail: 2 });
  t.true(Buffer.isBuffer(tail));
  const frames: string[] = [];
  for (let off = 0; off < tail.length;) {
    const len = tail.readUInt32BE(off + 4);
    frames.push(`${tail[off]}:${tail.subarray(off + 8, off + 8 + len)}`);
    off += 8 + len;
  }
  t.deepEqual(frames, ['1:line3\n', '2:done\n']);
  await c.remove();
});

test('inspect, list with filters, and errors carry the Engine shape', async (t) => {
  const c = await docker.createContainer({ Image: 'busybox', name: 'dode-named', Labels: { app: 'x' }, Cmd: ['true'] });
  const info = await c.inspect();
  t.is(info.Name, '/dode-named');
  t.is(info.Config.Labels.app, 'x');
  t.is(info.State.Status, 'created');
  const list = await docker.listContainers({ all: true, filters: { label: ['app=x'] } });
  t.deepEqual(list.map((x: any) => x.Id), [c.id]);
  const e = await t.throwsAsync(docker.getContainer('no-such-one').inspect());
  t.is((e as any).statusCode, 404);
  t.regex((e as any).json.message, /No such container: no-such-one/);
  await c.remove();
});
