// Registry credentials: the X-Registry-Auth header the clients send, and the answers to a
// registry's WWW-Authenticate challenge (Basic, or Bearer tokens from its token service).
import { InvalidParameterError } from '../../errors.js';

export interface AuthConfig { username?: string; password?: string; auth?: string; serveraddress?: string; identitytoken?: string; registrytoken?: string }

/** X-Registry-Auth: base64url (or standard base64) JSON; "" and "{}" mean no credentials. */
export function parseRegistryAuth(header: string | undefined): AuthConfig {
  if (!header || header === '{}') return {};
  let text: string;
  try { text = Buffer.from(header.replace(/-/g, '+').replace(/_/g, '/'), 'base64').toString('utf8'); } catch { return {}; }
  if (!text.trim() || text.trim() === '{}') return {};
  let cfg: AuthConfig;
  try { cfg = JSON.parse(text); } catch { throw new InvalidParameterError('invalid X-Registry-Auth header: not base64-encoded JSON'); }
  if (typeof cfg !== 'object' || cfg === null) return {};
  if (cfg.auth && !cfg.username) {
    const [u, ...p] = Buffer.from(cfg.auth, 'base64').toString('utf8').split(':');
    cfg.username = u; cfg.password = p.join(':');
  }
  return cfg;
}

export interface Challenge { scheme: string; params: Record<string, string> }

/** `Bearer realm="...",service="...",scope="..."` -> { scheme, params }. */
export function parseChallenge(header: string | undefined): Challenge | null {
  if (!header) return null;
  const m = /^(\w+)\s*(.*)$/s.exec(header.trim());
  if (!m) return null;
  const params: Record<string, string> = {};
  const re = /(\w+)=(?:"((?:[^"\\]|\\.)*)"|([^,\s]*))/g;
  let p;
  while ((p = re.exec(m[2]!))) params[p[1]!.toLowerCase()] = p[2] !== undefined ? p[2].replace(/\\(.)/g, '$1') : p[3]!;
  return { scheme: m[1]!.toLowerCase(), params };
}

export const basicHeader = (a: AuthConfig): string | undefined =>
  a.username !== undefined ? `Basic ${Buffer.from(`${a.username}:${a.password ?? ''}`).toString('base64')}` : undefined;

const scopes = (scope: string): string[] => scope.split(' ').filter(Boolean);

/** The token cache's key: the set of scopes, whatever their order. */
export const scopeKey = (scope: string): string => [...new Set(scopes(scope))].sort().join(' ');

/** The token request: one `scope` parameter per scope, as the Engine asks. */
export function tokenUrl(realm: string, service: string | undefined, scope: string): URL {
  const url = new URL(realm);
  if (service) url.searchParams.set('service', service);
  for (const s of scopes(scope)) url.searchParams.append('scope', s);
  return url;
}
