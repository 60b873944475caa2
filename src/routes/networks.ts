// Network operations: parse the request, call NetworkService (and ContainerService for
// connect/disconnect), shape the reply.
import type { HandlerTable } from './types.js';
import { empty, json } from './types.js';

export const networkHandlers: HandlerTable = {
  NetworkList(req) {
    return json(req.services.networks.list((req.query.filters ?? {}) as Record<string, string[]>));
  },
  NetworkInspect(req) {
    return json(req.services.networks.inspect(req.params.id));
  },
  async NetworkCreate(req) {
    return json(await req.services.networks.create((req.body ?? {}) as Record<string, any>), 201);
  },
  async NetworkDelete(req) {
    await req.services.networks.remove(req.params.id);
    return empty(204);
  },
  async NetworkPrune(req) {
    return json(await req.services.networks.prune((req.query.filters ?? {}) as Record<string, string[]>));
  },
  async NetworkConnect(req) {
    const body = (req.body ?? {}) as { Container?: string; EndpointConfig?: Record<string, any> };
    await req.services.containers.connectNetwork(String(body.Container ?? ''), req.params.id, body.EndpointConfig ?? {});
    return empty(200);
  },
  async NetworkDisconnect(req) {
    const body = (req.body ?? {}) as { Container?: string; Force?: boolean };
    await req.services.containers.disconnectNetwork(String(body.Container ?? ''), req.params.id);
    return empty(200);
  },
};
