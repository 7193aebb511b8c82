import type { IncomingMessage, ServerResponse } from "node:http";
import { parseAdminQuery, type AdminContext } from "./admin-context.js";
import { adminRoutes, type AdminReply, type AdminRoute } from "./admin-routes.js";
import { adminErrorBody, badRequest, forbidden, quorumUnavailable, toGarageError } from "./errors.js";
import type { FaultInjector } from "./faults.js";
import { readBody, send, splitTarget } from "./http.js";
import { parseJsonBody } from "./json.js";
import type { GarageStore } from "./store.js";

export interface AdminDeps {
  readonly store: GarageStore;
  readonly region: string;
  readonly adminToken: string;
  readonly apiVersion: "v2" | "v1-only";
  readonly nodeId: string;
  readonly faults: FaultInjector;
  readonly isDown: () => boolean;
}

/**
 * The admin API, in Garage's order: routing (unknown path or method: 400), query parameters, JSON
 * body, bearer token (403), then the endpoint. Fault injection and the "down" switch act like a
 * failing node, after authentication.
 */
export function createAdminListener(deps: AdminDeps): (req: IncomingMessage, res: ServerResponse) => void {
  const routes = adminRoutes(deps.apiVersion);
  return (req, res) => {
    void readBody(req).then((raw) => {
      const { rawPath } = splitTarget(req.url);
      let reply: AdminReply;
      try {
        reply = handle(deps, routes, req, raw ?? Buffer.alloc(0));
      } catch (error) {
        const garageError = toGarageError(error);
        reply = {
          status: garageError.status,
          contentType: "application/json",
          body: adminErrorBody(garageError, deps.region, rawPath),
        };
      }
      send(res, { status: reply.status, headers: { "Content-Type": reply.contentType }, body: reply.body });
    });
  };
}

function handle(
  deps: AdminDeps,
  routes: readonly AdminRoute[],
  req: IncomingMessage,
  raw: Buffer,
): AdminReply {
  const method = req.method ?? "GET";
  const { rawPath, rawQuery } = splitTarget(req.url);
  if (method === "OPTIONS") return { status: 204, contentType: "text/plain", body: "" };
  const query = parseAdminQuery(rawQuery);
  const route = routes.find(
    (r) => r.method === method && r.path === rawPath && !(r.unless ?? []).some((name) => query.has(name)),
  );
  if (!route) throw badRequest(`Unknown API endpoint: ${method} ${rawPath}`);
  for (const name of route.params) {
    if (!query.has(name)) throw badRequest(`Missing argument \`${name}\` for endpoint`);
  }
  const body = route.body ? parseJsonBody(raw) : undefined;
  if (route.auth) checkToken(req.headers.authorization, deps.adminToken);
  const fault = deps.faults.take("admin", route.name);
  if (fault) throw fault;
  const down = deps.isDown();
  if (down && route.needsQuorum) throw quorumUnavailable();
  const ctx: AdminContext = { store: deps.store, query, body, down, nodeId: deps.nodeId };
  return route.run(ctx);
}

function checkToken(header: string | undefined, token: string): void {
  if (header === undefined) throw forbidden("Authorization token must be provided");
  if (header.trim() !== `Bearer ${token}`) throw forbidden("Invalid authorization token provided");
}
