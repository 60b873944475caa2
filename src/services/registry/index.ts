// RegistryService: pull, push, login and distribution inspect against Distribution API v2
// registries, one RegistryClient per request (credentials come with each request).
import { dirname, join } from 'node:path';
import { InvalidParameterError, NotFoundError } from '../../errors.js';
import { familiarString, parseRef, splitDomain, type ImageRef } from '../../oci/image.js';
import type { DaemonConfig } from '../index.js';
import type { ImageService } from '../images.js';
import { parseRegistryAuth, type AuthConfig } from './auth.js';
import { RegistryClient, type RegistryOptions } from './client.js';
import { fetchManifest, platformManifest, pullRest, type Progress } from './pull.js';
import { push } from './push.js';
import { warmUnpacker } from '../../store/unpack.js';

export class RegistryService {
  private readonly opts: RegistryOptions;
  private readonly concurrency: number;
  private readonly attempts: number;
  private readonly uploads: number;
  private readonly tmpDir: string;

  constructor(config: DaemonConfig, private readonly images: ImageService) {
    const f = config.file as Record<string, any>;
    this.opts = {
      configDir: config.configFile ? dirname(config.configFile) : '/etc/berth',
      insecure: Array.isArray(f['insecure-registries']) ? f['insecure-registries'].map(String) : [],
      mirrors: Array.isArray(f['registry-mirrors']) ? f['registry-mirrors'].map(String) : [],
    };
    this.concurrency = Number(f['max-concurrent-downloads']) || 3;
    // tries per layer download, as the Engine's daemon.json option (default 5)
    this.uploads = Number(f['max-concurrent-uploads']) || 5;
    this.attempts = Math.max(1, Math.floor(Number(f['max-download-attempts']))) || 5;
    this.tmpDir = join(config.dataRoot, 'tmp');
  }

  private client(domain: string, auth: AuthConfig, mirror?: URL): RegistryClient { return new RegistryClient(domain, this.opts, auth, mirror); }

  /**
   * The manifest from the first endpoint that gives it: for docker.io the registry-mirrors in
   * order, then Docker Hub, as the Engine pulls and inspects (the same credentials go to each); any other
   * registry is its only endpoint. The error is the last endpoint's.
   */
  private async firstEndpoint(ref: ImageRef, auth: AuthConfig, scope: string): Promise<{ client: RegistryClient; top: Awaited<ReturnType<typeof fetchManifest>> }> {
    const { domain } = splitDomain(ref.repo);
    const mirrors = domain === 'docker.io' ? this.opts.mirrors.map((m) => new URL(m)) : [];
    for (const mirror of mirrors) {
      const client = this.client(domain, auth, mirror);
      try { return { client, top: await fetchManifest(client, ref, scope) }; } catch { await client.close(); }
    }
    const client = this.client(domain, auth);
    try { return { client, top: await fetchManifest(client, ref, scope) }; } catch (err) { await client.close(); throw err; }
  }

  private static parse(name: string, tag?: string): ImageRef {
    let ref: ImageRef;
    try {
      ref = parseRef(tag ? (/^sha256:/.test(tag) ? `${name}@${tag}` : `${name}:${tag}`) : name);
    } catch (e) { throw new InvalidParameterError((e as Error).message); }
    if (!ref.tag && !ref.digest) ref.tag = 'latest';
    return ref;
  }

  /**
   * docker pull. Everything that can fail before the first progress line (bad name, unknown
   * manifest, refused credentials) throws, so the route answers it as an HTTP error; the rest
   * reports through `progress` and returns the image ID.
   */
  async startPull(name: string, tag: string | undefined, authHeader: string | undefined, platform: string): Promise<(progress: Progress) => Promise<string>> {
    const ref = RegistryService.parse(name, tag);
    const { path } = splitDomain(ref.repo);
    const scope = `repository:${path}:pull`;
    warmUnpacker(); // started while the manifest is fetched (if it is not running yet)
    const { client, top } = await this.firstEndpoint(ref, parseRegistryAuth(authHeader), scope);
    return async (progress) => {
      try {
        const id = await pullRest({ client, images: this.images, ref, top, platform, scope, concurrency: this.concurrency, attempts: this.attempts, progress });
        this.images.publishEvent('pull', id, familiarString(ref));
        return id;
      } finally { await client.close(); }
    };
  }

  async push(name: string, tag: string | undefined, authHeader: string | undefined, progress: Progress): Promise<void> {
    const ref = RegistryService.parse(name, tag);
    if (ref.digest) throw new InvalidParameterError('cannot push a digest reference');
    try { this.images.find(familiarString(ref)); } catch { throw new NotFoundError(`tag does not exist: ${familiarString(ref)}`); }
    const { domain } = splitDomain(ref.repo);
    const client = this.client(domain, parseRegistryAuth(authHeader));
    try {
      const img = this.images.find(familiarString(ref));
      await push({ client, images: this.images, ref, tmpDir: this.tmpDir, concurrency: this.uploads, progress });
      this.images.publishEvent('push', img.Id, familiarString(ref));
    } finally { await client.close(); }
  }

  /** POST /auth. */
  async login(body: { username?: string; password?: string; serveraddress?: string; identitytoken?: string }): Promise<{ Status: string; IdentityToken: string }> {
    const server = (body.serveraddress || 'docker.io').replace(/^https?:\/\//, '').replace(/\/.*$/, '');
    const domain = /^(index\.)?docker\.io$/.test(server) ? 'docker.io' : server;
    const client = this.client(domain, body);
    try {
      await client.login();
    } finally { await client.close(); }
    return { Status: 'Login Succeeded', IdentityToken: '' };
  }

  /** GET /images/search: the registry's v1 search endpoint (docker.io when the term names no registry). */
  async search(term: string, limit: number, authHeader: string | undefined): Promise<Array<Record<string, unknown>>> {
    if (!term) throw new InvalidParameterError('search term is required');
    const first = term.split('/')[0]!;
    const hasDomain = term.includes('/') && (first.includes('.') || first.includes(':') || first === 'localhost');
    const domain = hasDomain ? first : 'docker.io';
    const q = hasDomain ? term.slice(first.length + 1) : term;
    const client = this.client(domain === 'docker.io' ? 'index.docker.io' : domain, parseRegistryAuth(authHeader));
    try {
      const res = await client.fetch(`/v1/search?q=${encodeURIComponent(q)}&n=${limit || 25}`, { scope: '' });
      const text = await res.body.text();
      if (res.status === 404) throw new NotFoundError(`registry ${domain} does not offer search (GET /v1/search answered 404)`);
      if (res.status >= 300) throw new InvalidParameterError(`search on ${domain} failed with status ${res.status}`);
      const body = JSON.parse(text) as { results?: Array<Record<string, any>> };
      return (body.results ?? []).slice(0, limit || 25).map((r) => ({
        name: hasDomain ? `${domain}/${r.name}` : r.name, description: r.description ?? '', star_count: r.star_count ?? 0,
        is_official: !!r.is_official, is_automated: !!r.is_automated,
      }));
    } finally { await client.close(); }
  }

  /** GET /distribution/{name}/json. */
  async inspect(name: string, authHeader: string | undefined): Promise<Record<string, unknown>> {
    const ref = RegistryService.parse(name);
    const { path } = splitDomain(ref.repo);
    const scope = `repository:${path}:pull`;
    const { client, top } = await this.firstEndpoint(ref, parseRegistryAuth(authHeader), scope);
    try {
      let platforms: Array<Record<string, string>>;
      if (Array.isArray(top.json.manifests)) {
        platforms = top.json.manifests.map((m: any) => ({ architecture: m.platform?.architecture ?? '', os: m.platform?.os ?? '', ...(m.platform?.variant ? { variant: m.platform.variant } : {}) }));
      } else {
        const m = await platformManifest(client, ref, top, '', scope);
        const cfgRes = await client.fetch(`/v2/${path}/blobs/${m.json.config.digest}`, { scope });
        const cfg = JSON.parse(await cfgRes.body.text());
        platforms = [{ architecture: cfg.architecture ?? '', os: cfg.os ?? '' }];
      }
      return { Descriptor: { mediaType: top.mediaType, digest: top.digest, size: top.bytes.length }, Platforms: platforms };
    } finally { await client.close(); }
  }
}
