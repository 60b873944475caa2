// Image endpoints: list, inspect, history, tag, remove, prune, load, save, import.
import { PassThrough } from 'node:stream';
import { InvalidParameterError, NotImplementedError } from '../errors.js';
import type { ImageService } from '../services/images.js';
import { json, stream, type ApiRequest, type HandlerTable } from './types.js';

function images(req: ApiRequest): ImageService {
  const svc = (req.services as any).images as ImageService | undefined;
  if (!svc) throw new NotImplementedError('image service is not available');
  return svc;
}

const bool = (v: unknown): boolean => v === true || v === 'true' || v === '1' || v === 1;

/** Runs work that reports progress lines; streams them as Docker JSON messages. */
function progressStream(work: (msg: (m: object) => void) => Promise<void>): PassThrough {
  const out = new PassThrough();
  work((m) => out.write(JSON.stringify(m) + '\n'))
    .catch((e: Error) => out.write(JSON.stringify({ errorDetail: { message: e.message }, error: e.message }) + '\n'))
    .finally(() => out.end());
  return out;
}

export const imageHandlers: HandlerTable = {
  ImageList: (req) => {
    const res = images(req).list({ all: bool(req.query.all), digests: bool(req.query.digests), filters: req.query.filters });
    const old = parseFloat(req.apiVersion) < 1.44;
    return json(res.map((i) => (old ? { ...i, VirtualSize: i.Size } : i)));
  },

  ImageInspect: async (req) => {
    const rec = await images(req).resolve(req.params.name);
    const old = parseFloat(req.apiVersion) < 1.44;
    return json(old ? { ...rec, VirtualSize: rec.Size, Container: '', ContainerConfig: {} } : rec);
  },

  ImageHistory: (req) => json(images(req).history(req.params.name)),

  ImageTag: async (req) => {
    const repo = req.query.repo as string | undefined;
    if (!repo) throw new InvalidParameterError('repository name must have at least one component');
    await images(req).tag(req.params.name, repo, req.query.tag as string | undefined);
    return { kind: 'empty', status: 201 };
  },

  ImageDelete: async (req) => json(await images(req).remove(req.params.name, { force: bool(req.query.force), noprune: bool(req.query.noprune) })),

  ImagePrune: async (req) => json(await images(req).prune(req.query.filters)),

  ImageLoad: async (req) => {
    const svc = images(req);
    const body = req.bodyStream();
    // Errors (a bad archive) arrive in-stream as errorDetail, as on the Engine.
    const out = progressStream(async (msg) => {
      await svc.load(body, (line) => msg({ stream: line }));
    });
    return stream(out, 'application/json');
  },

  ImageGet: (req) => stream(images(req).save([req.params.name]), 'application/x-tar'),

  ImageGetAll: (req) => {
    const names = req.rawQuery.getAll('names');
    if (!names.length) throw new InvalidParameterError('no images specified');
    return stream(images(req).save(names), 'application/x-tar');
  },

  ImageCreate: async (req) => {
    const svc = images(req);
    const fromSrc = req.query.fromSrc as string | undefined;
    if (fromSrc === undefined) {
      const name = String(req.query.fromImage ?? '');
      if (!name) throw new InvalidParameterError('fromImage or fromSrc is required');
      // errors up to the manifest are HTTP errors (the CLI prints them as "Error response from daemon")
      const run = await req.services.registry.startPull(name, (req.query.tag as string | undefined) || undefined,
        req.headers['x-registry-auth'], String(req.query.platform ?? ''));
      return stream(progressStream(async (msg) => { await run(msg); }), 'application/json');
    }
    if (fromSrc !== '-') throw new NotImplementedError('importing from a URL is not supported; use fromSrc=-');
    const body = req.bodyStream();
    const changes = req.rawQuery.getAll('changes');
    const out = progressStream(async (msg) => {
      const id = await svc.importImage(body, {
        repo: req.query.repo as string | undefined, tag: req.query.tag as string | undefined,
        message: req.query.message as string | undefined, changes, platform: req.query.platform as string | undefined,
      });
      msg({ status: id });
    });
    return stream(out, 'application/json');
  },

  ImagePush: async (req) => {
    const { registry } = req.services;
    const name = req.params.name;
    const tag = (req.query.tag as string | undefined) || undefined;
    const auth = req.headers['x-registry-auth'];
    // a missing local tag is an HTTP error, as with the Engine
    req.services.images.find(tag ? `${name}:${tag}` : name);
    return stream(progressStream((msg) => registry.push(name, tag, auth, msg)), 'application/json');
  },

  SystemAuth: async (req) => json(await req.services.registry.login((req.body ?? {}) as Record<string, string>)),

  ImageSearch: async (req) => json(await req.services.registry.search(String(req.query.term ?? ''), Number(req.query.limit) || 25, req.headers['x-registry-auth'])),

  DistributionInspect: async (req) => json(await req.services.registry.inspect(req.params.name, req.headers['x-registry-auth'])),
};
