// Container operations: parse the request, call ContainerService / AttachService, shape the reply.
import { Readable } from 'node:stream';
import { InvalidParameterError, NotFoundError } from '../errors.js';
import { filterContainers, inspectView, summaryView } from '../services/container-view.js';
import { containerSizes } from '../services/container-size.js';
import { parseTimeArg, readLogs } from '../services/logs.js';
import type { HandlerTable } from './types.js';
import { empty, hijacked, json, stream } from './types.js';

const bool = (v: unknown, dflt = false): boolean => (v === undefined ? dflt : v === true || v === 'true' || v === '1' || v === 1);
const int = (v: unknown): number | undefined => (v === undefined || v === '' ? undefined : Number(v));

/** Stream content type for attach/logs/exec output, by API version and TTY. */
export function outputContentType(apiVersion: string, tty: boolean): string {
  const [maj, min] = apiVersion.split('.').map(Number);
  const multiplexedType = maj > 1 || (maj === 1 && min >= 42);
  return !tty && multiplexedType ? 'application/vnd.docker.multiplexed-stream' : 'application/vnd.docker.raw-stream';
}

/** X-Docker-Container-Path-Stat: the stat docker cp reads, base64 JSON. */
const pathStatHeader = (st: unknown): Record<string, string> => ({ 'X-Docker-Container-Path-Stat': Buffer.from(JSON.stringify(st)).toString('base64') });

export function containerHandlers(): HandlerTable {
  return {
    async ContainerArchiveInfo(req) {
      const rec = req.services.containers.get(req.params.id);
      return empty(200, pathStatHeader(await req.services.containerFs.stat(rec, String(req.query.path ?? ''))));
    },

    async ContainerArchive(req) {
      const rec = req.services.containers.get(req.params.id);
      const { stat, stream: body } = await req.services.containerFs.archive(rec, String(req.query.path ?? ''));
      return stream(body, 'application/x-tar', 200, pathStatHeader(stat));
    },

    async PutContainerArchive(req) {
      const rec = req.services.containers.get(req.params.id);
      await req.services.containerFs.extract(rec, String(req.query.path ?? ''), req.bodyStream(), {
        noOverwriteDirNonDir: bool(req.query.noOverwriteDirNonDir), copyUIDGID: bool(req.query.copyUIDGID),
      });
      return empty(200);
    },

    async ContainerExport(req) {
      const rec = req.services.containers.get(req.params.id);
      return stream(await req.services.containerFs.export(rec), 'application/x-tar');
    },

    async ContainerChanges(req) {
      const rec = req.services.containers.get(req.params.id);
      return json(await req.services.containerFs.changes(rec));
    },

    async ContainerTop(req) {
      return json(await req.services.containerOps.top(req.params.id, req.query.ps_args as string | undefined));
    },

    async ContainerStats(req) {
      const out = await req.services.containerOps.stats(req.params.id, {
        stream: bool(req.query.stream, true), oneShot: bool(req.query['one-shot']), signal: req.signal,
      });
      return out instanceof Readable ? stream(out, 'application/json') : json(out);
    },

    async ContainerPause(req) {
      await req.services.containerOps.pause(req.params.id);
      return empty(204);
    },

    async ContainerUnpause(req) {
      await req.services.containerOps.unpause(req.params.id);
      return empty(204);
    },

    async ContainerUpdate(req) {
      return json(await req.services.containerOps.update(req.params.id, (req.body ?? {}) as Record<string, any>));
    },

    async ContainerPrune(req) {
      return json(await req.services.containerOps.prune((req.query.filters ?? {}) as Record<string, string[]>));
    },

    async ImageCommit(req) {
      const id = await req.services.containerOps.commit(String(req.query.container ?? ''), {
        repo: req.query.repo as string | undefined, tag: req.query.tag as string | undefined,
        comment: req.query.comment as string | undefined, author: req.query.author as string | undefined,
        changes: req.rawQuery.getAll('changes').flatMap((c) => c.split('\n')).filter(Boolean),
        pause: bool(req.query.pause, true), config: (req.body ?? undefined) as Record<string, any> | undefined,
      });
      return json({ Id: id }, 201);
    },

    async ContainerList(req) {
      const { containers, images } = req.services;
      const filters = (req.query.filters ?? {}) as Record<string, string[]>;
      let list = filterContainers(containers.all(), filters, bool(req.query.all), {
        lookup: (ref: string) => containers.get(ref),
        matchesAncestor: (rec, ref) => {
          try { return rec.Image === images.find(ref).Id; } catch (e) { if (e instanceof NotFoundError) return false; throw e; }
        },
      });
      list.sort((a, b) => Date.parse(b.Created) - Date.parse(a.Created));
      const limit = int(req.query.limit);
      if (limit && limit > 0) list = list.slice(0, limit);
      const withSize = bool(req.query.size);
      return json(await Promise.all(list.map(async (rec) => summaryView(rec, rec.Config.Image ?? rec.Image,
        withSize ? await containerSizes(containers.containerDir(rec.Id), imageSize(images, rec.Image)) : undefined))));
    },

    async ContainerCreate(req) {
      const name = req.query.name as string | undefined;
      const res = await req.services.containers.create((req.body ?? {}) as Record<string, any>, name || undefined);
      return json(res, 201);
    },

    async ContainerInspect(req) {
      const { containers, images } = req.services;
      const rec = containers.get(req.params.id);
      const sizes = bool(req.query.size) ? await containerSizes(containers.containerDir(rec.Id), imageSize(images, rec.Image)) : undefined;
      return json(inspectView(rec, containers.containerDir(rec.Id), safeLayerDirs(images, rec.Image), sizes));
    },

    async ContainerStart(req) {
      await req.services.containers.start(req.params.id);
      return empty(204);
    },

    async ContainerStop(req) {
      await req.services.containers.stop(req.params.id, { signal: req.query.signal, timeout: int(req.query.t) });
      return empty(204);
    },

    async ContainerRestart(req) {
      await req.services.containers.restart(req.params.id, { signal: req.query.signal, timeout: int(req.query.t) });
      return empty(204);
    },

    async ContainerKill(req) {
      await req.services.containers.kill(req.params.id, req.query.signal);
      return empty(204);
    },

    async ContainerDelete(req) {
      if (bool(req.query.link)) throw new InvalidParameterError('legacy links are not supported by berth');
      await req.services.containers.remove(req.params.id, { force: bool(req.query.force), removeVolumes: bool(req.query.v) });
      return empty(204);
    },

    async ContainerRename(req) {
      await req.services.containers.rename(req.params.id, String(req.query.name ?? ''));
      return empty(204);
    },

    async ContainerResize(req) {
      await req.services.containers.resize(req.params.id, int(req.query.h) ?? 0, int(req.query.w) ?? 0);
      return empty(200);
    },

    ContainerWait(req) {
      const containers = req.services.containers;
      const condition = String(req.query.condition || 'not-running');
      if (!['not-running', 'next-exit', 'removed'].includes(condition)) {
        throw new InvalidParameterError(`invalid condition: "${condition}"`);
      }
      containers.get(req.params.id); // 404 before the headers go out
      // Headers go out at once (the CLI waits for them before starting the container); the
      // body follows when the condition is met.
      const body = new Readable({ read() {} });
      containers.wait(req.params.id, condition, req.signal).then(
        (r) => { body.push(JSON.stringify(r) + '\n'); body.push(null); },
        (err) => { body.push(JSON.stringify({ StatusCode: -1, Error: { Message: String(err.message ?? err) } }) + '\n'); body.push(null); },
      );
      return stream(body, 'application/json');
    },

    ContainerLogs(req) {
      const containers = req.services.containers;
      const rec = containers.get(req.params.id);
      const stdout = bool(req.query.stdout), stderr = bool(req.query.stderr);
      if (!stdout && !stderr) throw new InvalidParameterError('Bad parameters: you must choose at least one stream');
      if (rec.HostConfig.LogConfig?.Type === 'none' || !rec.LogPath) {
        throw new InvalidParameterError('configured logging driver does not support reading');
      }
      const tailRaw = String(req.query.tail ?? 'all');
      const tail = tailRaw === 'all' || tailRaw === '' ? -1 : Number(tailRaw);
      const follow = bool(req.query.follow) && rec.State.Running;
      const body = readLogs(rec.LogPath, {
        stdout, stderr,
        since: parseTimeArg(req.rawQuery.get('since') ?? undefined),
        until: parseTimeArg(req.rawQuery.get('until') ?? undefined),
        timestamps: bool(req.query.timestamps),
        tail: Number.isFinite(tail) ? tail : -1,
        follow,
        multiplex: !rec.Config.Tty,
      }, follow ? containers.nextExit(rec.Id) : null, Number(rec.HostConfig.LogConfig?.Config?.['max-file'] ?? 1));
      req.signal.addEventListener('abort', () => body.destroy());
      return stream(body, outputContentType(req.apiVersion, !!rec.Config.Tty));
    },

    async ContainerAttach(req) {
      const { containers, attach } = req.services;
      const rec = containers.get(req.params.id);
      const opts = {
        stdin: bool(req.query.stdin), stdout: bool(req.query.stdout), stderr: bool(req.query.stderr),
        stream: bool(req.query.stream), logs: bool(req.query.logs), detachKeys: req.query.detachKeys as string | undefined,
      };
      const sock = await req.hijack(outputContentType(req.apiVersion, !!rec.Config.Tty));
      attach.attach(rec.Id, opts, sock).catch((err: Error) => {
        if (!sock.destroyed) sock.end(`Error: ${err.message}\n`);
      });
      return hijacked();
    },
  };
}

function safeLayerDirs(images: { layerDirs(id: string): string[] }, imageId: string): string[] {
  try { return images.layerDirs(imageId); } catch { return []; }
}

/** The image's size, 0 when it is gone (an image can be removed with force while containers use it). */
function imageSize(images: { find(ref: string): { Size?: number } }, imageId: string): number {
  try { return images.find(imageId).Size ?? 0; } catch { return 0; }
}
