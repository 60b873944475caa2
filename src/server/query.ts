// Query-string coercion to the spec's types, the way the Engine reads them: booleans in
// strconv.ParseBool spelling (empty means false), integers, repeated keys for arrays, and the
// JSON-encoded `filters` argument normalised to Record<string, string[]>.
import { InvalidParameterError } from '../errors.js';
import type { ParamSpec } from './route-table.js';

const TRUE = new Set(['1', 't', 'T', 'true', 'TRUE', 'True', 'yes', 'on']);
const FALSE = new Set(['', '0', 'f', 'F', 'false', 'FALSE', 'False', 'no', 'none', 'off']);

export function parseBool(name: string, raw: string): boolean {
  const v = raw.trim();
  if (TRUE.has(v)) return true;
  if (FALSE.has(v)) return false;
  throw new InvalidParameterError(`invalid value for ${name}: ${JSON.stringify(raw)} is not a boolean`);
}

export function parseNumber(name: string, raw: string, type: 'integer' | 'number'): number {
  const v = raw.trim();
  // Timestamps such as since=1700000000.123456789 are sent where the spec says integer.
  if (v !== '' && /^[-+]?(\d+(\.\d*)?|\.\d+)([eE][-+]?\d+)?$/.test(v)) return Number(v);
  throw new InvalidParameterError(`invalid value for ${name}: ${JSON.stringify(raw)} is not ${type === 'integer' ? 'an integer' : 'a number'}`);
}

/** `filters` as JSON; accepts {"k":["v"]} and the legacy {"k":{"v":true}}. */
export function parseFilters(raw: string): Record<string, string[]> {
  if (raw.trim() === '') return {};
  let parsed: unknown;
  try {
    parsed = JSON.parse(raw);
  } catch (err) {
    throw new InvalidParameterError(`invalid filter: ${(err as Error).message}`);
  }
  if (parsed === null) return {};
  if (typeof parsed !== 'object' || Array.isArray(parsed)) throw new InvalidParameterError('invalid filter: filters must be a JSON object');
  const out: Record<string, string[]> = {};
  for (const [key, value] of Object.entries(parsed as Record<string, unknown>)) {
    if (Array.isArray(value)) {
      out[key] = value.map((v) => String(v));
    } else if (value && typeof value === 'object') {
      out[key] = Object.entries(value as Record<string, unknown>).filter(([, on]) => on === true).map(([v]) => v);
    } else if (typeof value === 'string') {
      out[key] = [value];
    } else {
      throw new InvalidParameterError(`invalid filter: value of ${key} must be a list of strings`);
    }
  }
  return out;
}

function coerceOne(p: ParamSpec, type: string | undefined, raw: string): unknown {
  switch (type) {
    case 'boolean': return parseBool(p.name, raw);
    case 'integer':
    case 'number': return parseNumber(p.name, raw, type);
    default: return raw;
  }
}

/** Coerces the query parameters an operation declares; unknown ones stay in rawQuery only. */
export function coerceQuery(params: ParamSpec[], qs: URLSearchParams): Record<string, any> {
  const out: Record<string, any> = {};
  for (const p of params) {
    if (p.in !== 'query') continue;
    if (!qs.has(p.name)) {
      if (p.default !== undefined) out[p.name] = p.default;
      continue;
    }
    if (p.type === 'array') {
      out[p.name] = qs.getAll(p.name).map((v) => coerceOne(p, p.items?.type, v));
    } else if (p.name === 'filters' && p.type === 'string') {
      out[p.name] = parseFilters(qs.get(p.name)!);
    } else {
      out[p.name] = coerceOne(p, p.type, qs.get(p.name)!);
    }
    if (p.enum && p.type !== 'array' && !p.enum.includes(out[p.name]) && out[p.name] !== '') {
      throw new InvalidParameterError(`invalid value for ${p.name}: ${JSON.stringify(out[p.name])} (must be one of ${p.enum.map((e) => JSON.stringify(e)).join(', ')})`);
    }
  }
  return out;
}
