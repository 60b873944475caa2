// Crash safety of RecordStore: a writer rewriting records in a loop is SIGKILLed at random
// moments, many times over the same directory. After every kill each record on disk must parse,
// be intact (checksum), and be the last acknowledged version or the one being written.
import test from 'ava';
import { spawn } from 'node:child_process';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { RecordStore } from './records.js';
import { createHash } from 'node:crypto';

/** Shape written by records-crash-writer.js. */
interface CrashRecord { key: string; gen: number; payload: string; sum: string }
const sumOf = (payload: string): string => createHash('sha256').update(payload).digest('hex');

const WRITER = fileURLToPath(new URL('./records-crash-writer.js', import.meta.url));
const ROUNDS = 50;

function runAndKill(dir: string, afterMs: number): Promise<Map<string, number>> {
  return new Promise((resolve) => {
    const acked = new Map<string, number>();
    const p = spawn(process.execPath, [WRITER, dir], { stdio: ['ignore', 'pipe', 'inherit'] });
    let buf = '';
    p.stdout.on('data', (d) => {
      buf += d;
      const lines = buf.split('\n');
      buf = lines.pop()!;
      for (const l of lines) { const [k, g] = l.split(' '); acked.set(k, Number(g)); }
    });
    let started = false;
    const kill = (): void => { if (!started) { started = true; setTimeout(() => p.kill('SIGKILL'), afterMs); } };
    // Count from the first acknowledged write, so the kill lands inside the write loop.
    p.stdout.once('data', kill);
    setTimeout(kill, 3000);
    p.on('close', () => resolve(acked));
  });
}

test('records survive SIGKILL at random points: every record parses and is old or new', async (t) => {
  const dir = await mkdtemp('/tmp/berth-crash-');
  try {
    const last = new Map<string, number>();
    let writes = 0;
    for (let round = 0; round < ROUNDS; round++) {
      const acked = await runAndKill(dir, Math.floor(Math.random() * 40));
      for (const [k, g] of acked) { last.set(k, g); writes++; }
      const bad: string[] = [];
      const store = new RecordStore<CrashRecord>(dir);
      const loaded = await store.load((key, err) => bad.push(`${key}: ${err}`));
      t.deepEqual(bad, [], `round ${round}: unreadable records`);
      for (const [key, rec] of loaded) {
        t.is(rec.key, key);
        t.is(rec.sum, sumOf(rec.payload), `round ${round}: ${key} torn`);
        const ackedGen = last.get(key) ?? 0;
        // Old (the last acknowledged) or new (the one in flight when killed).
        t.true(rec.gen === ackedGen || rec.gen === ackedGen + 1, `round ${round}: ${key} gen ${rec.gen}, acknowledged ${ackedGen}`);
        last.set(key, rec.gen);
      }
      for (const key of last.keys()) t.true(loaded.has(key), `round ${round}: ${key} vanished`);
      t.deepEqual((await readdir(dir)).filter((n) => n.endsWith('.tmp')), [], 'load() removes temp files');
    }
    t.log(`${ROUNDS} kills, ${writes} acknowledged writes`);
    t.true(writes > ROUNDS, 'the writer got to write between kills');
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('RecordStore: put/get/delete, bad keys refused, a corrupt file is reported not loaded', async (t) => {
  const dir = await mkdtemp('/tmp/berth-records-');
  try {
    const s = new RecordStore<{ v: number }>(dir);
    await s.load();
    await s.put('a', { v: 1 });
    await s.put('a', { v: 2 });
    await t.throwsAsync(s.put('../escape', { v: 0 }), { message: /invalid record key/ });
    await t.throwsAsync(s.put('', { v: 0 }));
    t.deepEqual(JSON.parse(await readFile(join(dir, 'a.json'), 'utf8')), { v: 2 });
    const { writeFile } = await import('node:fs/promises');
    await writeFile(join(dir, 'broken.json'), '{"v": ');
    await writeFile(join(dir, '.a.json.123456.tmp'), 'partial');
    const again = new RecordStore<{ v: number }>(dir);
    const bad: string[] = [];
    await again.load((k) => bad.push(k));
    t.deepEqual(bad, ['broken']);
    t.deepEqual(again.get('a'), { v: 2 });
    t.false((await readdir(dir)).some((n) => n.endsWith('.tmp')));
    await again.delete('a');
    t.false(again.has('a'));
    t.false((await readdir(dir)).includes('a.json'));
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
