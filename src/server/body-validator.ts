// JSON request bodies validated with ajv against the spec's schemas (openapi/schemas.json).
// Go clients send `null` for nil slices, maps and pointers almost everywhere, so every typed
// schema also accepts null; validators are compiled on first use to keep start-up fast.
import { readFileSync } from 'node:fs';
import type AjvType from 'ajv';
import { InvalidParameterError } from '../errors.js';
import type { Operation } from './route-table.js';

type Ajv = AjvType.default;
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
  private ajv: Promise<Ajv> | undefined;
  private readonly cache = new Map<string, ValidateFn>();

  constructor(private readonly schemasUrl: URL) {}

  /** ajv is loaded on first use (or by warm()), keeping it off the start-up path. */
  private instance(): Promise<Ajv> {
    this.ajv ??= (async () => {
      const mod = await import('ajv');
      // CommonJS interop: the class is module.exports.default (or module.exports itself).
      const exp = mod.default as unknown as { default?: new (o: object) => Ajv } & (new (o: object) => Ajv);
      const AjvClass = exp.default ?? exp;
      const file = JSON.parse(readFileSync(this.schemasUrl, 'utf8')) as { definitions: Record<string, unknown> };
      const ajv = new AjvClass({ strict: false, allErrors: false, validateFormats: false, allowUnionTypes: true });
      ajv.addSchema({ $id: SCHEMAS_ID, definitions: prepareSchema(file.definitions) as object });
      return ajv;
    })();
    return this.ajv;
  }

  /** Loads ajv and the schemas in the background, after the daemon is listening. */
  warm(): void { void this.instance().catch(() => {}); }

  /** Throws InvalidParameterError naming the first offending field. */
  async validate(op: Operation, body: unknown): Promise<void> {
    if (!op.body) return;
    let fn = this.cache.get(op.operationId);
    if (!fn) {
      fn = (await this.instance()).compile(prepareSchema(op.body.schema) as object) as ValidateFn;
      this.cache.set(op.operationId, fn);
    }
    if (fn(body)) return;
    const e = fn.errors?.[0];
    const field = (e?.instancePath ?? '').replace(/^\//, '').replace(/\//g, '.');
    const extra = e?.params?.allowedValues ? `: ${e.params.allowedValues.filter((v: unknown) => v !== null).map((v: unknown) => JSON.stringify(v)).join(', ')}` : '';
    throw new InvalidParameterError(`invalid ${field ? `value for ${field}` : 'request body'}: ${e?.message ?? 'does not match the schema'}${extra}`);
  }
}
