// The route table: every Engine API operation from the generated extract, matched with hono's
// TrieRouter. Static routes are registered before parameterised ones so /images/json wins over
// /images/{name}/json; image/plugin/volume names match across slashes (Moby's {name:.*}).
import { readFileSync } from 'node:fs';
import { TrieRouter } from 'hono/router/trie-router';

export interface ParamSpec {
  name: string;
  in: 'query' | 'path' | 'header';
  type?: string;
  format?: string;
  enum?: unknown[];
  default?: unknown;
  items?: { type?: string; enum?: unknown[] };
  required: boolean;
}

export interface Operation {
  method: string;
  path: string;
  operationId: string;
  tag: string;
  consumes: string[];
  produces: string[];
  parameters: ParamSpec[];
  body?: { name: string; required: boolean; schema: Record<string, any> };
}

export interface RoutesFile { apiVersion: string; operations: Operation[] }

export type Match =
  | { kind: 'found'; op: Operation; params: Record<string, string> }
  | { kind: 'method-not-allowed' }
  | { kind: 'not-found' };

/** Path parameters whose values may contain slashes. */
const SLASHY = new Set(['name']);

export function toRouterPath(specPath: string): string {
  return specPath.replace(/\{([^}]+)\}/g, (_, n: string) => (SLASHY.has(n) ? `:${n}{.+}` : `:${n}`));
}

const paramCount = (p: string): number => (p.match(/\{/g) ?? []).length;

export class RouteTable {
  private readonly router = new TrieRouter<Operation>();
  private readonly paths: TrieRouter<true>;
  readonly operations: Operation[];

  constructor(file: RoutesFile) {
    this.operations = file.operations;
    this.paths = new TrieRouter<true>();
    const ordered = [...file.operations].sort((a, b) => paramCount(a.path) - paramCount(b.path));
    for (const op of ordered) {
      this.router.add(op.method, toRouterPath(op.path), op);
      this.paths.add('ALL', toRouterPath(op.path), true);
    }
  }

  static load(url: URL): RouteTable {
    return new RouteTable(JSON.parse(readFileSync(url, 'utf8')) as RoutesFile);
  }

  match(method: string, path: string): Match {
    const [found] = this.router.match(method, path) as unknown as [[Operation, Record<string, string>][]];
    if (found.length > 0) {
      const [op, params] = found[0];
      return { kind: 'found', op, params: { ...params } };
    }
    const [any] = this.paths.match('GET', path) as unknown as [[true, unknown][]];
    return any.length > 0 ? { kind: 'method-not-allowed' } : { kind: 'not-found' };
  }

  byOperationId(id: string): Operation | undefined {
    return this.operations.find((o) => o.operationId === id);
  }
}
