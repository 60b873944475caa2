// Volume operations: parse the request, call VolumeService, shape the reply.
import { InvalidParameterError } from '../errors.js';
import type { HandlerTable } from './types.js';
import { empty, json } from './types.js';

const bool = (v: unknown): boolean => v === true || v === 'true' || v === '1' || v === 1;

export const volumeHandlers: HandlerTable = {
  VolumeList(req) {
    return json(req.services.volumes.list((req.query.filters ?? {}) as Record<string, string[]>));
  },
  async VolumeCreate(req) {
    const body = (req.body ?? {}) as Record<string, any>;
    if (body.ClusterVolumeSpec) throw new InvalidParameterError('cluster volumes need swarm mode, which berth does not provide');
    return json(await req.services.volumes.create(body), 201);
  },
  VolumeInspect(req) {
    return json(req.services.volumes.inspect(req.params.name));
  },
  async VolumeDelete(req) {
    await req.services.volumes.remove(req.params.name, bool(req.query.force));
    return empty(204);
  },
  async VolumePrune(req) {
    return json(await req.services.volumes.prune((req.query.filters ?? {}) as Record<string, string[]>));
  },
};
