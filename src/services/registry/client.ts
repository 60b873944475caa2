// Talks to one registry (Distribution API v2) with undici: HTTPS with the registry's own CA from
// <config-dir>/certs.d/<host:port>/ca.crt (as the Engine reads /etc/docker/certs.d), plain HTTP
// for insecure registries (daemon.json insecure-registries, and 127.0.0.0/8 as the Engine
// allows), and the auth challenge answered with Basic credentials or a Bearer token.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Agent, interceptors, request, type Dispatcher } from 'undici';
import { SystemError, UnauthorizedError } from '../../errors.js';
import { basicHeader, parseChallenge, scopeKey, tokenUrl, type AuthConfig } from './auth.js';

export interface RegistryOptions {
  /** Directory holding certs.d/. */
  configDir: string;
  insecure: string[];
  mirrors: string[];
}

export interface Response { status: number; headers: Record<string, string>; body: Dispatcher.ResponseData['body'] }

/** docker.io's API endpoint. */
const DOCKER_HUB = 'registry-1.docker.io';

export class RegistryClient {
  private readonly agent: Dispatcher;
  private readonly base_: Agent;
  private scheme: 'https' | 'http' | undefined;
  /** Bearer tokens by scope set (scopeKey): a mount's combined scope and the push scope alternate. */
  private readonly tokens = new Map<string, string>();
  private basic = false;
  /** The registry's own CA (certs.d), if it has one. */
  private readonly ca: Buffer | undefined;

  /**
   * `mirror`: talk to this endpoint instead of the domain's own (a registry-mirrors entry for
   * docker.io): its scheme is used as given, its path is put before /v2/, and its CA comes
   * from certs.d/<mirror host>.
   */
  constructor(readonly domain: string, private readonly o: RegistryOptions, private readonly auth: AuthConfig, private readonly mirror?: URL) {
    if (mirror) this.scheme = mirror.protocol === 'http:' ? 'http' : 'https';
    let ca: Buffer | undefined;
    try { ca = readFileSync(join(o.configDir, 'certs.d', mirror?.host ?? domain, 'ca.crt')); } catch { /* system CAs */ }
    this.ca = ca;
    this.base_ = new Agent({ connect: ca ? { ca } : {}, connections: 8, bodyTimeout: 120_000, headersTimeout: 30_000 });
    // blob GETs are redirected to storage by some registries
    this.agent = this.base_.compose(interceptors.redirect({ maxRedirections: 5 }));
  }

  /** The host to talk to for a reference's domain. */
  get host(): string { return this.mirror?.host ?? (this.domain === 'docker.io' ? DOCKER_HUB : this.domain); }

  private isInsecure(): boolean {
    const host = this.domain.replace(/:\d+$/, '');
    return this.o.insecure.includes(this.domain) || this.o.insecure.includes(host) || /^127\./.test(host) || host === 'localhost';
  }

  /** HTTPS first; an insecure registry that does not speak TLS is retried over HTTP. */
  private async base(): Promise<string> {
    if (this.mirror) return `${this.scheme}://${this.host}${this.mirror.pathname.replace(/\/+$/, '')}`;
    if (this.scheme) return `${this.scheme}://${this.host}`;
    try {
      await request(`https://${this.host}/v2/`, { dispatcher: this.agent, method: 'GET' }).then((r) => r.body.dump());
      this.scheme = 'https';
    } catch (err: any) {
      if (!this.isInsecure()) throw new SystemError(`Get "https://${this.host}/v2/": ${describe(err)}`);
      this.scheme = 'http';
    }
    return `${this.scheme}://${this.host}`;
  }

  /**
   * One request to a path under /v2/ (or a full URL, as upload locations are); a 401 with a
   * challenge is answered once and the request repeated. `scope` is the token scope wanted,
   * several separated by spaces (as in a challenge's scope parameter).
   */
  async fetch(pathOrUrl: string, o: { method?: string; headers?: Record<string, string>; body?: any; scope: string; signal?: AbortSignal }): Promise<Response> {
    const base = await this.base();
    const url = /^https?:/.test(pathOrUrl) ? pathOrUrl : `${base}${pathOrUrl}`;
    const send = async (): Promise<Response> => {
      const headers: Record<string, string> = { ...(o.headers ?? {}) };
      const authz = this.authorization(o.scope);
      if (authz) headers.authorization = authz;
      let res;
      try {
        res = await request(url, { dispatcher: this.agent, method: (o.method ?? 'GET') as any, headers, body: o.body, signal: o.signal });
      } catch (err) {
        if (o.signal?.aborted) throw o.signal.reason ?? err;
        throw new SystemError(`${o.method ?? 'GET'} ${url}: ${describe(err)}`);
      }
      const h: Record<string, string> = {};
      for (const [k, v] of Object.entries(res.headers)) h[k] = Array.isArray(v) ? v.join(', ') : String(v);
      return { status: res.statusCode, headers: h, body: res.body };
    };
    let res = await send();
    if (res.status === 401 && typeof o.body?.pipe !== 'function') {
      const challenge = parseChallenge(res.headers['www-authenticate']);
      await res.body.dump();
      if (challenge && await this.answer(challenge, o.scope)) res = await send();
      else res = await send();
    }
    return res;
  }

  /**
   * What another thread needs to GET a path itself (a layer download in an unpack worker):
   * the URL, the credentials answered so far for `scope` (the manifest's fetch answered the
   * challenge), the CA.
   */
  async requestFor(path: string, scope: string): Promise<{ url: string; headers: Record<string, string>; ca?: string }> {
    const url = `${await this.base()}${path}`;
    const authz = this.authorization(scope);
    return { url, headers: authz ? { authorization: authz } : {}, ca: this.ca?.toString('utf8') };
  }

  private authorization(scope: string): string | undefined {
    const token = this.tokens.get(scopeKey(scope));
    if (token) return `Bearer ${token}`;
    if (this.basic) return basicHeader(this.auth);
    return undefined;
  }

  /** Answers a challenge; false when there is nothing to answer with. */
  private async answer(c: { scheme: string; params: Record<string, string> }, scope: string): Promise<boolean> {
    if (c.scheme === 'basic') {
      if (this.auth.username === undefined) return false;
      this.basic = true;
      return true;
    }
    if (c.scheme !== 'bearer' || !c.params.realm) return false;
    const url = tokenUrl(c.params.realm, c.params.service, scope);
    const headers: Record<string, string> = {};
    if (this.auth.registrytoken) { this.tokens.set(scopeKey(scope), this.auth.registrytoken); return true; }
    const basic = basicHeader(this.auth);
    if (basic) headers.authorization = basic;
    let res;
    try { res = await request(url, { dispatcher: this.agent, headers }); } catch (err) { throw new SystemError(`Get "${url}": ${describe(err)}`); }
    const text = await res.body.text();
    if (res.statusCode === 401 || res.statusCode === 403) throw new UnauthorizedError(`unauthorized: authentication required`);
    if (res.statusCode >= 300) throw new SystemError(`token request to ${url.origin} failed with status ${res.statusCode}`);
    let tok: { token?: string; access_token?: string };
    try { tok = JSON.parse(text); } catch { throw new SystemError('token service returned invalid JSON'); }
    const value = tok.token ?? tok.access_token;
    if (!value) return false;
    this.tokens.set(scopeKey(scope), value);
    return true;
  }

  /** docker login: a GET /v2/ that must succeed with the given credentials. */
  async login(): Promise<void> {
    const base = await this.base();
    const res = await this.fetch('/v2/', { scope: '' });
    await res.body.dump();
    if (res.status === 401 || res.status === 403) {
      throw new UnauthorizedError(`login attempt to ${base}/v2/ failed with status: ${res.status} ${res.status === 401 ? 'Unauthorized' : 'Forbidden'}`);
    }
    if (res.status >= 300) throw new SystemError(`login attempt to ${base}/v2/ failed with status: ${res.status}`);
  }

  /** Ends the client; requests still running (a failed pull's other downloads) are aborted. */
  async close(): Promise<void> { await this.base_.destroy().catch(() => {}); }
}

function describe(err: any): string {
  const cause = err?.cause;
  if (cause?.code === 'ECONNREFUSED') return `dial tcp: connect: connection refused`;
  if (cause?.code === 'ENOTFOUND' || cause?.code === 'EAI_AGAIN') return `dial tcp: lookup ${cause.hostname ?? ''}: no such host`;
  if (cause?.code && /CERT|SELF_SIGNED|UNABLE_TO_VERIFY/.test(cause.code)) return `tls: failed to verify certificate: ${cause.message}`;
  return String(cause?.message ?? err?.message ?? err);
}
