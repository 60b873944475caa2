// Image records (images/<id-hex>.json) plus the tag/digest index, rebuilt from records at start.
// An image's layers are named by chain IDs; which layers are still needed is derived from the
// records, never from stored counters, so a crash cannot skew reference counts.
import { join } from 'node:path';
import { RecordStore } from './records.js';

export interface StoredImage {
  Id: string;                 // sha256:<hex> of the config blob
  RepoTags: string[];         // canonical: docker.io/library/busybox:latest
  RepoDigests: string[];      // canonical: docker.io/library/busybox@sha256:...
  Parent: string;
  Created: string;            // from the config
  LastTagTime: string;
  ChainIds: string[];         // bottom-most first
  Size: number;
}

const hexOf = (id: string): string => id.replace(/^sha256:/, '');

export class ImageStore {
  private readonly records: RecordStore<StoredImage>;
  /** canonical ref → image ID */
  private readonly refs = new Map<string, string>();

  constructor(root: string) { this.records = new RecordStore<StoredImage>(join(root, 'images')); }

  async load(): Promise<void> {
    await this.records.load();
    this.refs.clear();
    for (const img of this.records.values()) for (const r of [...img.RepoTags, ...img.RepoDigests]) this.refs.set(r, img.Id);
  }

  all(): StoredImage[] { return [...this.records.values()]; }
  get(id: string): StoredImage | undefined { return this.records.get(hexOf(id)); }
  byRef(canonical: string): StoredImage | undefined {
    const id = this.refs.get(canonical);
    return id ? this.get(id) : undefined;
  }

  /** IDs whose hex starts with prefix. */
  byPrefix(prefix: string): StoredImage[] {
    return this.all().filter((i) => hexOf(i.Id).startsWith(prefix));
  }

  async put(img: StoredImage): Promise<void> {
    await this.records.put(hexOf(img.Id), img);
    for (const r of [...img.RepoTags, ...img.RepoDigests]) this.refs.set(r, img.Id);
  }

  async delete(id: string): Promise<void> {
    const img = this.get(id);
    if (!img) return;
    for (const r of [...img.RepoTags, ...img.RepoDigests]) if (this.refs.get(r) === img.Id) this.refs.delete(r);
    await this.records.delete(hexOf(id));
  }

  /** Points ref at image id, moving it away from any other image. Returns the image that lost it. */
  async setRef(canonical: string, id: string, isDigest: boolean, when: string): Promise<StoredImage | undefined> {
    const prevId = this.refs.get(canonical);
    let lost: StoredImage | undefined;
    if (prevId && prevId !== id) {
      lost = this.get(prevId);
      if (lost) await this.records.put(hexOf(lost.Id), { ...lost, RepoTags: lost.RepoTags.filter((r) => r !== canonical), RepoDigests: lost.RepoDigests.filter((r) => r !== canonical) });
      lost = this.get(prevId);
    }
    const img = this.get(id);
    if (!img) throw new Error(`no image ${id}`);
    const list = isDigest ? img.RepoDigests : img.RepoTags;
    const next = list.includes(canonical) ? img : { ...img, [isDigest ? 'RepoDigests' : 'RepoTags']: [...list, canonical], LastTagTime: isDigest ? img.LastTagTime : when };
    await this.records.put(hexOf(id), next);
    this.refs.set(canonical, id);
    return lost;
  }

  async removeRef(canonical: string): Promise<StoredImage | undefined> {
    const id = this.refs.get(canonical);
    if (!id) return undefined;
    const img = this.get(id)!;
    const next = { ...img, RepoTags: img.RepoTags.filter((r) => r !== canonical), RepoDigests: img.RepoDigests.filter((r) => r !== canonical) };
    await this.records.put(hexOf(id), next);
    this.refs.delete(canonical);
    return next;
  }

  /** Chain IDs still needed by any image. */
  usedChains(): Set<string> {
    const s = new Set<string>();
    for (const img of this.records.values()) for (const c of img.ChainIds) s.add(c);
    return s;
  }
}
