// JSON request bodies validated with ajv against the spec's schemas (openapi/schemas.json).
// Go clients send `null` for nil slices, maps and pointers almost everywhere, so every typed
// schema also accepts null; validators are compiled on first use to keep start-up fast.
import { readFileSync } from 'node:fs';
import AjvModule from 'ajv';
import { InvalidParameterError } from '../errors.js';
import type { Operation } from './route-table.js';

const Ajv = AjvModule.default ?? AjvModule;
type ValidateFn = ((data: unknown) => boolean) & { errors?: Array<{ instancePath: string; message?: string; params?: any }> | null };

const SCHEMAS_ID = 'berth:schemas';
const LOOSE = ['minimum', 'maximum', 'exclusiveMinimum', 'exclusiveMaximum', 'pattern', 'minLength', 'maxLength', 'minItems', 'maxItems', 'uniqueItems', 'format', 'multipleOf'];

/** Rewrites local $refs to the shared schema document and lets every typed node be null. */
export function prepareSchema(node: unknown): unknown {
  if (Array.isArray(node)) return node.map(prepareSchema);
  if (node === null || typeof node !== 'object') return node;
  const src = node as Record<string, unknown>;
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(src)) {
    if (k === '$ref' && typeof v === 'string') out[k] = v.replace('#/definitions/', `${SCHEMAS_ID}#/definitions/`);
    else if (k === 'properties' || k === 'definitions' || k === 'patternProperties') {
      out[k] = Object.fromEntries(Object.entries(v as Record<string, unknown>).map(([name, s]) => [name, prepareSchema(s)]));
    } else out[k] = prepareSchema(v);
  }
  // The spec's numeric and length bounds are not what the Engine enforces (the CLI sends
  // MemorySwappiness: -1 against `minimum: 0`): only types, enums and required fields are checked.
  for (const k of LOOSE) delete out[k];
  if (typeof out.type === 'string') out.type = [out.type, 'null'];
  if (Array.isArray(out.enum)) out.enum = [...new Set([...out.enum, null, ...(out.enum.some((e) => typeof e === 'string') ? [''] : [])])];
  // Swagger 2 `format: binary` bodies are streams, never validated here.
  return out;
}

export class BodyValidator {
  private ajv: InstanceType<typeof Ajv> | undefined;
  private readonly cache = new Map<string, ValidateFn>();

  constructor(private readonly schemasUrl: URL) {}

  private instance(): InstanceType<typeof Ajv> {
    if (!this.ajv) {
      const file = JSON.parse(readFileSync(this.schemasUrl, 'utf8')) as { definitions: Record<string, unknown> };
      this.ajv = new Ajv({ strict: false, allErrors: false, validateFormats: false, allowUnionTypes: true });
      this.ajv.addSchema({ $id: SCHEMAS_ID, definitions: prepareSchema(file.definitions) as object });
    }
    return this.ajv;
  }

  /** Throws InvalidParameterError naming the first offending field. */
  validate(op: Operation, body: unknown): void {
    if (!op.body) return;
    let fn = this.cache.get(op.operationId);
    if (!fn) {
      fn = this.instance().compile(prepareSchema(op.body.schema) as object) as ValidateFn;
      this.cache.set(op.operationId, fn);
    }
    if (fn(body)) return;
    const e = fn.errors?.[0];
    const field = (e?.instancePath ?? '').replace(/^\//, '').replace(/\//g, '.');
    const extra = e?.params?.allowedValues ? `: ${e.params.allowedValues.filter((v: unknown) => v !== null).map((v: unknown) => JSON.stringify(v)).join(', ')}` : '';
    throw new InvalidParameterError(`invalid ${field ? `value for ${field}` : 'request body'}: ${e?.message ?? 'does not match the schema'}${extra}`);
  }
}
