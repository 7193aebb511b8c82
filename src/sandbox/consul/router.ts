import { posix } from "node:path";
import type { Acl, Principal } from "./acl.js";
import { HttpError, noBody, text, type ConsulRequest, type Reply } from "./http.js";

export interface RouteContext {
  readonly req: ConsulRequest;
  readonly principal: Principal;
  /** The path after a prefix route's pattern (a key, an id, a service name). */
  readonly rest: string;
}

export interface Route {
  /** Go ServeMux pattern: ending in "/" matches a prefix, otherwise only the exact path. */
  readonly pattern: string;
  readonly methods: readonly string[];
  /** false for the few endpoints Consul serves without resolving a token (status). */
  readonly acl?: boolean;
  readonly handle: (ctx: RouteContext) => Reply | Promise<Reply>;
}

/** Routing as Consul's mux does it: canonical paths, longest pattern, 405 with Allow, OPTIONS. */
export async function dispatch(routes: readonly Route[], acl: Acl, req: ConsulRequest): Promise<Reply> {
  const canonical = cleanPath(req.path);
  if (canonical !== req.path) {
    const query = req.query.toString();
    return {
      ...text(301, "Moved Permanently"),
      headers: { Location: query ? `${canonical}?${query}` : canonical },
    };
  }
  const route = match(routes, req.path);
  if (!route) return noBody(404);
  const allow = ["OPTIONS", ...route.methods].join(",");
  if (req.method === "OPTIONS") return noBody(200, { Allow: allow });
  if (!route.methods.includes(req.method)) {
    throw new HttpError(405, `method ${req.method} not allowed`, { Allow: allow });
  }
  const principal = route.acl === false ? acl.resolve(undefined) : acl.resolve(req.token);
  return route.handle({ req, principal, rest: req.path.slice(route.pattern.length) });
}

function match(routes: readonly Route[], path: string): Route | undefined {
  let best: Route | undefined;
  for (const route of routes) {
    const hit = route.pattern.endsWith("/") ? path.startsWith(route.pattern) : path === route.pattern;
    if (hit && (!best || route.pattern.length > best.pattern.length)) best = route;
  }
  return best;
}

/** Go's path.Clean, keeping a trailing slash (ServeMux redirects to this form). */
const cleanPath = (path: string): string => posix.normalize(path.startsWith("/") ? path : `/${path}`);
