import type { Device } from "./accounts.js";
import type { JsonValue } from "./json.js";

export type Query = Readonly<Record<string, string | string[]>>;

export interface PublicContext {
  readonly method: string;
  /** Decoded path, as logged in `requests`. */
  readonly path: string;
  readonly params: Readonly<Record<string, string>>;
  readonly query: Query;
  /** Parsed JSON body; undefined when the body was empty. */
  readonly body: unknown;
  /** Aborted when the client goes away (ends a long-poll early). */
  readonly signal: AbortSignal;
}

export interface AuthedContext extends PublicContext {
  readonly device: Device;
}

export interface Reply {
  status?: number;
  body: JsonValue | object;
  /** An event was created by a send/redact/state request (for stats().sends). */
  createdEvent?: boolean;
}

type Handler<C> = (ctx: C) => Reply | Promise<Reply>;

export type Route =
  | { method: string; path: string; auth: false; handler: Handler<PublicContext> }
  | {
      method: string;
      path: string;
      auth?: true;
      /** Counts against setRateLimit() buckets. */
      rateLimited?: boolean;
      /** Path parameter holding a transaction id: replays return the first response. */
      txnParam?: string;
      handler: Handler<AuthedContext>;
    };

export type RouteMatch =
  | { kind: "found"; route: Route; params: Record<string, string> }
  | { kind: "wrong-method" }
  | { kind: "none" };

/** Patterns are paths with `:name` segments; each segment matches exactly one decoded path segment. */
export function matchRoute(
  routes: readonly Route[],
  method: string,
  segments: readonly string[],
): RouteMatch {
  let pathMatched = false;
  for (const route of routes) {
    const params = matchPattern(route.path, segments);
    if (!params) continue;
    if (route.method === method) return { kind: "found", route, params };
    pathMatched = true;
  }
  return pathMatched ? { kind: "wrong-method" } : { kind: "none" };
}

function matchPattern(pattern: string, segments: readonly string[]): Record<string, string> | undefined {
  const parts = pattern.split("/");
  if (parts.length !== segments.length) return undefined;
  const params: Record<string, string> = {};
  for (const [i, part] of parts.entries()) {
    const segment = segments[i] ?? "";
    if (part.startsWith(":")) params[part.slice(1)] = segment;
    else if (part !== segment) return undefined;
  }
  return params;
}

export function queryValue(query: Query, name: string): string | undefined {
  const value = query[name];
  return Array.isArray(value) ? value[0] : value;
}
