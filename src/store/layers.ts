// Layer store: layers/<chainid-hex>/{diff/, layer.json}. A layer is extracted into a
// `.partial-*` directory and renamed into place only when complete, so an interrupted
// extraction never looks finished; stale partial dirs are removed at start. Reference counts are
// not stored: the image store derives which layers are still used from image records.
import { randomBytes } from 'node:crypto';
import { promises as fsp } from 'node:fs';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { extractLayer } from '../oci/tar-extract.js';
import { sha256 } from '../oci/image.js';
import { ensureDir, fsyncDir, writeFileAtomic } from './atomic.js';

export interface LayerMeta {
  chainId: string;
  diffId: string;
  parent: string | null;  // parent chainID
  size: number;           // bytes of regular-file content in this layer
}

const hexOf = (d: string): string => d.replace(/^sha256:/, '');

export class LayerStore {
  readonly dir: string;
  private readonly layers = new Map<string, LayerMeta>();
  constructor(root: string) { this.dir = join(root, 'layers'); }

  async init(): Promise<void> {
    await ensureDir(this.dir);
    this.layers.clear();
    for (const n of await fsp.readdir(this.dir)) {
      const p = join(this.dir, n);
      if (n.startsWith('.')) { await fsp.rm(p, { recursive: true, force: true }); continue; }
      try {
        const meta = JSON.parse(await fsp.readFile(join(p, 'layer.json'), 'utf8')) as LayerMeta;
        this.layers.set(meta.chainId, meta);
      } catch {
        await fsp.rm(p, { recursive: true, force: true }); // never completed
      }
    }
  }

  get(chainId: string): LayerMeta | undefined { return this.layers.get(chainId); }
  has(chainId: string): boolean { return this.layers.has(chainId); }
  all(): LayerMeta[] { return [...this.layers.values()]; }
  diffDir(chainId: string): string { return join(this.dir, hexOf(chainId), 'diff'); }

  /**
   * Extracts a layer on top of parent. When expectedDiffId is given the uncompressed digest must
   * match. Returns the existing layer if this chain is already present (the tar is still drained).
   */
  async register(tarStream: Readable, parent: string | null, expectedDiffId?: string): Promise<LayerMeta> {
    if (parent && !this.layers.has(parent)) throw new Error(`parent layer ${parent} not present`);
    const tmp = join(this.dir, `.partial-${randomBytes(8).toString('hex')}`);
    await fsp.mkdir(join(tmp, 'diff'), { recursive: true, mode: 0o755 });
    try {
      const { diffId, size } = await extractLayer(tarStream, join(tmp, 'diff'));
      if (expectedDiffId && expectedDiffId !== diffId) throw new Error(`layer digest mismatch: expected ${expectedDiffId}, got ${diffId}`);
      const chainId = parent ? sha256(`${parent} ${diffId}`) : diffId;
      const existing = this.layers.get(chainId);
      if (existing) { await fsp.rm(tmp, { recursive: true, force: true }); return existing; }
      const meta: LayerMeta = { chainId, diffId, parent, size };
      await writeFileAtomic(join(tmp, 'layer.json'), JSON.stringify(meta));
      await fsp.rename(tmp, join(this.dir, hexOf(chainId)));
      await fsyncDir(this.dir);
      this.layers.set(chainId, meta);
      return meta;
    } catch (err) {
      await fsp.rm(tmp, { recursive: true, force: true });
      throw err;
    }
  }

  async remove(chainId: string): Promise<void> {
    if (!this.layers.has(chainId)) return;
    this.layers.delete(chainId);
    // Rename first so a crash mid-delete leaves a dot-dir that init() sweeps.
    const gone = join(this.dir, `.removing-${hexOf(chainId)}`);
    await fsp.rename(join(this.dir, hexOf(chainId)), gone).catch(() => {});
    await fsp.rm(gone, { recursive: true, force: true });
  }
}
