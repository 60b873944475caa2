// Container events, prefix lookup, logs --since, and an interactive shell through the stock CLI.
import test from 'ava';
import { spawn } from 'node:child_process';
import type { Daemon } from './harness.js';
import { removeAllAndStop, startDaemonWithBusybox } from './images-fixture.js';

let d: Daemon;

test.before(async () => { d = await startDaemonWithBusybox(); });
test.after.always(() => removeAllAndStop(d));

test.serial('a container lifecycle publishes the Engine events in order', async (t) => {
  const since = Math.floor(Date.now() / 1000) - 1;
  await d.docker(['run', '--name', 'evented', 'busybox', 'sh', '-c', 'exit 2']);
  await d.docker(['rename', 'evented', 'evented2']);
  await d.docker(['rm', 'evented2']);
  const until = Math.ceil(Date.now() / 1000) + 1;
  const r = await d.docker(['events', '--since', String(since), '--until', String(until), '--filter', 'type=container',
    '--format', '{{.Action}} {{.Actor.Attributes.name}} {{.Actor.Attributes.image}} {{.Actor.Attributes.exitCode}}']);
  t.is(r.code, 0, r.stderr);
  const lines = r.stdout.trim().split('\n').filter((l) => /evented/.test(l));
  t.deepEqual(lines.map((l) => l.split(' ')[0]), ['create', 'attach', 'start', 'die', 'rename', 'destroy']);
  t.regex(lines[3]!, /^die evented busybox 2$/);
  const json = await d.docker(['events', '--since', String(since), '--until', String(until), '--filter', 'event=destroy', '--format', '{{json .}}']);
  const ev = JSON.parse(json.stdout.trim().split('\n').pop()!);
  t.is(ev.Type, 'container');
  t.is(ev.scope, 'local');
  t.regex(String(ev.timeNano), /^\d{19}$/);
  t.is(ev.Actor.Attributes.name, 'evented2');
});

test('exec events carry the command and exit code', async (t) => {
  await d.docker(['run', '-d', '--name', 'exec-ev', 'busybox', 'sleep', '600']);
  const since = Math.floor(Date.now() / 1000) - 1;
  await d.docker(['exec', 'exec-ev', 'sh', '-c', 'exit 3']);
  const until = Math.ceil(Date.now() / 1000) + 1;
  const r = await d.docker(['events', '--since', String(since), '--until', String(until), '--filter', 'container=exec-ev',
    '--format', '{{.Action}}|{{.Actor.Attributes.exitCode}}']);
  // second-granular --since also catches the container's create/start: keep the exec events
  t.deepEqual(r.stdout.trim().split('\n').filter((l) => l.startsWith('exec')), ['exec_create: sh -c exit 3|<no value>', 'exec_start: sh -c exit 3|<no value>', 'exec_die|3']);
  await d.docker(['rm', '-f', 'exec-ev']);
});

test('an ambiguous ID prefix is refused with the Engine message', async (t) => {
  // Create containers until two IDs share a first hex digit (at most 17 by pigeonhole).
  const ids: string[] = [];
  let shared = '';
  while (!shared) {
    const c = await d.docker(['create', '--label', 'ambig=1', 'busybox', 'true']);
    const id = c.stdout.trim();
    if (ids.some((x) => x[0] === id[0])) shared = id[0]!;
    ids.push(id);
  }
  const r = await d.docker(['rm', shared]);
  t.not(r.code, 0);
  t.regex(r.stderr, new RegExp(`multiple IDs found with provided prefix: ${shared}`));
  t.is((await d.docker(['rm', ...ids])).code, 0);
});

test('logs --since and --until select by time', async (t) => {
  await d.docker(['run', '-d', '--name', 'timed', 'busybox', 'sh', '-c', 'echo early; sleep 1.5; echo late; sleep 600']);
  await new Promise((r) => setTimeout(r, 2500));
  const all = await d.docker(['logs', '-t', 'timed']);
  const lines = all.stdout.trim().split('\n');
  t.is(lines.length, 2);
  const lateAt = lines[1]!.split(' ')[0]!;
  const since = await d.docker(['logs', '--since', lateAt, 'timed']);
  t.is(since.stdout, 'late\n');
  // both bounds are inclusive, as in the Engine's json-file reader
  const until = await d.docker(['logs', '--until', lines[0]!.split(' ')[0]!, 'timed']);
  t.is(until.stdout, 'early\n');
  await d.docker(['rm', '-f', 'timed']);
});

test('docker run -it: line editing, Ctrl-C, window size, exit 3', async (t) => {
  // A pty for the CLI (python's pty module) so it puts the terminal in raw mode as for a person.
  const script = `
import os, pty, sys, time, fcntl, termios, struct, select
pid, fd = pty.fork()
if pid == 0:
    os.execvp('docker', ['docker', 'run', '-it', '--rm', 'busybox', 'sh'])
fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack('HHHH', 30, 100, 0, 0))
out = b''
def pump(secs):
    global out
    end = time.time() + secs
    while time.time() < end:
        r, _, _ = select.select([fd], [], [], 0.05)
        if r:
            try: out += os.read(fd, 4096)
            except OSError: return
def send(b, wait=0.6):
    os.write(fd, b); pump(wait)
pump(1.5)
send(b'stty size\\r')
send(b'echo abX\\x7fc\\r')          # backspace edits the line: prints abc
send(b'sleep 30\\r', 0.4); send(b'\\x03')   # Ctrl-C interrupts sleep
send(b'echo after-int\\r')
fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack('HHHH', 40, 120, 0, 0)); os.kill(pid, 28); pump(0.6)
send(b'stty size\\r')
send(b'exit 3\\r', 1.5)
_, status = os.waitpid(pid, 0)
sys.stdout.write(out.decode('utf-8', 'replace'))
sys.stdout.write('\\nEXIT=%d\\n' % os.waitstatus_to_exitcode(status))
`;
  const r = await new Promise<string>((resolve) => {
    const p = spawn('python3', ['-c', script], { env: { ...process.env, DOCKER_HOST: d.host, TERM: 'xterm' } });
    let out = '';
    p.stdout.on('data', (b) => { out += b; });
    p.stderr.on('data', (b) => { out += b; });
    p.on('close', () => resolve(out));
  });
  t.log(r);
  t.regex(r, /\r\n30 100\r\n/);
  t.regex(r, /\r\nabc\r\n/);
  t.regex(r, /\r\nafter-int\r\n/);
  t.regex(r, /\r\n40 120\r\n/);
  t.regex(r, /EXIT=3/);
});

test('sizes: ps -s and inspect --size report what the container wrote', async (t) => {
  await d.docker(['run', '--name', 'writes', 'busybox', 'sh', '-c', 'head -c 100000 /dev/zero > /big']);
  const ins = JSON.parse((await d.docker(['container', 'inspect', '--size', 'writes'])).stdout)[0];
  t.true(ins.SizeRw >= 100000 && ins.SizeRw < 110000, String(ins.SizeRw));
  t.true(ins.SizeRootFs > ins.SizeRw);
  t.is(JSON.parse((await d.docker(['container', 'inspect', 'writes'])).stdout)[0].SizeRw, undefined);
  const ps = await d.docker(['ps', '-as', '--filter', 'name=^writes$', '--format', '{{.Size}}']);
  t.regex(ps.stdout, /^100kB \(virtual [\d.]+MB\)\n$/);
  await d.docker(['rm', 'writes']);
});
