// ImageService: load/save/import/tag/remove/list/inspect/history/prune over the content, layer
// and image stores. Containers call resolve(), layerDirs() and imageConfig().
import { promises as fsp } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { PassThrough, Readable } from 'node:stream';
import { ConflictError, InvalidParameterError, NotFoundError } from '../errors.js';
import { fsyncDir, syncFilesystem } from '../store/atomic.js';
import { ContentStore, DigestMismatchError } from '../store/content.js';
import { LayerStore, layerBlobDigest, type LayerBlob, type LayerMeta } from '../store/layers.js';
import { ImageStore, type StoredImage } from '../store/images.js';
import {
  MediaTypes, RefError, chainIds, familiarRepo, familiarString, isDigest, parseRef, parseRefWithDefaultTag, refKey, sha256, shortId,
  type ImageConfigBlob, type ImageRef,
} from '../oci/image.js';
import { unpack, warmUnpacker, type DownloadSource } from '../store/unpack.js';
import { ScratchArchive, packArchive, type SaveEntry } from './image-archive.js';

/** The image as `docker image inspect` shows it. */
export interface ImageRecord {
  Id: string;
  RepoTags: string[];
  RepoDigests: string[];
  Parent: string;
  Comment: string;
  Created: string;
  DockerVersion?: string;
  Author: string;
  Config: Record<string, any>;
  Architecture: string;
  Variant?: string;
  Os: string;
  Size: number;
  GraphDriver: { Name: string; Data: Record<string, string> | null };
  RootFS: { Type: string; Layers: string[] };
  Metadata: { LastTagTime: string };
}

export interface ImageEvents {
  publish(ev: { Type: string; Action: string; Actor: { ID: string; Attributes: Record<string, string> } }): void;
}

export type UsageChecker = (imageId: string) => Array<string | { Id: string; running?: boolean }>;

export interface DeleteResponseItem { Untagged?: string; Deleted?: string }

/** A layer unpacked and stored under temp names (ImageService.prepareLayer). */
export interface PreparedLayer extends LayerMeta {
  /** Renames blob and layer into place; the parent layer must be committed already. */
  commit(): Promise<LayerMeta>;
  /** Removes the temp files (a layer that is committed stays). */
  abort(): Promise<void>;
}

const ZERO_TIME = '0001-01-01T00:00:00Z';

export class ImageService {
  readonly content: ContentStore;
  readonly layers: LayerStore;
  readonly store: ImageStore;
  private usage: UsageChecker = () => [];
  private readonly tmpDir: string;
  private configs = new Map<string, ImageConfigBlob>();

  constructor(readonly dataRoot: string, private readonly events?: ImageEvents) {
    this.content = new ContentStore(dataRoot);
    this.layers = new LayerStore(dataRoot);
    this.store = new ImageStore(dataRoot);
    this.tmpDir = join(dataRoot, 'tmp', 'images');
  }

  /** Once the daemon listens: the layer unpacking workers boot before the first pull needs them. */
  warm(): void { warmUnpacker(); }

  async init(): Promise<void> {
    await this.content.init();
    await this.layers.init();
    await this.store.load();
    await fsp.rm(this.tmpDir, { recursive: true, force: true });
    await fsp.mkdir(this.tmpDir, { recursive: true, mode: 0o700 });
    this.configs.clear();
    for (const img of this.store.all()) {
      try {
        this.configs.set(img.Id, await this.content.readJson<ImageConfigBlob>(img.Id));
      } catch {
        await this.store.delete(img.Id); // config blob lost: the record cannot be used
        continue;
      }
      if (!img.ChainIds.every((c) => this.layers.has(c))) await this.store.delete(img.Id);
    }
    await this.gcLayers();
    // blobs nothing names: a config stored by a pull or load killed before its image record
    const named = new Set([...this.store.all().map((i) => i.Id), ...this.layers.all().map(layerBlobDigest)]);
    for (const b of await this.content.list()) if (!named.has(b)) await this.content.delete(b);
  }

  setUsageChecker(fn: UsageChecker): void { this.usage = fn; }

  private emit(action: string, id: string, name?: string): void {
    this.events?.publish({ Type: 'image', Action: action, Actor: { ID: name ?? id, Attributes: { name: name ?? id } } });
  }

  // --- lookup ---------------------------------------------------------------------------

  /** Finds an image by name[:tag], name@digest, full ID or unique ID prefix (with or without sha256:). */
  async resolve(ref: string): Promise<ImageRecord> {
    return this.inspectView(this.find(ref));
  }

  /** Like resolve but returns the stored record. Throws NotFoundError "No such image: ref". */
  find(ref: string): StoredImage {
    const notFound = (): NotFoundError => new NotFoundError(`No such image: ${ref}`);
    if (!ref) throw notFound();
    const idLike = /^(sha256:)?([a-f0-9]{1,64})$/.exec(ref);
    if (idLike && (idLike[1] || idLike[2].length === 64)) {
      const m = this.store.byPrefix(idLike[2]);
      if (m.length === 1) return m[0];
      throw notFound();
    }
    let parsed: ImageRef | undefined;
    try { parsed = parseRefWithDefaultTag(ref); } catch { parsed = undefined; }
    if (parsed) {
      const img = this.store.byRef(refKey(parsed));
      if (img) return img;
      if (parsed.digest) {
        const byCfg = this.store.get(parsed.digest);
        if (byCfg && byCfg.RepoTags.some((t) => t.startsWith(parsed!.repo + ':'))) return byCfg;
      }
    }
    if (idLike && idLike[2].length >= 1) {
      const m = this.store.byPrefix(idLike[2]);
      if (m.length === 1) return m[0];
    }
    throw notFound();
  }

  /** Absolute diff dirs of the image's layers, top-most first (overlay lowerdir order). */
  layerDirs(imageId: string): string[] {
    const img = this.store.get(imageId);
    if (!img) throw new NotFoundError(`No such image: ${imageId}`);
    return img.ChainIds.map((c) => this.layers.diffDir(c)).reverse();
  }

  /** The image's runtime config (Env, Cmd, Entrypoint, WorkingDir, User, ...). */
  imageConfig(imageId: string): Record<string, any> {
    const cfg = this.configs.get(this.find(imageId).Id);
    return normalizeConfig(cfg?.config);
  }

  inspectView(img: StoredImage): ImageRecord {
    const cfg = this.configs.get(img.Id)!;
    const dirs = this.layerDirs(img.Id);
    return {
      Id: img.Id,
      RepoTags: img.RepoTags.map((r) => familiarString(parseRef(r))),
      RepoDigests: img.RepoDigests.map((r) => familiarString(parseRef(r))),
      Parent: img.Parent ?? '',
      Comment: cfg.comment ?? '',
      Created: cfg.created ?? img.Created ?? ZERO_TIME,
      ...(cfg.docker_version ? { DockerVersion: cfg.docker_version } : {}),
      Author: cfg.author ?? '',
      Config: normalizeConfig(cfg.config),
      Architecture: cfg.architecture,
      ...(cfg.variant ? { Variant: cfg.variant } : {}),
      Os: cfg.os,
      Size: img.Size,
      GraphDriver: {
        Name: 'overlay2',
        Data: dirs.length ? {
          LowerDir: dirs.slice(1).join(':') || undefined as any,
          MergedDir: join(dirs[0], '..', 'merged'),
          UpperDir: dirs[0],
          WorkDir: join(dirs[0], '..', 'work'),
        } : null,
      },
      RootFS: { Type: 'layers', Layers: cfg.rootfs?.diff_ids ?? [] },
      Metadata: { LastTagTime: img.LastTagTime || ZERO_TIME },
    };
  }

  // --- list / history ---------------------------------------------------------------------

  list(opts: { all?: boolean; digests?: boolean; filters?: Record<string, string[] | Record<string, boolean>> } = {}): any[] {
    const f = normalizeFilters(opts.filters);
    for (const k of Object.keys(f)) if (!['dangling', 'label', 'reference', 'before', 'since', 'until'].includes(k)) throw new InvalidParameterError(`invalid filter '${k}'`);
    let imgs = this.store.all();
    // build steps (untagged parents of other images) show only with all=true, as on the Engine
    const parents = new Set(imgs.map((i) => i.Parent).filter(Boolean));
    if (!opts.all) imgs = imgs.filter((i) => i.RepoTags.length > 0 || i.RepoDigests.length > 0 || !parents.has(i.Id));
    const created = (i: StoredImage): number => Date.parse(this.configs.get(i.Id)?.created ?? i.Created) || 0;
    if (f.dangling) {
      const want = f.dangling[0];
      if (want !== 'true' && want !== 'false' && want !== '1' && want !== '0') throw new InvalidParameterError(`invalid filter 'dangling=${want}'`);
      const d = want === 'true' || want === '1';
      imgs = imgs.filter((i) => (i.RepoTags.length === 0) === d);
    }
    for (const [key, cmp] of [['before', -1], ['since', 1]] as const) {
      if (!f[key]) continue;
      const ref = this.find(f[key][0]);
      imgs = imgs.filter((i) => Math.sign(created(i) - created(ref)) === cmp);
    }
    if (f.label) imgs = imgs.filter((i) => f.label.every((l) => matchLabel(this.configs.get(i.Id)?.config?.Labels ?? {}, l)));
    const refFilter = f.reference;
    const out: any[] = [];
    for (const img of imgs) {
      let tags = img.RepoTags.map((r) => familiarString(parseRef(r)));
      if (refFilter) {
        tags = tags.filter((t) => refFilter.some((p) => matchReference(p, t)));
        if (tags.length === 0) continue;
      }
      const cfg = this.configs.get(img.Id);
      out.push({
        Containers: -1,
        Created: Math.floor(created(img) / 1000),
        Id: img.Id,
        Labels: cfg?.config?.Labels ?? null,
        ParentId: img.Parent ?? '',
        RepoDigests: img.RepoDigests.map((r) => familiarString(parseRef(r))),
        RepoTags: tags,
        SharedSize: -1,
        Size: img.Size,
      });
    }
    return out.sort((a, b) => b.Created - a.Created);
  }

  history(ref: string): any[] {
    const img = this.find(ref);
    const cfg = this.configs.get(img.Id)!;
    const layers = [...img.ChainIds];
    const rows: any[] = [];
    for (const h of cfg.history ?? []) {
      const size = h.empty_layer ? 0 : (this.layers.get(layers.shift() ?? '')?.size ?? 0);
      rows.push({ Id: '<missing>', Created: Math.floor((Date.parse(h.created ?? '') || 0) / 1000), CreatedBy: h.created_by ?? '', Tags: null, Size: size, Comment: h.comment ?? '' });
    }
    if (rows.length === 0) rows.push({ Id: '<missing>', Created: Math.floor((Date.parse(cfg.created ?? '') || 0) / 1000), CreatedBy: '', Tags: null, Size: img.Size, Comment: cfg.comment ?? '' });
    rows.reverse();
    rows[0].Id = img.Id;
    rows[0].Tags = img.RepoTags.length ? img.RepoTags.map((r) => familiarString(parseRef(r))) : null;
    return rows;
  }

  // --- tag / untag / delete --------------------------------------------------------------

  async tag(source: string, repo: string, tag?: string): Promise<void> {
    const img = this.find(source);
    let ref: ImageRef;
    try { ref = parseRef(tag ? `${repo}:${tag}` : repo); } catch (e) { throw new InvalidParameterError((e as Error).message); }
    if (ref.digest) throw new InvalidParameterError('refusing to create a tag with a digest reference');
    if (!ref.tag) ref.tag = 'latest';
    await this.store.setRef(refKey(ref), img.Id, false, new Date().toISOString());
    this.emit('tag', img.Id, familiarString(ref));
  }

  async remove(ref: string, opts: { force?: boolean; noprune?: boolean } = {}): Promise<DeleteResponseItem[]> {
    const img = this.find(ref);
    const out: DeleteResponseItem[] = [];
    const users = this.usage(img.Id).map((u) => (typeof u === 'string' ? { Id: u, running: false } : u));
    const idLike = /^(sha256:)?[a-f0-9]{1,64}$/.test(ref) && !this.isNamedRef(ref);
    if (!idLike) {
      const parsed = parseRefWithDefaultTag(ref);
      const key = refKey(parsed);
      const refs = [...img.RepoTags, ...img.RepoDigests];
      const isLast = refs.length <= 1 || (img.RepoTags.length === 1 && img.RepoTags[0] === key && img.RepoDigests.every((d) => d.startsWith(parsed.repo + '@')));
      if (isLast && users.length && !opts.force) {
        throw new ConflictError(`conflict: unable to remove repository reference "${ref}" (must force) - container ${shortId(users[0].Id)} is using its referenced image ${shortId(img.Id)}`);
      }
      await this.store.removeRef(key);
      out.push({ Untagged: familiarString(parsed) });
      this.emit('untag', img.Id, familiarString(parsed));
      const after = this.store.get(img.Id)!;
      if (after.RepoTags.length > 0) return out;
      // digests of the same repo go with the last tag, as on the Engine
      for (const d of after.RepoDigests) { await this.store.removeRef(d); out.push({ Untagged: familiarString(parseRef(d)) }); }
      if (users.length) return out;
    } else {
      const running = users.find((u) => u.running);
      if (running) throw new ConflictError(`conflict: unable to delete ${shortId(img.Id)} (cannot be forced) - image is being used by running container ${shortId(running.Id)}`);
      if (users.length && !opts.force) throw new ConflictError(`conflict: unable to delete ${shortId(img.Id)} (must be forced) - image is being used by stopped container ${shortId(users[0].Id)}`);
      const refs = [...img.RepoTags, ...img.RepoDigests];
      const repos = new Set(refs.map((r) => parseRef(r).repo));
      if (repos.size > 1 && !opts.force) throw new ConflictError(`conflict: unable to delete ${shortId(img.Id)} (must be forced) - image is referenced in multiple repositories`);
      for (const r of refs) { await this.store.removeRef(r); out.push({ Untagged: familiarString(parseRef(r)) }); this.emit('untag', img.Id, familiarString(parseRef(r))); }
    }
    await this.store.delete(img.Id);
    this.configs.delete(img.Id);
    await this.content.delete(img.Id);
    out.push({ Deleted: img.Id });
    this.emit('delete', img.Id);
    // the untagged build steps under it go too, unless something else still needs them
    let parent = img.Parent;
    while (parent && !opts.noprune) {
      const p = this.store.get(parent);
      if (!p || p.RepoTags.length || p.RepoDigests.length || this.usage(p.Id).length || this.store.all().some((i) => i.Parent === p.Id)) break;
      await this.store.delete(p.Id);
      this.configs.delete(p.Id);
      await this.content.delete(p.Id);
      out.push({ Deleted: p.Id });
      this.emit('delete', p.Id);
      parent = p.Parent;
    }
    await this.gcLayers();
    return out;
  }

  private isNamedRef(ref: string): boolean {
    try { return !!this.store.byRef(refKey(parseRefWithDefaultTag(ref))); } catch { return false; }
  }

  async prune(filters?: Record<string, any>): Promise<{ ImagesDeleted: DeleteResponseItem[] | null; SpaceReclaimed: number }> {
    const f = normalizeFilters(filters);
    const danglingOnly = !f.dangling || f.dangling[0] === 'true' || f.dangling[0] === '1';
    const until = f.until ? parseUntil(f.until[0]) : undefined;
    const deleted: DeleteResponseItem[] = [];
    let reclaimed = 0;
    const hasChildren = (id: string) => this.store.all().some((i) => i.Parent === id);
    for (const img of this.store.all()) {
      if (danglingOnly && img.RepoTags.length) continue;
      if (danglingOnly && hasChildren(img.Id)) continue;
      if (this.usage(img.Id).length) continue;
      const cfg = this.configs.get(img.Id);
      if (f.label && !f.label.every((l) => matchLabel(cfg?.config?.Labels ?? {}, l))) continue;
      if (until !== undefined && (Date.parse(cfg?.created ?? '') || 0) >= until) continue;
      const before = new Set(this.layers.all().map((l) => l.chainId));
      const sizeBefore = this.layers.all().reduce((a, l) => a + l.size, 0);
      deleted.push(...(await this.remove(img.Id, { force: true })));
      reclaimed += sizeBefore - this.layers.all().filter((l) => before.has(l.chainId)).reduce((a, l) => a + l.size, 0);
    }
    if (deleted.length) this.events?.publish({ Type: 'image', Action: 'prune', Actor: { ID: '', Attributes: { reclaimed: String(reclaimed) } } });
    return { ImagesDeleted: deleted.length ? deleted : null, SpaceReclaimed: reclaimed };
  }

  /** After a failed pull or build: the given layers go again unless an image uses them. */
  async dropLayersIfUnused(chains: string[]): Promise<void> {
    const used = this.store.usedChains();
    for (const c of [...chains].reverse()) {
      const l = this.layers.get(c);
      // pinned by someone else too (a concurrent pull of the same layers): theirs to keep
      if (!l || used.has(c) || (this.pinned.get(c) ?? 0) > 1) continue;
      await this.layers.remove(c);
      await this.dropBlobIfUnused(l);
    }
  }

  /** A removed layer's blob goes unless another layer (same diffID elsewhere in a chain) holds it too. */
  private async dropBlobIfUnused(gone: LayerMeta): Promise<void> {
    const digest = layerBlobDigest(gone);
    if (this.layers.all().some((l) => layerBlobDigest(l) === digest) || this.store.get(digest)) return;
    await this.content.delete(digest).catch(() => {});
  }

  /** The blob holding an image layer's bytes: compressed as pulled, or the tar named by diffID. */
  layerBlob(chainId: string): LayerBlob {
    const l = this.layers.get(chainId);
    if (!l) throw new Error(`layer ${chainId} is missing`);
    return l.blob ?? { digest: l.diffId, size: -1, mediaType: MediaTypes.ociLayer };
  }

  /** For the registry client: an event about an image (pull, push). */
  publishEvent(action: string, id: string, name?: string): void { this.emit(action, id, name); }

  /** Layers a pull or build has registered but no image references yet: garbage collection spares them. */
  private readonly pinned = new Map<string, number>();
  pin(chains: string[]): void { for (const c of chains) this.pinned.set(c, (this.pinned.get(c) ?? 0) + 1); }
  unpin(chains: string[]): void {
    for (const c of chains) { const n = (this.pinned.get(c) ?? 1) - 1; if (n <= 0) this.pinned.delete(c); else this.pinned.set(c, n); }
  }

  private async gcLayers(): Promise<void> {
    const used = this.store.usedChains();
    for (const l of this.layers.all()) if (!used.has(l.chainId) && !this.pinned.has(l.chainId)) {
      await this.layers.remove(l.chainId);
      await this.dropBlobIfUnused(l);
    }
  }

  // --- creating images ---------------------------------------------------------------------

  /**
   * One pass over a layer tar (gzipped or not): decompressed, hashed, stored as the layer's
   * blob and unpacked at once (store/unpack.ts), both under temp names (a
   * `.ingest-*` file and a `.partial-*` directory), nothing synced. Nothing is visible before
   * commit(), which the caller runs bottom-up after syncFilesystem(); a diffID other than
   * expectedDiffId refuses the layer, as does a digest of the bytes as given (a download's
   * compressed blob) other than `blob.digest`. With `blob` (a pull), the blob stored is the
   * bytes as given, under their digest, and layer.json maps the diffID to it; otherwise the
   * decompressed tar under its diffID. `input`: a stream, or a registry download the unpacker
   * makes itself.
   */
  async prepareLayer(input: Readable | DownloadSource, parent: string | null, expectedDiffId?: string, o: { blob?: Omit<LayerBlob, 'size'> } = {}): Promise<PreparedLayer> {
    // an error while the temp names are made (a client gone early) must not go unheard
    let failed: Error | undefined;
    if (input instanceof Readable) input.on('error', (e) => { failed ??= e; });
    const ingest = this.content.ingestPath();
    const tmp = await this.layers.begin();
    const abort = async (): Promise<void> => { await Promise.all([fsp.rm(ingest, { force: true }), this.layers.discard(tmp)]); };
    try {
      if (failed) throw failed;
      const { diffId, size, inputDigest, inputSize } = await unpack(input, ingest, join(tmp, 'diff'), { keepInput: !!o.blob });
      if (o.blob && o.blob.digest !== inputDigest) throw new DigestMismatchError(`blob digest mismatch: expected ${o.blob.digest}, got ${inputDigest}`);
      if (expectedDiffId && expectedDiffId !== diffId) throw new DigestMismatchError(`layer digest mismatch: expected ${expectedDiffId}, got ${diffId}`);
      const meta: LayerMeta = { chainId: parent ? sha256(`${parent} ${diffId}`) : diffId, diffId, parent, size };
      // a blob that is the tar itself (an uncompressed layer) is the diffID-named blob
      if (o.blob && inputDigest !== diffId) meta.blob = { ...o.blob, digest: inputDigest, size: inputSize };
      const blobDigest = layerBlobDigest(meta);
      await this.layers.seal(tmp, meta);
      return {
        ...meta,
        // the blob first: a layer whose blob is missing could not be saved or pushed
        commit: async () => { await this.content.commitIngest(ingest, blobDigest); return this.layers.commit(tmp, meta); },
        abort,
      };
    } catch (err) {
      await abort();
      throw err;
    }
  }

  /** After commits: the renames made durable, before any image record names the layers. */
  async flushLayerDirs(): Promise<void> {
    await fsyncDir(this.content.dir);
    await fsyncDir(this.layers.dir);
  }

  /** Stores an uncompressed layer tar (blob named by its diffID) and unpacks it on parent. */
  async addLayer(tarStream: Readable, parent: string | null, expectedDiffId?: string): Promise<{ chainId: string; diffId: string; size: number }> {
    const p = await this.prepareLayer(tarStream, parent, expectedDiffId);
    let meta: LayerMeta;
    try {
      await syncFilesystem(this.layers.dir);
      meta = await p.commit();
    } catch (err) {
      await p.abort();
      throw err;
    }
    await this.flushLayerDirs();
    return { chainId: meta.chainId, diffId: meta.diffId, size: meta.size };
  }

  /** Registers an image from its config blob bytes whose layers are already present. */
  async addImage(configBytes: Buffer, tags: string[] = [], parent = ''): Promise<StoredImage> {
    let cfg: ImageConfigBlob;
    try { cfg = JSON.parse(configBytes.toString('utf8')); } catch { throw new InvalidParameterError('invalid image config JSON'); }
    if (!cfg.rootfs || !Array.isArray(cfg.rootfs.diff_ids)) throw new InvalidParameterError('invalid image config: missing rootfs.diff_ids');
    const { digest } = await this.content.put(configBytes);
    const chains = chainIds(cfg.rootfs.diff_ids);
    for (const c of chains) if (!this.layers.has(c)) throw new InvalidParameterError(`layer ${c} is missing`);
    const existing = this.store.get(digest);
    const img: StoredImage = existing ?? {
      Id: digest, RepoTags: [], RepoDigests: [], Parent: parent, Created: cfg.created ?? ZERO_TIME, LastTagTime: '',
      ChainIds: chains, Size: chains.reduce((a, c) => a + (this.layers.get(c)?.size ?? 0), 0),
    };
    if (!existing) await this.store.put(img);
    this.configs.set(digest, cfg);
    const now = new Date().toISOString();
    for (const t of tags) {
      const r = parseRefWithDefaultTag(t);
      await this.store.setRef(refKey(r), digest, false, now);
    }
    return this.store.get(digest)!;
  }

  /** docker load: returns progress messages in order (the route streams them). */
  async load(input: Readable, onMessage: (line: string) => void = () => {}): Promise<string[]> {
    const dir = join(this.tmpDir, `load-${randomBytes(6).toString('hex')}`);
    await fsp.mkdir(dir, { recursive: true });
    const loaded: string[] = [];
    try {
      const archive = new ScratchArchive(dir);
      try { await archive.ingest(input); } catch (e) { throw new InvalidParameterError(`invalid tar archive: ${(e as Error).message}`); }
      const images = await archive.images();
      if (!images.length) throw new InvalidParameterError('no images found in the archive');
      const links: Array<{ id: string; parent?: string }> = [];
      for (const entry of images) {
        const configBytes = await archive.readBytes(entry.config);
        const cfg = JSON.parse(configBytes.toString('utf8')) as ImageConfigBlob;
        const diffIds = cfg.rootfs?.diff_ids ?? [];
        if (diffIds.length !== entry.layers.length) throw new InvalidParameterError(`invalid manifest: ${entry.layers.length} layers but the config lists ${diffIds.length}`);
        let parent: string | null = null;
        for (let i = 0; i < entry.layers.length; i++) {
          const chain: string = parent ? sha256(`${parent} ${diffIds[i]}`) : diffIds[i];
          if (!this.layers.has(chain)) await this.addLayer(archive.open(entry.layers[i]), parent, diffIds[i]);
          parent = chain;
        }
        const before = entry.repoTags.map((t) => this.store.byRef(refKey(parseRefWithDefaultTag(t)))?.Id);
        const img = await this.addImage(configBytes, entry.repoTags);
        links.push({ id: img.Id, parent: entry.parent });
        entry.repoTags.forEach((t, i) => {
          if (before[i] && before[i] !== img.Id) onMessage(`The image ${t} already exists, renaming the old one with ID ${before[i]} to empty string\n`);
        });
        if (entry.repoTags.length) {
          for (const t of entry.repoTags) { const name = familiarString(parseRefWithDefaultTag(t)); loaded.push(name); onMessage(`Loaded image: ${name}\n`); this.emit('load', img.Id, name); }
        } else {
          loaded.push(img.Id); onMessage(`Loaded image ID: ${img.Id}\n`); this.emit('load', img.Id);
        }
      }
      // manifest.json's Parent links, as the Engine keeps them: only to another image of this
      // archive, and only a parent whose history is the child's minus its last entry
      const ids = new Set(links.map((l) => l.id));
      for (const { id, parent } of links) {
        if (!parent || parent === id || !ids.has(parent)) continue;
        if (!validParent(this.configs.get(id)!, this.configs.get(parent)!)) throw new InvalidParameterError(`image ${parent} is not a valid parent for ${id}`);
        const img = this.store.get(id)!;
        if (img.Parent !== parent) await this.store.put({ ...img, Parent: parent });
      }
      return loaded;
    } finally {
      await fsp.rm(dir, { recursive: true, force: true });
    }
  }

  /** docker save: a tar stream of the named images in the layout current docker writes. */
  save(refs: string[]): Readable {
    const chosen = new Map<string, { img: StoredImage; names: string[] }>();
    for (const r of refs) {
      const img = this.find(r);
      const e = chosen.get(img.Id) ?? { img, names: [] };
      let named: ImageRef | undefined;
      try { named = parseRefWithDefaultTag(r); } catch { named = undefined; }
      if (named && !named.digest && this.store.byRef(refKey(named))?.Id === img.Id) e.names.push(refKey(named));
      else if (!/^(sha256:)?[a-f0-9]+$/.test(r)) e.names.push(...img.RepoTags.filter((t) => parseRef(t).repo === named?.repo));
      chosen.set(img.Id, e);
    }
    const out = new PassThrough();
    (async () => {
      const entries: SaveEntry[] = [];
      const added = new Set<string>();
      const blob = async (digest: string): Promise<string> => {
        const name = `blobs/sha256/${digest.slice(7)}`;
        if (!added.has(name)) { added.add(name); entries.push({ name, file: this.content.path(digest) }); }
        return name;
      };
      const index: any = { schemaVersion: 2, mediaType: MediaTypes.ociIndex, manifests: [] };
      const manifestJson: any[] = [];
      const repositories: Record<string, Record<string, string>> = {};
      for (const { img, names } of chosen.values()) {
        const cfg = this.configs.get(img.Id)!;
        const layerDescs = [];
        const layerNames = [];
        for (const c of img.ChainIds) {
          // a pulled layer is saved as the compressed blob it came as (loaders decompress it)
          const b = this.layerBlob(c);
          if (!(await this.content.has(b.digest))) throw new Error(`layer blob ${b.digest} is missing from the content store`);
          layerNames.push(await blob(b.digest));
          layerDescs.push({ mediaType: ociLayerType(b.mediaType), digest: b.digest, size: await this.content.size(b.digest) });
        }
        const cfgName = await blob(img.Id);
        const manifest = { schemaVersion: 2, mediaType: MediaTypes.ociManifest, config: { mediaType: MediaTypes.ociConfig, digest: img.Id, size: await this.content.size(img.Id) }, layers: layerDescs };
        const mBytes = Buffer.from(JSON.stringify(manifest));
        const mDigest = sha256(mBytes);
        if (!added.has(`blobs/sha256/${mDigest.slice(7)}`)) { added.add(`blobs/sha256/${mDigest.slice(7)}`); entries.push({ name: `blobs/sha256/${mDigest.slice(7)}`, data: mBytes }); }
        const familiar = names.map((n) => familiarString(parseRef(n)));
        if (names.length === 0) index.manifests.push({ mediaType: MediaTypes.ociManifest, digest: mDigest, size: mBytes.length });
        for (const n of names) {
          const r = parseRef(n);
          index.manifests.push({ mediaType: MediaTypes.ociManifest, digest: mDigest, size: mBytes.length, annotations: { 'io.containerd.image.name': n, 'org.opencontainers.image.ref.name': r.tag ?? 'latest' } });
          (repositories[familiarRepo(r.repo)] ??= {})[r.tag ?? 'latest'] = layerNames.length ? cfg.rootfs.diff_ids[cfg.rootfs.diff_ids.length - 1].slice(7) : '';
        }
        // the parent link when the parent is saved too (the Engine's loader validates it)
        const parent = img.Parent && img.Parent !== img.Id && chosen.has(img.Parent) && validParent(cfg, this.configs.get(img.Parent)!) ? img.Parent : undefined;
        manifestJson.push({ Config: cfgName, RepoTags: familiar.length ? familiar : null, Layers: layerNames, ...(parent ? { Parent: parent } : {}) });
        this.emit('save', img.Id, familiar[0]);
      }
      entries.push({ name: 'index.json', data: JSON.stringify(index) + '\n' });
      entries.push({ name: 'manifest.json', data: JSON.stringify(manifestJson) + '\n' });
      entries.push({ name: 'oci-layout', data: JSON.stringify({ imageLayoutVersion: '1.0.0' }) });
      if (Object.keys(repositories).length) entries.push({ name: 'repositories', data: JSON.stringify(repositories) + '\n' });
      // the OCI layout puts metadata first in docker's archives; order does not matter to loaders
      const tarStream = packArchive(entries);
      tarStream.on('error', (e) => out.destroy(e));
      tarStream.pipe(out);
    })().catch((e) => out.destroy(e));
    return out;
  }

  /** docker import: one layer from a tar stream plus a config built from `changes`. */
  async importImage(input: Readable, opts: { repo?: string; tag?: string; message?: string; changes?: string[]; platform?: string }): Promise<string> {
    let ref: ImageRef | undefined;
    if (opts.repo) {
      try { ref = parseRef(opts.tag ? `${opts.repo}:${opts.tag}` : opts.repo); } catch (e) { throw new InvalidParameterError((e as Error).message); }
      if (!ref.tag && !ref.digest) ref.tag = 'latest';
    }
    const config = applyChanges({}, opts.changes ?? []);
    let layer;
    try { layer = await this.addLayer(input, null); } catch (e) { throw new InvalidParameterError(`error importing tar: ${(e as Error).message}`); }
    const now = new Date().toISOString();
    const [os, arch] = (opts.platform || 'linux/amd64').split('/');
    const cfg: ImageConfigBlob = {
      architecture: arch || 'amd64', os: os || 'linux', created: now, config,
      rootfs: { type: 'layers', diff_ids: [layer.diffId] },
      history: [{ created: now, created_by: '', comment: opts.message || 'Imported from -' }],
      ...(opts.message ? { comment: opts.message } : {}),
    };
    const img = await this.addImage(Buffer.from(JSON.stringify(cfg)), ref ? [familiarString(ref)] : []);
    this.emit('import', img.Id, ref ? familiarString(ref) : undefined);
    return img.Id;
  }

  /** For the registry client and builder: a stored blob. */
  blobPath(digest: string): string { return this.content.path(digest); }
  configOf(imageId: string): ImageConfigBlob | undefined { return this.configs.get(this.find(imageId).Id); }
  isDigestRef(s: string): boolean { return isDigest(s); }
  refError(e: unknown): e is RefError { return e instanceof RefError; }
}

// --- helpers ------------------------------------------------------------------------------

/**
 * Whether `parent` may be recorded as the parent of `child` (the Engine's rule for the Parent
 * links of docker load): no history on either, or the child's history is the parent's plus one
 * entry, the shared entries equal (times compared as instants).
 */
export function validParent(child: ImageConfigBlob, parent: ImageConfigBlob): boolean {
  const hc = child.history ?? [], hp = parent.history ?? [];
  if (hc.length === 0 && hp.length === 0) return true;
  if (hc.length - hp.length !== 1) return false;
  return hp.every((p, i) => {
    const c = hc[i]!;
    if ((p.created === undefined) !== (c.created === undefined)) return false;
    if (p.created !== undefined && timeKey(p.created) !== timeKey(c.created!)) return false;
    return (p.created_by ?? '') === (c.created_by ?? '') && (p.author ?? '') === (c.author ?? '')
      && (p.comment ?? '') === (c.comment ?? '') && (p.empty_layer ?? false) === (c.empty_layer ?? false);
  });
}

/** An RFC 3339 time as "<epoch seconds>.<nanoseconds>", so that equal instants compare equal. */
function timeKey(t: string): string {
  const m = /^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d{1,9}))?(Z|[+-]\d\d:\d\d)$/i.exec(t);
  const secs = m ? Date.parse(`${m[1]}${m[3]!.toUpperCase()}`) / 1000 : NaN;
  return Number.isNaN(secs) ? t : `${secs}.${(m![2] ?? '').padEnd(9, '0')}`;
}

/** The OCI media type of a layer blob from the type it was pulled as. */
function ociLayerType(mediaType: string): string {
  if (/zstd/.test(mediaType)) return `${MediaTypes.ociLayer}+zstd`;
  if (/gzip/.test(mediaType)) return `${MediaTypes.ociLayer}+gzip`;
  return MediaTypes.ociLayer;
}

export function normalizeConfig(c: Record<string, any> | undefined): Record<string, any> {
  const cfg = c ?? {};
  return {
    Hostname: '', Domainname: '', User: '', AttachStdin: false, AttachStdout: false, AttachStderr: false,
    ...(cfg.ExposedPorts ? {} : {}),
    Tty: false, OpenStdin: false, StdinOnce: false,
    Env: null, Cmd: null, Image: '', Volumes: null, WorkingDir: '', Entrypoint: null, OnBuild: null, Labels: null,
    ...cfg,
  };
}

function normalizeFilters(f: Record<string, any> | undefined): Record<string, string[]> {
  const out: Record<string, string[]> = {};
  for (const [k, v] of Object.entries(f ?? {})) out[k] = Array.isArray(v) ? v.map(String) : Object.keys(v ?? {}).filter((x) => (v as any)[x]);
  return out;
}

function matchLabel(labels: Record<string, string>, expr: string): boolean {
  const i = expr.indexOf('=');
  if (i < 0) return expr in labels;
  return labels[expr.slice(0, i)] === expr.slice(i + 1);
}

function globToRe(p: string): RegExp {
  return new RegExp('^' + p.replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '[^/]*').replace(/\?/g, '[^/]') + '$');
}

/** `reference` filter: pattern against name:tag, or against the name alone when it has no tag. */
function matchReference(pattern: string, familiarTag: string): boolean {
  const name = familiarTag.slice(0, familiarTag.lastIndexOf(':'));
  const re = globToRe(pattern);
  return re.test(familiarTag) || re.test(name);
}

function parseUntil(v: string): number {
  if (/^\d+(\.\d+)?$/.test(v)) return parseFloat(v) * 1000;
  const d = /^(\d+)(s|m|h)$/.exec(v);
  if (d) return Date.now() - Number(d[1]) * { s: 1000, m: 60000, h: 3600000 }[d[2] as 's' | 'm' | 'h'];
  const t = Date.parse(v);
  if (Number.isNaN(t)) throw new InvalidParameterError(`invalid until filter: ${v}`);
  return t;
}

/** Go duration ("30s", "1m30s", "500ms", "1.5h") -> nanoseconds. */
export function parseGoDuration(v: string): number {
  const units: Record<string, number> = { ns: 1, us: 1e3, 'µs': 1e3, ms: 1e6, s: 1e9, m: 60e9, h: 3600e9 };
  const re = /(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)/gy;
  let total = 0, m, pos = 0;
  if (v === '0') return 0;
  while ((m = re.exec(v))) { total += Number(m[1]) * units[m[2]]; pos = re.lastIndex; }
  if (pos !== v.length || v === '') throw new InvalidParameterError(`time: invalid duration "${v}"`);
  return Math.round(total);
}

/** `HEALTHCHECK [--interval=.. --timeout=.. --start-period=.. --start-interval=.. --retries=N] CMD ...` or `NONE`. */
export function parseHealthcheck(rest: string): Record<string, unknown> {
  let t = rest.trim();
  const h: Record<string, unknown> = {};
  const flags: Record<string, string> = { interval: 'Interval', timeout: 'Timeout', 'start-period': 'StartPeriod', 'start-interval': 'StartInterval' };
  let m;
  while ((m = /^--([a-z-]+)=(\S+)\s*/.exec(t))) {
    if (m[1] === 'retries') h.Retries = Number(m[2]);
    else if (flags[m[1]]) h[flags[m[1]]] = parseGoDuration(m[2]);
    else throw new InvalidParameterError(`Unknown flag: ${m[1]}`);
    t = t.slice(m[0].length);
  }
  const kind = /^(\w+)\s*(.*)$/s.exec(t);
  if (!kind) throw new InvalidParameterError('HEALTHCHECK requires a command or NONE');
  const type = kind[1].toUpperCase();
  if (type === 'NONE') return { Test: ['NONE'] };
  if (type !== 'CMD') throw new InvalidParameterError(`Unknown type "${type}" in HEALTHCHECK (try CMD)`);
  const cmd = kind[2].trim();
  if (cmd.startsWith('[')) {
    try { const a = JSON.parse(cmd); if (Array.isArray(a)) return { ...h, Test: ['CMD', ...a.map(String)] }; } catch { /* shell form */ }
  }
  return { ...h, Test: ['CMD-SHELL', cmd] };
}

/** Applies Dockerfile-style `changes` (CMD, ENTRYPOINT, ENV, EXPOSE, LABEL, USER, VOLUME, WORKDIR, STOPSIGNAL, ONBUILD, HEALTHCHECK). */
export function applyChanges(base: Record<string, any>, changes: string[]): Record<string, any> {
  const c: Record<string, any> = { ...base };
  const list = (rest: string): string[] => {
    const t = rest.trim();
    if (t.startsWith('[')) { try { const a = JSON.parse(t); if (Array.isArray(a)) return a.map(String); } catch { /* shell form */ } }
    return ['/bin/sh', '-c', t];
  };
  const words = (rest: string): string[] => {
    const t = rest.trim();
    if (t.startsWith('[')) { try { return (JSON.parse(t) as unknown[]).map(String); } catch { /* plain */ } }
    return t.split(/\s+/).filter(Boolean);
  };
  const kv = (rest: string): Array<[string, string]> => {
    const t = rest.trim();
    if (!/^[^\s=]+=/.test(t)) { const i = t.search(/\s/); return [[i < 0 ? t : t.slice(0, i), i < 0 ? '' : t.slice(i + 1).trim()]]; }
    const out: Array<[string, string]> = [];
    const re = /([^\s=]+)=("(?:[^"\\]|\\.)*"|'[^']*'|\S*)/g;
    let m;
    while ((m = re.exec(t))) { let v = m[2]; if (/^".*"$|^'.*'$/.test(v)) v = v.slice(1, -1).replace(/\\(.)/g, '$1'); out.push([m[1], v]); }
    return out;
  };
  for (const line of changes) {
    const m = /^\s*(\w+)\s*(.*)$/s.exec(line);
    if (!m) continue;
    const [, instr, rest] = m;
    switch (instr.toUpperCase()) {
      case 'CMD': c.Cmd = list(rest); break;
      case 'ENTRYPOINT': c.Entrypoint = list(rest); break;
      case 'ENV': { const env: string[] = [...(c.Env ?? [])]; for (const [k, v] of kv(rest)) { const i = env.findIndex((e) => e.split('=')[0] === k); if (i >= 0) env[i] = `${k}=${v}`; else env.push(`${k}=${v}`); } c.Env = env; break; }
      case 'LABEL': c.Labels = { ...(c.Labels ?? {}) }; for (const [k, v] of kv(rest)) c.Labels[k] = v; break;
      case 'EXPOSE': c.ExposedPorts = { ...(c.ExposedPorts ?? {}) }; for (const p of words(rest)) c.ExposedPorts[p.includes('/') ? p : `${p}/tcp`] = {}; break;
      case 'VOLUME': c.Volumes = { ...(c.Volumes ?? {}) }; for (const v of words(rest)) c.Volumes[v] = {}; break;
      case 'USER': c.User = rest.trim(); break;
      case 'WORKDIR': c.WorkingDir = rest.trim(); break;
      case 'STOPSIGNAL': c.StopSignal = rest.trim(); break;
      case 'ONBUILD': c.OnBuild = [...(c.OnBuild ?? []), rest.trim()]; break;
      case 'HEALTHCHECK': c.Healthcheck = parseHealthcheck(rest); break;
      default: throw new InvalidParameterError(`${instr} is not a valid change command`);
    }
  }
  return c;
}
