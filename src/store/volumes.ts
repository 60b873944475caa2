// Volume store: volumes/<name>/_data holds the data, volumes/<name>/volume.json the record
// (written atomically, last). A directory without a record is a create that crashed: dropped at start.
import { readdir, readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { ensureDir, writeFileAtomic } from './atomic.js';

export interface VolumeRecord {
  Name: string;
  Driver: 'local';
  CreatedAt: string;
  Labels: Record<string, string>;
  /** Options of the local driver: type, device, o. */
  Options: Record<string, string>;
  /** Created for a container without a name (anonymous): removed with it by rm -v / --rm. */
  Anonymous: boolean;
}

export class VolumeStore {
  private readonly records = new Map<string, VolumeRecord>();
  constructor(readonly root: string) {}

  async load(): Promise<VolumeRecord[]> {
    await ensureDir(this.root, 0o701);
    this.records.clear();
    for (const name of await readdir(this.root)) {
      try {
        const rec = JSON.parse(await readFile(join(this.root, name, 'volume.json'), 'utf8')) as VolumeRecord;
        if (rec.Name !== name) throw new Error('name mismatch');
        this.records.set(name, rec);
      } catch {
        await rm(join(this.root, name), { recursive: true, force: true }).catch(() => {});
      }
    }
    return [...this.records.values()];
  }

  get(name: string): VolumeRecord | undefined { return this.records.get(name); }
  all(): VolumeRecord[] { return [...this.records.values()]; }
  dirOf(name: string): string { return join(this.root, name); }
  dataDir(name: string): string { return join(this.root, name, '_data'); }

  async create(rec: VolumeRecord): Promise<void> {
    await ensureDir(this.dirOf(rec.Name), 0o701);
    await ensureDir(this.dataDir(rec.Name), 0o755);
    await writeFileAtomic(join(this.dirOf(rec.Name), 'volume.json'), JSON.stringify(rec));
    this.records.set(rec.Name, rec);
  }

  async remove(name: string): Promise<void> {
    this.records.delete(name);
    // the record goes first, so a crash half-way leaves a directory that load() drops
    await rm(join(this.dirOf(name), 'volume.json'), { force: true });
    await rm(this.dirOf(name), { recursive: true, force: true });
  }
}
