// Child process for records.crash.test: rewrites a few records in a loop until it is killed,
// printing "<key> <gen>" after each put has returned (i.e. is durable).
import { createHash } from 'node:crypto';
import { RecordStore } from './records.js';

interface CrashRecord { key: string; gen: number; payload: string; sum: string }

const sumOf = (payload: string): string => createHash('sha256').update(payload).digest('hex');

const dir = process.argv[2];
const store = new RecordStore<CrashRecord>(dir);
await store.load();
const gens = new Map<string, number>();
for (const [k, v] of store.entries()) gens.set(k, v.gen);
for (let i = 0; ; i++) {
  const key = `rec${i % 4}`;
  const gen = (gens.get(key) ?? 0) + 1;
  // Sizes vary so a torn write would show as a wrong length or checksum.
  const payload = `${key}:${gen}:`.padEnd(100 + ((gen * 7919) % 60_000), String.fromCharCode(97 + (gen % 26)));
  await store.put(key, { key, gen, payload, sum: sumOf(payload) });
  gens.set(key, gen);
  process.stdout.write(`${key} ${gen}\n`);
}
