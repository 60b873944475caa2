// docker pull: manifest (by tag or digest; an index resolved to the wanted platform), config,
// then layers downloaded in parallel, each verified, decompressed, stored and unpacked while it
// downloads (under temp names, by the unpacker, which makes the download: store/unpack.ts),
// then one syncfs and the layers made visible bottom-up, with the Engine's progress messages.
// A cut download is resumed after a wait, as the Engine retries; a blob that does not match
// its digest, or a download that fails for good, fails the pull and nothing of it is kept.
import { InvalidParameterError, NotFoundError, SystemError } from '../../errors.js';
import { chainIds, familiarString, refKey, sha256, shortId, splitDomain, type ImageRef } from '../../oci/image.js';
import type { ImageService, PreparedLayer } from '../images.js';
import { syncFilesystem } from '../../store/atomic.js';
import { DigestMismatchError } from '../../store/content.js';
import { CorruptArchiveError } from '../../oci/tar-extract.js';
import { DownloadError, type DownloadEvents } from './blob-download.js';
import type { RegistryClient } from './client.js';
import { limited } from './limited.js';

export const MEDIA = {
  dockerManifest: 'application/vnd.docker.distribution.manifest.v2+json',
  dockerList: 'application/vnd.docker.distribution.manifest.list.v2+json',
  ociManifest: 'application/vnd.oci.image.manifest.v1+json',
  ociIndex: 'application/vnd.oci.image.index.v1+json',
  dockerConfig: 'application/vnd.docker.container.image.v1+json',
  dockerLayerGzip: 'application/vnd.docker.image.rootfs.diff.tar.gzip',
};
const ACCEPT = [MEDIA.dockerManifest, MEDIA.dockerList, MEDIA.ociManifest, MEDIA.ociIndex].join(', ');

export type Progress = (m: Record<string, unknown>) => void;

export interface ResolvedManifest { digest: string; mediaType: string; bytes: Buffer; json: any }

/** GET the manifest for a tag or digest; the digest checked when asked by digest. */
export async function fetchManifest(client: RegistryClient, ref: ImageRef, scope: string): Promise<ResolvedManifest> {
  const { path } = splitDomain(ref.repo);
  const reference = ref.digest ?? ref.tag ?? 'latest';
  const res = await client.fetch(`/v2/${path}/manifests/${reference}`, { headers: { accept: ACCEPT }, scope });
  const bytes = Buffer.from(await res.body.arrayBuffer());
  const name = familiarString(ref);
  if (res.status === 404) throw new NotFoundError(`manifest for ${name} not found: manifest unknown: manifest unknown`);
  // a 404 as the Engine answers it (a 401 would make the CLI prompt for credentials)
  if (res.status === 401 || res.status === 403) throw new NotFoundError(`pull access denied for ${familiarString({ repo: ref.repo })}, repository does not exist or may require 'docker login': denied: requested access to the resource is denied`);
  if (res.status >= 300) throw new SystemError(`error fetching manifest for ${name}: registry answered ${res.status}`);
  if (bytes.length > 4 << 20) throw new InvalidParameterError(`manifest for ${name} is too large`);
  const digest = sha256(bytes);
  if (ref.digest && ref.digest !== digest) throw new InvalidParameterError(`manifest verification failed for digest ${ref.digest}`);
  let json: any;
  try { json = JSON.parse(bytes.toString('utf8')); } catch { throw new InvalidParameterError(`invalid manifest for ${name}`); }
  const mediaType = json.mediaType || res.headers['content-type']?.split(';')[0] || MEDIA.ociManifest;
  return { digest: res.headers['docker-content-digest'] && !ref.digest ? res.headers['docker-content-digest'] : digest, mediaType, bytes, json };
}

/** An index or manifest list resolved to the platform's manifest. */
export async function platformManifest(client: RegistryClient, ref: ImageRef, top: ResolvedManifest, platform: string, scope: string): Promise<ResolvedManifest> {
  if (!Array.isArray(top.json.manifests)) return top;
  const [os, arch, variant] = (platform || 'linux/amd64').split('/');
  const pick = top.json.manifests.find((m: any) => m.platform?.os === os && m.platform?.architecture === arch && (!variant || m.platform?.variant === variant));
  if (!pick) throw new NotFoundError(`no matching manifest for ${platform || 'linux/amd64'} in the manifest list entries`);
  return fetchManifest(client, { repo: ref.repo, digest: pick.digest }, scope);
}

/**
 * Downloads a layer and, in the same pass, checks the compressed bytes against the manifest's
 * digest, stores them as they came as the layer's blob, decompresses and unpacks them
 * (ImageService.prepareLayer), all under temp names, by the unpacker, which makes the
 * download itself (a cut connection is resumed up to `attempts` tries). A
 * digest or diff ID mismatch, a corrupt stream or a download that fails for good keeps nothing.
 */
async function fetchLayer(o: {
  client: RegistryClient; images: ImageService; repo: string; path: string; desc: { digest: string; size?: number; mediaType?: string }; diffId: string;
  parent: string | null; scope: string; signal: AbortSignal; attempts: number; events: DownloadEvents;
}): Promise<PreparedLayer> {
  const { desc } = o;
  const blobPath = `/v2/${o.path}/blobs/${desc.digest}`;
  const blob = { digest: desc.digest, mediaType: desc.mediaType ?? MEDIA.dockerLayerGzip, from: o.repo };
  for (let reauth = true; ; reauth = false) {
    const download = { ...await o.client.requestFor(blobPath, o.scope), size: desc.size, attempts: o.attempts, retryDelayMs: RETRY_DELAY_MS };
    try {
      return await o.images.prepareLayer({ download, signal: o.signal, events: o.events }, o.parent, o.diffId, { blob });
    } catch (err) {
      if (o.signal.aborted) throw o.signal.reason ?? err;
      if (err instanceof DownloadError) {
        if (err.status === 401 && reauth) {
          // credentials the worker had no longer do (an expired token): answered again here
          await (await o.client.fetch(blobPath, { method: 'HEAD', scope: o.scope, signal: o.signal })).body.dump().catch(() => {});
          continue;
        }
        throw new SystemError(`error pulling blob ${desc.digest}: ${err.message}`);
      }
      if (err instanceof DigestMismatchError || err instanceof CorruptArchiveError || /incorrect header|incorrect data check|invalid|unexpected end|data error|Unexpected end|truncated/i.test(String((err as Error).message))) {
        throw new InvalidParameterError(`filesystem layer verification failed for digest ${desc.digest}`);
      }
      throw err;
    }
  }
}

/** Least time between two `Downloading` messages of a layer. */
const PROGRESS_MS = 100;

/** Retry n of a layer download waits n times this, as the Engine does. */
const RETRY_DELAY_MS = 5000;

/** After fetchManifest succeeded (errors before this point are plain HTTP errors): the rest, with progress. */
export async function pullRest(o: {
  client: RegistryClient; images: ImageService; ref: ImageRef; top: ResolvedManifest; platform: string; scope: string;
  concurrency: number; attempts: number; progress: Progress;
}): Promise<string> {
  const { client, images, ref, top, progress } = o;
  const { path } = splitDomain(ref.repo);
  const name = familiarString(ref);
  progress({ status: `Pulling from ${familiarString({ repo: ref.repo }).replace(/^[^/]*[.:][^/]*\//, '')}`, id: ref.tag ?? ref.digest ?? 'latest' });
  const manifest = await platformManifest(client, ref, top, o.platform, o.scope);
  const layersDesc: Array<{ digest: string; size?: number; mediaType?: string }> = manifest.json.layers ?? [];
  if (!manifest.json.config?.digest) throw new InvalidParameterError(`unsupported manifest for ${name} (schema 1 manifests are not supported)`);

  const cfgRes = await client.fetch(`/v2/${path}/blobs/${manifest.json.config.digest}`, { scope: o.scope });
  const cfgBytes = Buffer.from(await cfgRes.body.arrayBuffer());
  if (cfgRes.status >= 300) throw new SystemError(`error pulling image configuration: registry answered ${cfgRes.status}`);
  if (sha256(cfgBytes) !== manifest.json.config.digest) throw new InvalidParameterError(`image config verification failed for digest ${manifest.json.config.digest}`);
  const cfg = JSON.parse(cfgBytes.toString('utf8'));
  const diffIds: string[] = cfg.rootfs?.diff_ids ?? [];
  if (diffIds.length !== layersDesc.length) throw new InvalidParameterError(`image config and manifest of ${name} disagree on the number of layers`);
  const chains = chainIds(diffIds);
  const existedBefore = images.store.get(sha256(cfgBytes));
  const tagKey = ref.tag ? refKey(ref) : undefined;
  const upToDate = !!existedBefore && (!tagKey || images.store.byRef(tagKey)?.Id === existedBefore.Id);

  const present = chains.map((c) => images.layers.has(c));
  for (let i = 0; i < layersDesc.length; i++) progress({ status: present[i] ? 'Already exists' : 'Pulling fs layer', progressDetail: {}, id: shortId(layersDesc[i]!.digest) });

  images.pin(chains); // a concurrent rmi must not collect the layers before the image exists
  const stop = new AbortController();
  const prepared: Array<PreparedLayer | undefined> = [];
  try {
    // every missing layer downloaded, verified and unpacked in one pass, `concurrency` at a time
    const todo = layersDesc.map((d, i) => ({ d, i })).filter((x) => !present[x.i]);
    for (const { d } of todo.slice(o.concurrency)) progress({ status: 'Waiting', progressDetail: {}, id: shortId(d.digest) });
    await limited(todo, o.concurrency, async ({ d, i }) => {
      let last = 0;
      let lastAt = 0;
      try {
        prepared[i] = await fetchLayer({
          client, images, repo: ref.repo, path, desc: d, diffId: diffIds[i]!, parent: i > 0 ? chains[i - 1]! : null, scope: o.scope, signal: stop.signal,
          attempts: o.attempts,
          events: {
            bytes: (n) => {
              // at most ten updates a second per layer, as the Engine sends them: each is a write
              // to the client, and on a loaded machine hundreds of them cost more than they show
              if (n !== d.size && (n - last < 256 * 1024 || Date.now() - lastAt < PROGRESS_MS)) return;
              last = n;
              lastAt = Date.now();
              progress({ status: 'Downloading', progressDetail: { current: n, total: d.size ?? 0 }, id: shortId(d.digest) });
            },
            retry: (seconds) => progress({ status: `Retrying in ${seconds} second${seconds === 1 ? '' : 's'}`, progressDetail: {}, id: shortId(d.digest) }),
          },
        });
      } catch (err) {
        stop.abort(err); // the other downloads stop too
        throw err;
      }
      progress({ status: 'Verifying Checksum', progressDetail: {}, id: shortId(d.digest) });
      progress({ status: 'Download complete', progressDetail: {}, id: shortId(d.digest) });
    });
    // one flush for everything written (a flush while layers were still written measured slower:
    // the writes wait on the writeback), then the layers made visible bottom-up
    if (todo.length) await syncFilesystem(images.layers.dir);
    for (const { d, i } of todo) {
      const id = shortId(d.digest);
      const p = prepared[i]!;
      progress({ status: 'Extracting', progressDetail: { current: d.size ?? p.size, total: d.size ?? p.size }, id });
      await p.commit();
      prepared[i] = undefined;
      progress({ status: 'Pull complete', progressDetail: {}, id });
    }
    if (todo.length) await images.flushLayerDirs();
    const img = await images.addImage(cfgBytes, ref.tag ? [familiarString({ repo: ref.repo, tag: ref.tag })] : []);
    await images.store.setRef(refKey({ repo: ref.repo, digest: top.digest }), img.Id, true, new Date().toISOString());
    progress({ status: `Digest: ${top.digest}` });
    progress({ status: upToDate ? `Status: Image is up to date for ${name}` : `Status: Downloaded newer image for ${name}` });
    return img.Id;
  } catch (err) {
    stop.abort(err);
    await Promise.all(prepared.map((p) => p?.abort().catch(() => {})));
    await images.dropLayersIfUnused(chains.filter((_c, i) => !present[i])).catch(() => {});
    throw err;
  } finally {
    images.unpin(chains);
  }
}
