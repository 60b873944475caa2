// Merging the image's config into a create request's Config, with the Engine's rules
// (daemon/commit.go merge + create.go mergeAndVerifyConfig): the user's values win, image values
// fill the gaps, Env and Labels merge by key, ExposedPorts and Volumes are unions.
import { InvalidParameterError } from '../errors.js';
import type { ContainerConfig, HealthConfig } from './docker-types.js';

const isEmpty = (a: unknown[] | null | undefined): boolean => !a || a.length === 0;
const isEmptyMap = (m: Record<string, unknown> | null | undefined): boolean => !m || Object.keys(m).length === 0;

/**
 * Returns a new Config: `createConfig` completed from `imageConfig`. An Entrypoint of [""]
 * (`--entrypoint ""`) clears the image's Entrypoint; an Entrypoint given without Cmd drops
 * the image's Cmd. Throws InvalidParameterError "no command specified" when nothing is left to run.
 */
export function mergeImageConfig(imageConfig: ContainerConfig | null | undefined, createConfig: ContainerConfig): ContainerConfig {
  const img = imageConfig ?? {};
  const out: ContainerConfig = structuredClone(createConfig);

  if (!out.User) out.User = img.User ?? '';

  if (isEmptyMap(out.ExposedPorts)) {
    if (img.ExposedPorts) out.ExposedPorts = { ...img.ExposedPorts };
  } else {
    for (const port of Object.keys(img.ExposedPorts ?? {})) if (!(port in out.ExposedPorts!)) out.ExposedPorts![port] = {};
  }

  if (isEmpty(out.Env)) {
    if (img.Env) out.Env = [...img.Env];
  } else {
    const keys = new Set(out.Env!.map(envKey));
    for (const e of img.Env ?? []) if (!keys.has(envKey(e))) out.Env!.push(e);
  }

  out.Labels = { ...(out.Labels ?? {}) };
  for (const [k, v] of Object.entries(img.Labels ?? {})) if (!(k in out.Labels)) out.Labels[k] = v;

  if (isEmpty(out.Entrypoint)) {
    if (isEmpty(out.Cmd)) out.Cmd = img.Cmd ? [...img.Cmd] : img.Cmd;
    // null/absent takes the image's; an explicit [] keeps it empty.
    if (out.Entrypoint == null) out.Entrypoint = img.Entrypoint ? [...img.Entrypoint] : img.Entrypoint;
  }

  if (img.Healthcheck) out.Healthcheck = mergeHealthcheck(out.Healthcheck, img.Healthcheck);

  if (!out.WorkingDir) out.WorkingDir = img.WorkingDir ?? '';

  if (isEmptyMap(out.Volumes)) {
    if (img.Volumes) out.Volumes = { ...img.Volumes };
  } else {
    Object.assign(out.Volumes!, img.Volumes ?? {});
  }

  if (!out.StopSignal && img.StopSignal) out.StopSignal = img.StopSignal;

  if (out.Entrypoint?.length === 1 && out.Entrypoint[0] === '') out.Entrypoint = null;
  if (isEmpty(out.Entrypoint) && isEmpty(out.Cmd)) throw new InvalidParameterError('no command specified');
  return out;
}

function mergeHealthcheck(user: HealthConfig | null | undefined, img: HealthConfig): HealthConfig {
  if (!user) return structuredClone(img);
  const h = { ...user };
  if (isEmpty(h.Test)) h.Test = img.Test;
  for (const k of ['Interval', 'Timeout', 'StartPeriod', 'StartInterval', 'Retries'] as const) {
    if (!h[k]) h[k] = img[k];
  }
  return h;
}

function envKey(e: string): string {
  const i = e.indexOf('=');
  return i < 0 ? e : e.slice(0, i);
}
