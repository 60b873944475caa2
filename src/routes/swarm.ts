// Swarm-mode operations. Berth is never part of a swarm: they answer as an Engine that is not
// a swarm manager does (503), and creating or joining a swarm is refused as unsupported.
import { NotImplementedError, UnavailableError } from '../errors.js';
import { json, type Handler, type HandlerTable } from './types.js';

export const NOT_MANAGER = 'This node is not a swarm manager. Use "docker swarm init" or "docker swarm join" to connect this node to swarm and try again.';

const notManager: Handler = () => { throw new UnavailableError(NOT_MANAGER); };
const unsupported: Handler = () => { throw new NotImplementedError('berth does not support swarm mode'); };

const SWARM_ONLY = [
  'SwarmInspect', 'SwarmUpdate', 'SwarmUnlockkey', 'SwarmUnlock',
  'NodeList', 'NodeInspect', 'NodeDelete', 'NodeUpdate',
  'ServiceList', 'ServiceCreate', 'ServiceInspect', 'ServiceDelete', 'ServiceUpdate', 'ServiceLogs',
  'TaskList', 'TaskInspect', 'TaskLogs',
  'SecretList', 'SecretCreate', 'SecretInspect', 'SecretDelete', 'SecretUpdate',
  'ConfigList', 'ConfigCreate', 'ConfigInspect', 'ConfigDelete', 'ConfigUpdate',
];

export const swarmHandlers: HandlerTable = {
  ...Object.fromEntries(SWARM_ONLY.map((id) => [id, notManager])),
  SwarmInit: unsupported,
  SwarmJoin: unsupported,
  SwarmLeave: () => { throw new UnavailableError('This node is not part of a swarm'); },
  // No managed plugins: the list is empty (docker plugin ls works); the rest stays 501.
  PluginList: () => json([]),
};
