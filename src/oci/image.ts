// Image formats: Docker v2 / OCI media types, manifest, index and config shapes, chain IDs,
// and Docker-style image reference parsing. Pure functions, no I/O.
import { createHash } from 'node:crypto';

export const MediaTypes = {
  dockerManifest: 'application/vnd.docker.distribution.manifest.v2+json',
  dockerManifestList: 'application/vnd.docker.distribution.manifest.list.v2+json',
  dockerConfig: 'application/vnd.docker.container.image.v1+json',
  dockerLayer: 'application/vnd.docker.image.rootfs.diff.tar.gzip',
  ociManifest: 'application/vnd.oci.image.manifest.v1+json',
  ociIndex: 'application/vnd.oci.image.index.v1+json',
  ociConfig: 'application/vnd.oci.image.config.v1+json',
  ociLayer: 'application/vnd.oci.image.layer.v1.tar',
  ociLayerGzip: 'application/vnd.oci.image.layer.v1.tar+gzip',
  ociLayerZstd: 'application/vnd.oci.image.layer.v1.tar+zstd',
} as const;

export interface Descriptor {
  mediaType: string;
  digest: string;
  size: number;
  annotations?: Record<string, string>;
  platform?: { architecture: string; os: string; variant?: string };
}

export interface ImageManifest {
  schemaVersion: 2;
  mediaType?: string;
  config: Descriptor;
  layers: Descriptor[];
  annotations?: Record<string, string>;
}

export interface ImageIndex {
  schemaVersion: 2;
  mediaType?: string;
  manifests: Descriptor[];
  annotations?: Record<string, string>;
}

export interface HistoryEntry {
  created?: string;
  created_by?: string;
  author?: string;
  comment?: string;
  empty_layer?: boolean;
}

/** The image config blob (OCI image-spec config, Docker's superset). */
export interface ImageConfigBlob {
  architecture: string;
  os: string;
  variant?: string;
  created?: string;
  author?: string;
  comment?: string;
  parent?: string;
  docker_version?: string;
  config?: Record<string, any>;
  container_config?: Record<string, any>;
  rootfs: { type: 'layers'; diff_ids: string[] };
  history?: HistoryEntry[];
}

export const sha256 = (data: string | Uint8Array): string => 'sha256:' + createHash('sha256').update(data).digest('hex');

const DIGEST_RE = /^sha256:[a-f0-9]{64}$/;
export const isDigest = (s: string): boolean => DIGEST_RE.test(s);

/** The 12-hex-digit short form of a digest or ID, as the Engine prints them (progress ids, build steps). */
export const shortId = (digest: string): string => digest.replace(/^sha256:/, '').slice(0, 12);

/** chainID(L0) = diffID(L0); chainID(Ln) = sha256(chainID(Ln-1) + " " + diffID(Ln)). */
export function chainIds(diffIds: string[]): string[] {
  const out: string[] = [];
  for (const d of diffIds) out.push(out.length === 0 ? d : sha256(`${out[out.length - 1]} ${d}`));
  return out;
}

// --- references -------------------------------------------------------------------------

export interface ImageRef {
  /** Fully qualified repository, e.g. docker.io/library/busybox */
  repo: string;
  tag?: string;
  digest?: string;
}

const DEFAULT_DOMAIN = 'docker.io';
const PATH_COMPONENT = /^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$/;
const TAG_RE = /^[\w][\w.-]{0,127}$/;
const DOMAIN_RE = /^(?:[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?)(?:\.(?:[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?))*(?::[0-9]+)?$|^\[[0-9a-fA-F:]+\](?::[0-9]+)?$/;

export class RefError extends Error {}

/** Parses like Docker's ParseNormalizedNamed; throws RefError with the Engine's wording. */
export function parseRef(input: string): ImageRef {
  if (!input) throw new RefError('invalid reference format');
  let rest = input;
  let digest: string | undefined;
  const at = rest.indexOf('@');
  if (at >= 0) {
    digest = rest.slice(at + 1);
    rest = rest.slice(0, at);
    if (!/^[a-z0-9]+(?:[.+_-][a-z0-9]+)*:[a-zA-Z0-9=_-]+$/.test(digest) || (digest.startsWith('sha256:') && !isDigest(digest))) {
      throw new RefError('invalid reference format');
    }
  }
  let tag: string | undefined;
  const lastColon = rest.lastIndexOf(':');
  if (lastColon > rest.lastIndexOf('/')) {
    tag = rest.slice(lastColon + 1);
    rest = rest.slice(0, lastColon);
    if (!TAG_RE.test(tag)) throw new RefError('invalid reference format');
  }
  if (/^[a-f0-9]{64}$/.test(rest)) {
    throw new RefError('invalid repository name (' + rest + '), cannot specify 64-byte hexadecimal strings');
  }
  let domain = DEFAULT_DOMAIN;
  let path = rest;
  const slash = rest.indexOf('/');
  if (slash >= 0) {
    const first = rest.slice(0, slash);
    if (first.includes('.') || first.includes(':') || first === 'localhost' || first !== first.toLowerCase()) {
      domain = first;
      path = rest.slice(slash + 1);
    }
  }
  if (domain === 'index.docker.io') domain = DEFAULT_DOMAIN;
  if (!DOMAIN_RE.test(domain)) throw new RefError('invalid reference format');
  if (path !== path.toLowerCase()) throw new RefError('invalid reference format: repository name (' + path + ') must be lowercase');
  const parts = path.split('/');
  if (!parts.every((p) => PATH_COMPONENT.test(p))) throw new RefError('invalid reference format');
  if (domain === DEFAULT_DOMAIN && parts.length === 1) path = 'library/' + path;
  const repo = `${domain}/${path}`;
  if (repo.length > 255) throw new RefError('invalid reference format: repository name must not be more than 255 characters');
  return { repo, tag, digest };
}

/** Parses and adds the default tag "latest" when neither tag nor digest is given. */
export function parseRefWithDefaultTag(input: string): ImageRef {
  const r = parseRef(input);
  if (!r.tag && !r.digest) r.tag = 'latest';
  return r;
}

/** The short form the Engine shows: docker.io/library/x → x, docker.io/u/x → u/x. */
export function familiarRepo(repo: string): string {
  if (repo.startsWith('docker.io/library/')) return repo.slice('docker.io/library/'.length);
  if (repo.startsWith('docker.io/')) return repo.slice('docker.io/'.length);
  return repo;
}

/** "busybox:latest" / "registry:5000/x@sha256:..." */
export function familiarString(r: ImageRef): string {
  let s = familiarRepo(r.repo);
  if (r.tag) s += ':' + r.tag;
  if (r.digest) s += '@' + r.digest;
  return s;
}

/** Canonical key for the tag index: full repo + ":" + tag, or "@" + digest. */
export function refKey(r: ImageRef): string {
  return r.digest ? `${r.repo}@${r.digest}` : `${r.repo}:${r.tag ?? 'latest'}`;
}

/** Registry domain and the path within it, for the registry client. */
export function splitDomain(repo: string): { domain: string; path: string } {
  const i = repo.indexOf('/');
  return { domain: repo.slice(0, i), path: repo.slice(i + 1) };
}
