// POST /build (the classic builder) and POST /build/prune.
import { PassThrough } from 'node:stream';
import { InvalidParameterError, NotImplementedError } from '../errors.js';
import type { HandlerTable } from './types.js';
import { json, stream } from './types.js';

const bool = (v: unknown, d = false): boolean => (v === undefined ? d : v === true || v === 'true' || v === '1' || v === 1);

function jsonParam<T>(raw: string | null, name: string, fallback: T): T {
  if (!raw) return fallback;
  try { return JSON.parse(raw) as T; } catch { throw new InvalidParameterError(`invalid ${name}: not JSON`); }
}

export const buildHandlers: HandlerTable = {
  ImageBuild(req) {
    const q = req.rawQuery;
    if (q.get('version') === '2') throw new InvalidParameterError('BuildKit (builder version 2) is not supported by berth: use DOCKER_BUILDKIT=0');
    if (bool(q.get('squash') ?? undefined)) throw new InvalidParameterError('squash is not supported by berth');
    if (q.get('remote')) throw new InvalidParameterError('remote build contexts are not supported: berth builds without network access; send the context as a tar');
    if (q.get('outputs')) throw new NotImplementedError('build outputs are a BuildKit feature');
    const buildArgs = Object.fromEntries(Object.entries(jsonParam<Record<string, string | null>>(q.get('buildargs'), 'buildargs', {})).filter(([, v]) => v !== null)) as Record<string, string>;
    const opts = {
      dockerfile: q.get('dockerfile') || 'Dockerfile',
      tags: q.getAll('t').filter(Boolean),
      buildArgs, labels: jsonParam<Record<string, string>>(q.get('labels'), 'labels', {}),
      target: q.get('target') || undefined,
      noCache: bool(q.get('nocache') ?? undefined), rm: bool(q.get('rm') ?? undefined, true), forceRm: bool(q.get('forcerm') ?? undefined),
      quiet: bool(q.get('q') ?? undefined), networkMode: q.get('networkmode') || 'default', platform: q.get('platform') || undefined,
      extraHosts: (q.get('extrahosts') || '').split(',').filter(Boolean),
      shmSize: Number(q.get('shmsize')) || undefined, memory: Number(q.get('memory')) || undefined, cpuShares: Number(q.get('cpushares')) || undefined,
    };
    if (bool(q.get('pull') ?? undefined)) {
      // X-Registry-Config: {"<registry>": {username, password, ...}} in base64 (either alphabet)
      let configs: Record<string, Record<string, string>> = {};
      const header = req.headers['x-registry-config'];
      if (header) { try { configs = JSON.parse(Buffer.from(header.replace(/-/g, '+').replace(/_/g, '/'), 'base64').toString('utf8')); } catch { configs = {}; } }
      (opts as any).pull = async (ref: string) => {
        const domain = ref.split('/')[0]!;
        const auth = configs[domain] ?? configs[`https://${domain}`];
        const authHeader = auth ? Buffer.from(JSON.stringify(auth)).toString('base64') : undefined;
        const run = await req.services.registry.startPull(ref, undefined, authHeader, opts.platform ?? '');
        await run(() => {});
      };
    }
    for (const t of opts.tags) if (!/^[a-z0-9][a-z0-9._\/:-]*$/.test(t) || t.length > 255) throw new InvalidParameterError(`invalid reference format: ${t}`);
    const out = new PassThrough();
    const emit = (m: Record<string, unknown>) => { if (!out.destroyed) out.write(JSON.stringify(m) + '\n'); };
    req.services.builder.build(req.bodyStream(), opts, emit)
      .catch((e: any) => emit({ errorDetail: { ...(typeof e.code === 'number' ? { code: e.code } : {}), message: e.message }, error: e.message })) // code: an exit status (the CLI wants an int), not Node's 'ENOSPC'
      .finally(() => out.end());
    return stream(out, 'application/json');
  },

  async BuildPrune(req) {
    return json(await req.services.builder.prune());
  },
};
