// docker push: each layer as its gzipped blob (a pulled layer's blob as it was downloaded;
// others gzipped deterministically, so a second push finds them), checked with HEAD, mounted
// from the repository it was pulled from when that is on the same registry (uploaded when the
// registry refuses), uploaded when missing, max-concurrent-uploads (default 5) layers at a time;
// then the config and a schema 2 manifest under the tag.
import { createHash, randomBytes } from 'node:crypto';
import { createReadStream, createWriteStream, promises as fsp } from 'node:fs';
import { join } from 'node:path';
import { Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createGzip } from 'node:zlib';
import { SystemError, UnauthorizedError } from '../../errors.js';
import { familiarString, shortId, splitDomain, type ImageRef } from '../../oci/image.js';
import type { ImageService } from '../images.js';
import type { RegistryClient } from './client.js';
import { limited } from './limited.js';
import { MEDIA, type Progress } from './pull.js';


/**
 * Digest and size of the gzip of each layer compressed by a push so far (diffID → blob), so
 * that pushing it again, elsewhere or under another tag, asks the registry before compressing.
 * The compression is deterministic: the same layer always gives the same blob.
 */
const gzipped = new Map<string, { digest: string; size: number }>();

async function blobExists(client: RegistryClient, path: string, digest: string, scope: string): Promise<boolean> {
  const res = await client.fetch(`/v2/${path}/blobs/${digest}`, { method: 'HEAD', scope });
  await res.body.dump();
  if (res.status === 401 || res.status === 403) throw new UnauthorizedError('unauthorized: authentication required');
  return res.status === 200;
}

/**
 * Starts an upload session; with `mount`, asks the registry to mount the blob from that
 * repository instead: true when it did (nothing to upload), null when the request was refused
 * (no pull access on the source fails the whole request).
 */
async function startUpload(client: RegistryClient, path: string, scope: string, mount?: { digest: string; from: string }): Promise<string | true | null> {
  const q = mount ? `?mount=${encodeURIComponent(mount.digest)}&from=${encodeURIComponent(mount.from)}` : '';
  const start = await client.fetch(`/v2/${path}/blobs/uploads/${q}`, { method: 'POST', scope, headers: { 'content-length': '0' } });
  await start.body.dump();
  if ((start.status === 401 || start.status === 403) && mount) return null;
  if (start.status === 401 || start.status === 403) throw new UnauthorizedError('unauthorized: authentication required');
  if (mount && start.status === 201) return true;
  if (start.status !== 202 || !start.headers.location) throw new SystemError(`starting a blob upload: registry answered ${start.status}`);
  return start.headers.location as string;
}

async function upload(client: RegistryClient, path: string, digest: string, size: number, body: () => NodeJS.ReadableStream | Buffer, scope: string, location?: string): Promise<void> {
  const loc = location ?? await startUpload(client, path, scope) as string; // never true or null without a mount
  const u = new URL(loc, 'http://registry.invalid');
  u.searchParams.set('digest', digest);
  const target = /^https?:/.test(loc) ? u.toString() : `${u.pathname}${u.search}`;
  const res = await client.fetch(target, {
    method: 'PUT', scope, body: body(), headers: { 'content-type': 'application/octet-stream', 'content-length': String(size) },
  });
  const text = await res.body.text();
  if (res.status !== 201) throw new SystemError(`uploading blob ${digest}: registry answered ${res.status} ${text.slice(0, 200)}`);
}

export async function push(o: { client: RegistryClient; images: ImageService; ref: ImageRef; tmpDir: string; concurrency: number; progress: Progress }): Promise<string> {
  const { client, images, ref, progress } = o;
  const { path } = splitDomain(ref.repo);
  const scope = `repository:${path}:pull,push`;
  const img = images.find(familiarString(ref));
  const cfgBytes = await images.content.readBytes(img.Id);
  const cfg = JSON.parse(cfgBytes.toString('utf8'));
  const diffIds: string[] = cfg.rootfs?.diff_ids ?? [];
  progress({ status: `The push refers to repository [${familiarString({ repo: ref.repo })}]` });
  for (const d of [...diffIds].reverse()) progress({ status: 'Preparing', progressDetail: {}, id: shortId(d) });

  const work = join(o.tmpDir, `push-${randomBytes(6).toString('hex')}`);
  await fsp.mkdir(work, { recursive: true, mode: 0o700 });
  try {
    const layers: Array<{ mediaType: string; size: number; digest: string }> = [];
    const { domain } = splitDomain(ref.repo);
    // `concurrency` layers at a time (daemon.json max-concurrent-uploads), the others wait
    for (const d of diffIds.slice(o.concurrency)) progress({ status: 'Waiting', progressDetail: {}, id: shortId(d) });
    await limited(diffIds.map((diffId, i) => ({ diffId, i })), o.concurrency, async ({ diffId, i }) => {
      const blob = img.ChainIds[i] ? images.layerBlob(img.ChainIds[i]!) : { digest: diffId, size: -1, mediaType: '' };
      let file: string, digest: string, size: number;
      const known = gzipped.get(diffId);
      if (known && await blobExists(client, path, known.digest, scope)) {
        // compressed for an earlier push and the registry has it: nothing to compress again
        layers[i] = { mediaType: MEDIA.dockerLayerGzip, size: known.size, digest: known.digest };
        progress({ status: 'Layer already exists', progressDetail: {}, id: shortId(diffId) });
        return;
      }
      if (/gzip/.test(blob.mediaType) && blob.digest !== diffId) {
        // pulled: the blob as it was downloaded, no recompression
        file = images.content.path(blob.digest);
        digest = blob.digest;
        size = blob.size >= 0 ? blob.size : await images.content.size(blob.digest);
      } else {
        file = join(work, shortId(diffId));
        const hash = createHash('sha256');
        let n = 0;
        const meter = new Transform({ transform(c, _e, cb) { hash.update(c); n += c.length; cb(null, c); } });
        await pipeline(createReadStream(images.content.path(blob.digest)), createGzip({ level: 6 }), meter, createWriteStream(file));
        digest = `sha256:${hash.digest('hex')}`;
        size = n;
        gzipped.set(diffId, { digest, size });
      }
      layers[i] = { mediaType: MEDIA.dockerLayerGzip, size, digest };
      if (await blobExists(client, path, digest, scope)) {
        progress({ status: 'Layer already exists', progressDetail: {}, id: shortId(diffId) });
        return;
      }
      let location: string | undefined;
      if (blob.from && digest === blob.digest && blob.from !== ref.repo && splitDomain(blob.from).domain === domain) {
        const from = splitDomain(blob.from).path;
        // the registry checks pull access on the source too, so the token must grant both
        const r = await startUpload(client, path, `${scope} repository:${from}:pull`, { digest, from });
        if (r === true) {
          progress({ status: `Mounted from ${from}`, progressDetail: {}, id: shortId(diffId) });
          return;
        }
        location = r ?? undefined; // not mounted: the session it opened (if any) takes the upload
      }
      progress({ status: 'Pushing', progressDetail: { current: 0, total: size }, id: shortId(diffId) });
      await upload(client, path, digest, size, () => createReadStream(file), scope, location);
      progress({ status: 'Pushing', progressDetail: { current: size, total: size }, id: shortId(diffId) });
      progress({ status: 'Pushed', progressDetail: {}, id: shortId(diffId) });
    });
    if (!(await blobExists(client, path, img.Id, scope))) await upload(client, path, img.Id, cfgBytes.length, () => cfgBytes, scope);
    const manifest = Buffer.from(JSON.stringify({
      schemaVersion: 2, mediaType: MEDIA.dockerManifest,
      config: { mediaType: MEDIA.dockerConfig, size: cfgBytes.length, digest: img.Id },
      layers,
    }, null, 3));
    const tag = ref.tag ?? 'latest';
    const res = await client.fetch(`/v2/${path}/manifests/${tag}`, { method: 'PUT', scope, body: manifest, headers: { 'content-type': MEDIA.dockerManifest } });
    const text = await res.body.text();
    if (res.status === 401 || res.status === 403) throw new UnauthorizedError('unauthorized: authentication required');
    if (res.status !== 201) throw new SystemError(`pushing the manifest: registry answered ${res.status} ${text.slice(0, 200)}`);
    const digest = `sha256:${createHash('sha256').update(manifest).digest('hex')}`;
    await images.store.setRef(`${ref.repo}@${digest}`, img.Id, true, new Date().toISOString());
    progress({ status: `${tag}: digest: ${digest} size: ${manifest.length}` });
    progress({ progressDetail: {}, aux: { Tag: tag, Digest: digest, Size: manifest.length } });
    return digest;
  } finally {
    await fsp.rm(work, { recursive: true, force: true }).catch(() => {});
  }
}
