// The hijack wire as the stock CLI drives it: `docker exec -i` sends POST /exec/{id}/start with
// `Upgrade: tcp` and a JSON body, then streams stdin and reads the multiplexed stdout/stderr.
// The handlers here stand in for the exec service so only the server's part is under test.
import test from 'ava';
import { spawn } from 'node:child_process';
import { json, hijacked, type HandlerTable } from '../routes/types.js';
import { startTestServer, type TestServer } from './test-server.js';

const frame = (stream: number, data: Buffer): Buffer => {
  const h = Buffer.alloc(8);
  h[0] = stream;
  h.writeUInt32BE(data.length, 4);
  return Buffer.concat([h, data]);
};

const seen: { startBody?: unknown; contentType?: string } = {};
const handlers: HandlerTable = {
  ContainerInspect: () => json({ Id: 'c1', Name: '/c1', State: { Status: 'running', Running: true, Paused: false, Restarting: false }, Config: { Tty: false, OpenStdin: false } }),
  ContainerExec: () => json({ Id: 'e1' }, 201),
  ExecStart: async (req) => {
    seen.startBody = req.body;
    seen.contentType = req.wantsUpgrade ? 'upgrade' : 'plain';
    const sock = await req.hijack('application/vnd.docker.multiplexed-stream');
    sock.on('data', (d: Buffer) => sock.write(frame(1, Buffer.from(d.toString().toUpperCase()))));
    sock.on('end', () => { sock.write(frame(2, Buffer.from('done\n'))); sock.end(); });
    sock.resume(); // paused when the body came after the head (see ApiRequest.hijack)
    return hijacked();
  },
  ExecInspect: () => json({ ID: 'e1', Running: false, ExitCode: 3, ProcessConfig: { tty: false, entrypoint: 'cat', arguments: [] }, OpenStdin: true, OpenStdout: true, OpenStderr: true, ContainerID: 'c1', Pid: 0 }),
};

let s: TestServer;
test.before(async () => { s = await startTestServer(handlers); });
test.after.always(async () => { await s?.close(); });

test('docker exec -i streams stdin and multiplexed output through an upgraded connection', async (t) => {
  const r = await new Promise<{ code: number | null; out: string; err: string }>((resolve) => {
    const p = spawn('docker', ['exec', '-i', 'c1', 'cat'], { env: { ...process.env, DOCKER_HOST: `unix://${s.socket}` } });
    let out = '', err = '';
    p.stdout.on('data', (b) => { out += b; });
    p.stderr.on('data', (b) => { err += b; });
    p.stdin.end('hello berth\n');
    const timer = setTimeout(() => p.kill('SIGKILL'), 15_000);
    p.on('close', (code) => { clearTimeout(timer); resolve({ code, out, err }); });
  });
  t.is(r.out, 'HELLO BERTH\n', r.err);
  t.is(r.err, 'done\n');
  t.is(r.code, 3, 'exit code from ExecInspect');
  t.is(seen.contentType, 'upgrade');
  t.like(seen.startBody as object, { Detach: false, Tty: false });
});
