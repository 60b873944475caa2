// The handler table: every API tag module merged, keyed by operationId. An operation without
// a handler here answers 501 from the server. Add a tag module by spreading its table below.
import { containerHandlers } from './containers.js';
import { execHandlers } from './exec.js';
import { imageHandlers } from './images.js';
import { swarmHandlers } from './swarm.js';
import { systemHandlers } from './system.js';
import { volumeHandlers } from './volumes.js';
import { networkHandlers } from './networks.js';
import { buildHandlers as imageBuildHandlers } from './build.js';
import type { HandlerTable } from './types.js';

export function buildHandlers(): HandlerTable {
  return {
    ...systemHandlers,
    ...swarmHandlers,
    ...imageHandlers,
    ...containerHandlers(),
    ...execHandlers(),
    ...volumeHandlers,
    ...networkHandlers,
    ...imageBuildHandlers,
  };
}
