// Layer store: layers/<chainid-hex>/{diff/, layer.json}. A layer is extracted into a
// `.partial-*` directory and renamed into place only when complete (and synced), so an
// interrupted extraction never looks finished; stale partial dirs are removed at start.
// Reference counts are not stored: the image store derives which layers are still used from
// image records.
import { randomBytes } from 'node:crypto';
import { promises as fsp } from 'node:fs';
import { join } from 'node:path';
import { ensureDir } from './atomic.js';

export interface LayerMeta {
  chainId: string;
  diffId: string;
  parent: string | null;  // parent chainID
  size: number;           // bytes of regular-file content in this layer
  /**
   * The content store blob the layer came from when it is not the tar named by diffId: a
   * pull keeps the compressed blob exactly as downloaded (digest = the manifest's layer
   * digest), so save and push send it as it is. This is the diffID -> blob mapping.
   */
  blob?: LayerBlob;
}

export interface LayerBlob {
  digest: string;
  size: number;
  mediaType: string;
  /** The repository (canonical name) it was pulled from: a push to that registry may mount it. */
  from?: string;
}

/** The content store digest that holds a layer's bytes (compressed or not). */
export const layerBlobDigest = (l: Pick<LayerMeta, 'diffId' | 'blob'>): string => l.blob?.digest ?? l.diffId;

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
   * A directory to unpack a layer into (`<dir>/diff`), named `.partial-*` so that nothing looks
   * complete before commit() and init() sweeps it after a crash. Layers of one image can be
   * unpacked side by side: a diff directory does not depend on its parent's content.
   */
  async begin(): Promise<string> {
    const tmp = join(this.dir, `.partial-${randomBytes(8).toString('hex')}`);
    await fsp.mkdir(join(tmp, 'diff'), { recursive: true, mode: 0o755 });
    return tmp;
  }

  /** Writes layer.json into the partial directory (synced with it by the caller's syncfs). */
  async seal(tmp: string, meta: LayerMeta): Promise<void> {
    await fsp.writeFile(join(tmp, 'layer.json'), JSON.stringify(meta), { mode: 0o600 });
  }

  /**
   * Renames a sealed partial directory into place; its parent must be present (layers are
   * committed bottom-up). The caller synced the filesystem before and fsyncs this.dir after
   * (one flush for every layer of a pull). An already present chain wins; the partial goes.
   */
  async commit(tmp: string, meta: LayerMeta): Promise<LayerMeta> {
    if (meta.parent && !this.layers.has(meta.parent)) throw new Error(`parent layer ${meta.parent} not present`);
    const existing = this.layers.get(meta.chainId);
    if (existing) { await this.discard(tmp); return existing; }
    await fsp.rename(tmp, join(this.dir, hexOf(meta.chainId)));
    this.layers.set(meta.chainId, meta);
    return meta;
  }

  async discard(tmp: string): Promise<void> { await fsp.rm(tmp, { recursive: true, force: true }); }

  async remove(chainId: string): Promise<void> {
    if (!this.layers.has(chainId)) return;
    this.layers.delete(chainId);
    // Rename first so a crash mid-delete leaves a dot-dir that init() sweeps.
    const gone = join(this.dir, `.removing-${hexOf(chainId)}`);
    await fsp.rename(join(this.dir, hexOf(chainId)), gone).catch(() => {});
    await fsp.rm(gone, { recursive: true, force: true });
  }
}
