// A directory of JSON records, one file per key, each written atomically.
// The in-memory map is rebuilt from disk at start (load), so nothing else is trusted across a crash.
import { readdir, readFile, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { ensureDir, fsyncDir, isTempName, writeFileAtomic } from './atomic.js';

const KEY_RE = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,254}$/;

export class RecordStore<T> {
  private readonly items = new Map<string, T>();

  constructor(readonly dir: string) {}

  /** Reads every record; removes temp files a crash left behind; skips (and reports) unreadable ones. */
  async load(onBad?: (key: string, err: unknown) => void): Promise<Map<string, T>> {
    await ensureDir(this.dir);
    this.items.clear();
    for (const name of await readdir(this.dir)) {
      if (isTempName(name)) { await unlink(join(this.dir, name)).catch(() => {}); continue; }
      if (!name.endsWith('.json')) continue;
      const key = name.slice(0, -5);
      try {
        this.items.set(key, JSON.parse(await readFile(join(this.dir, name), 'utf8')) as T);
      } catch (err) {
        onBad?.(key, err);
      }
    }
    return this.items;
  }

  get(key: string): T | undefined { return this.items.get(key); }
  has(key: string): boolean { return this.items.has(key); }
  values(): IterableIterator<T> { return this.items.values(); }
  entries(): IterableIterator<[string, T]> { return this.items.entries(); }
  get size(): number { return this.items.size; }

  async put(key: string, value: T): Promise<void> {
    if (!KEY_RE.test(key)) throw new Error(`invalid record key: ${key}`);
    await writeFileAtomic(join(this.dir, `${key}.json`), JSON.stringify(value));
    this.items.set(key, value);
  }

  async delete(key: string): Promise<void> {
    if (!KEY_RE.test(key)) throw new Error(`invalid record key: ${key}`);
    await unlink(join(this.dir, `${key}.json`)).catch((err) => { if (err.code !== 'ENOENT') throw err; });
    await fsyncDir(this.dir);
    this.items.delete(key);
  }
}
