// System endpoints: ping, version, info, events, data usage.
import { parseEventTime } from '../services/events.js';
import { empty, json, stream, text, type HandlerTable } from './types.js';

const PING_HEADERS = {
  'Cache-Control': 'no-cache, no-store, must-revalidate',
  Pragma: 'no-cache',
  'Builder-Version': '1',
  Swarm: 'inactive',
};

export const systemHandlers: HandlerTable = {
  SystemPing: () => ({ ...text('OK'), headers: PING_HEADERS }),

  SystemPingHead: () => empty(200, { ...PING_HEADERS, 'Content-Type': 'text/plain; charset=utf-8' }),

  SystemVersion: (req) => json(req.services.system.version()),

  SystemInfo: async (req) => json(await req.services.system.info()),

  SystemDataUsage: async (req) => json(await req.services.system.dataUsage({
    types: req.query.type as string[] | undefined,
    verbose: req.query.verbose === true,
    apiVersion: req.apiVersion,
  })),

  SystemEvents: (req) => {
    const since = req.query.since ? parseEventTime('since', String(req.query.since)) : undefined;
    const until = req.query.until ? parseEventTime('until', String(req.query.until)) : undefined;
    const body = req.services.events.stream({ since, until, filters: req.query.filters, apiVersion: req.apiVersion, signal: req.signal });
    return stream(body, 'application/json');
  },
};
