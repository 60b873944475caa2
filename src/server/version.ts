// API version handling: the /vX.Y prefix, the supported range, and the daemon's identity strings.

export const MIN_API_VERSION = '1.24';
export const MAX_API_VERSION = '1.55';
/** Engine version we report: the Engine release whose API we follow, marked as Berth. */
export const ENGINE_VERSION = '29.7.2-berth';
export const SERVER_HEADER = `Docker/${ENGINE_VERSION} (linux)`;

/** Compares dotted API versions numerically ("1.9" < "1.24"). */
export function compareVersions(a: string, b: string): number {
  const pa = a.split('.').map(Number), pb = b.split('.').map(Number);
  for (let i = 0; i < Math.max(pa.length, pb.length); i++) {
    const d = (pa[i] ?? 0) - (pb[i] ?? 0);
    if (d !== 0) return d < 0 ? -1 : 1;
  }
  return 0;
}

export const versionAtLeast = (v: string, min: string): boolean => compareVersions(v, min) >= 0;

const PREFIX = /^\/v([0-9]+(?:\.[0-9]+)*)(?=\/)/;

export type VersionResult =
  | { ok: true; apiVersion: string; path: string }
  | { ok: false; message: string };

/** Strips a /vX.Y prefix and checks it against the supported range. */
export function splitVersion(path: string): VersionResult {
  const m = PREFIX.exec(path);
  if (!m) return { ok: true, apiVersion: MAX_API_VERSION, path };
  const v = m[1];
  if (compareVersions(v, MIN_API_VERSION) < 0) {
    return { ok: false, message: `client version ${v} is too old. Minimum supported API version is ${MIN_API_VERSION}, please upgrade your client to a newer version` };
  }
  if (compareVersions(v, MAX_API_VERSION) > 0) {
    return { ok: false, message: `client version ${v} is too new. Maximum supported API version is ${MAX_API_VERSION}` };
  }
  return { ok: true, apiVersion: v, path: path.slice(m[0].length) };
}
