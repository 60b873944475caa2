import test from 'ava';
import { mkdtemp, writeFile, appendFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fixedNano, parseTimeArg, readLogs, timeToSeconds } from './logs.js';

const entry = (log: string, stream: string, time: string) => JSON.stringify({ log, stream, time }) + '\n';

async function collect(r: NodeJS.ReadableStream): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const c of r) parts.push(c as Buffer);
  return Buffer.concat(parts);
}

test('time helpers keep nanoseconds', (t) => {
  t.is(fixedNano('2026-11-22T11:00:00.1Z'), '2026-11-22T11:00:00.100000000Z');
  t.is(fixedNano('2026-11-22T11:00:00Z'), '2026-11-22T11:00:00.000000000Z');
  t.is(timeToSeconds('1970-01-01T00:00:01.5Z'), 1.5);
  t.is(parseTimeArg('1700000000.000000001'), 1700000000.000000001);
  t.is(parseTimeArg(''), 0);
});

test('logs: streams, tail, timestamps, since/until, multiplexing', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'berth-logs-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const path = join(dir, 'c-json.log');
  await writeFile(path, entry('one\n', 'stdout', '1970-01-01T00:00:10Z') + entry('two\n', 'stderr', '1970-01-01T00:00:20Z')
    + entry('three\n', 'stdout', '1970-01-01T00:00:30.5Z') + '{"torn');
  const base = { stdout: true, stderr: true, since: 0, until: 0, timestamps: false, tail: -1, follow: false, multiplex: false };
  t.is((await collect(readLogs(path, base, null))).toString(), 'one\ntwo\nthree\n');
  t.is((await collect(readLogs(path, { ...base, stderr: false }, null))).toString(), 'one\nthree\n');
  t.is((await collect(readLogs(path, { ...base, tail: 1 }, null))).toString(), 'three\n');
  t.is((await collect(readLogs(path, { ...base, tail: 0 }, null))).toString(), '');
  t.is((await collect(readLogs(path, { ...base, since: 15, until: 25 }, null))).toString(), 'two\n');
  t.is((await collect(readLogs(path, { ...base, tail: 1, timestamps: true }, null))).toString(),
    '1970-01-01T00:00:30.500000000Z three\n');
  const mux = await collect(readLogs(path, { ...base, tail: 2, multiplex: true }, null));
  t.deepEqual([...mux.subarray(0, 8)], [2, 0, 0, 0, 0, 0, 0, 4]);
  t.is(mux.subarray(8, 12).toString(), 'two\n');
  t.is(mux[12], 1);
});

test('logs: follow picks up appended lines until the container stops', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'berth-logs-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const path = join(dir, 'c-json.log');
  await writeFile(path, entry('a\n', 'stdout', '1970-01-01T00:00:10Z'));
  let stop!: () => void;
  const stopped = new Promise<void>((r) => { stop = r; });
  const out = collect(readLogs(path, { stdout: true, stderr: true, since: 0, until: 0, timestamps: false, tail: -1, follow: true, multiplex: false }, stopped));
  await new Promise((r) => setTimeout(r, 120));
  await appendFile(path, entry('b\n', 'stdout', '1970-01-01T00:00:11Z'));
  await new Promise((r) => setTimeout(r, 120));
  stop();
  t.is((await out).toString(), 'a\nb\n');
});
