// Reads a `docker save` archive (manifest.json layout, with or without the OCI index.json that
// current docker adds) into a scratch directory, and writes one in the layout current docker
// writes. Archive entry names are untrusted: they are flattened to safe names inside the scratch
// dir, only regular files and symlinks (old layouts link duplicate layer.tar files) are kept.
import { createReadStream, createWriteStream, promises as fsp } from 'node:fs';
import { join, posix } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import tar from 'tar-stream';
import { maybeDecompress, safeComponents } from '../oci/tar-extract.js';
import { InvalidParameterError } from '../errors.js';

/** parent: manifest.json's Parent (an image ID), the Engine's link to an image saved with it. */
export interface ArchiveImage { config: string; repoTags: string[]; layers: string[]; parent?: string }

export class ScratchArchive {
  private readonly files = new Map<string, string>(); // archive path → scratch file
  private readonly links = new Map<string, string>(); // archive path → archive path
  private n = 0;
  constructor(readonly dir: string) {}

  async ingest(input: Readable): Promise<void> {
    const ex = tar.extract();
    const done = pipeline(maybeDecompress(input), ex);
    // a truncated archive fails both the pipeline and the loop below: the loop's error is the
    // one reported, the pipeline's must not surface as an unhandled rejection meanwhile
    done.catch(() => {});
    for await (const entry of ex) {
      const h = entry.header;
      const name = safeComponents(h.name).join('/');
      if (h.type === 'file' || h.type === 'contiguous-file') {
        const p = join(this.dir, String(this.n++));
        await pipeline(entry, createWriteStream(p));
        this.files.set(name, p);
      } else {
        if (h.type === 'symlink' || h.type === 'link') {
          const target = h.type === 'symlink' ? posix.join(posix.dirname(name), h.linkname ?? '') : (h.linkname ?? '');
          this.links.set(name, safeComponents(target).join('/'));
        }
        entry.resume();
      }
    }
    await done;
  }

  resolve(name: string): string | undefined {
    let cur = safeComponents(name).join('/');
    for (let i = 0; i < 16; i++) {
      const f = this.files.get(cur);
      if (f) return f;
      const l = this.links.get(cur);
      if (!l) return undefined;
      cur = l;
    }
    return undefined;
  }

  async json<T>(name: string): Promise<T | undefined> {
    const p = this.resolve(name);
    if (!p) return undefined;
    try { return JSON.parse(await fsp.readFile(p, 'utf8')) as T; } catch { throw new InvalidParameterError(`invalid JSON in archive: ${name}`); }
  }

  open(name: string): Readable {
    const p = this.resolve(name);
    if (!p) throw new InvalidParameterError(`archive is missing ${name}`);
    return createReadStream(p);
  }

  async readBytes(name: string): Promise<Buffer> {
    const p = this.resolve(name);
    if (!p) throw new InvalidParameterError(`archive is missing ${name}`);
    return fsp.readFile(p);
  }

  /** The images in the archive: from manifest.json, else from an OCI index.json. */
  async images(): Promise<ArchiveImage[]> {
    const manifest = await this.json<Array<{ Config: string; RepoTags?: string[] | null; Layers: string[]; Parent?: unknown }>>('manifest.json');
    if (manifest) {
      if (!Array.isArray(manifest)) throw new InvalidParameterError('invalid manifest.json in archive');
      return manifest.map((m) => ({
        config: m.Config, repoTags: m.RepoTags ?? [], layers: m.Layers ?? [],
        ...(typeof m.Parent === 'string' && m.Parent ? { parent: m.Parent } : {}),
      }));
    }
    const index = await this.json<{ manifests: Array<{ digest: string; annotations?: Record<string, string> }> }>('index.json');
    if (!index) throw new InvalidParameterError('invalid tar: no manifest.json or index.json in archive');
    const out: ArchiveImage[] = [];
    const blob = (d: string): string => `blobs/${d.replace(':', '/')}`;
    const visit = async (digest: string, name?: string): Promise<void> => {
      const m = await this.json<any>(blob(digest));
      if (!m) throw new InvalidParameterError(`archive is missing blob ${digest}`);
      if (Array.isArray(m.manifests)) { for (const d of m.manifests) await visit(d.digest, name); return; }
      out.push({ config: blob(m.config.digest), repoTags: name ? [name] : [], layers: m.layers.map((l: any) => blob(l.digest)) });
    };
    for (const d of index.manifests) {
      const name = d.annotations?.['io.containerd.image.name'];
      await visit(d.digest, name);
    }
    return out;
  }
}

export interface SaveEntry { name: string; data?: Buffer | string; file?: string; size?: number }

/** Writes a tar of the given entries (mtimes 0, root-owned, 0644 files, 0755 dirs). */
export function packArchive(entries: SaveEntry[]): Readable {
  const pack = tar.pack();
  (async () => {
    const dirs = new Set<string>();
    for (const e of entries) {
      const parts = e.name.split('/');
      for (let i = 1; i < parts.length; i++) {
        const d = parts.slice(0, i).join('/');
        if (!dirs.has(d)) { dirs.add(d); pack.entry({ name: d + '/', type: 'directory', mode: 0o755, mtime: new Date(0), uid: 0, gid: 0 }).on('error', () => {}); }
      }
      const base = { name: e.name, mode: 0o644, mtime: new Date(0), uid: 0, gid: 0 };
      if (e.file) {
        const size = e.size ?? (await fsp.stat(e.file)).size;
        const w = pack.entry({ ...base, size });
        await pipeline(createReadStream(e.file), w);
      } else {
        // errors come through the callback; the entry stream's own 'error' (reader gone) must not end the process
        await new Promise<void>((res, rej) => pack.entry(base, Buffer.from(e.data ?? ''), (err) => (err ? rej(err) : res())).on('error', () => {}));
      }
    }
    pack.finalize();
  })().catch((err) => pack.destroy(err));
  return pack as unknown as Readable;
}
