import { requireAccess } from "./acl.js";
import { block, queryMeta, queryOptions } from "./blocking.js";
import type { CatalogService } from "./catalog.js";
import { HttpError, json, type Reply } from "./http.js";
import type { JsonObject } from "./json.js";
import type { Route, RouteContext } from "./router.js";
import type { ConsulState } from "./state.js";
import { checkJson, nodeJson, nodeServiceJson, serviceNodeJson } from "./wire.js";

/** /v1/health/* and /v1/catalog/* reads, all blocking queries. */
export function catalogRoutes(state: ConsulState): Route[] {
  const get = (pattern: string, handle: (ctx: RouteContext) => Promise<Reply>): Route => ({
    pattern,
    methods: ["GET"],
    handle,
  });
  return [
    get("/v1/health/state/", (ctx) => checksInState(state, ctx)),
    get("/v1/health/service/", (ctx) => healthService(state, ctx)),
    get("/v1/health/checks/", (ctx) => healthChecks(state, ctx)),
    get("/v1/health/node/", (ctx) => nodeChecks(state, ctx)),
    get("/v1/catalog/services", (ctx) => catalogServices(state, ctx)),
    get("/v1/catalog/service/", (ctx) => catalogService(state, ctx)),
    get("/v1/catalog/nodes", (ctx) => catalogNodes(state, ctx)),
  ];
}

/** Runs a blocking read: waits on `index`, then answers `body` with the query headers. */
async function blockingRead(
  state: ConsulState,
  { req }: RouteContext,
  index: () => number,
  body: () => JsonObject | readonly JsonObject[],
): Promise<Reply> {
  const opts = queryOptions(req.query);
  await block(state.raft, opts, req.signal, index);
  return json(body(), queryMeta(index(), opts));
}

function checksInState(state: ConsulState, ctx: RouteContext): Promise<Reply> {
  const wanted = ctx.rest;
  if (wanted === "") throw new HttpError(400, "Missing check state");
  requireAccess(ctx.principal, "read", "node", "");
  // Consul does not validate the state: an unknown one simply matches nothing.
  return blockingRead(
    state,
    ctx,
    () => state.raft.index("checks"),
    () =>
      state.catalog
        .checks()
        .filter((check) => wanted === "any" || check.status === wanted)
        .map(checkJson),
  );
}

function healthService(state: ConsulState, ctx: RouteContext): Promise<Reply> {
  const name = serviceName(ctx);
  const passing = passingParam(ctx.req.query);
  const tags = ctx.req.query.getAll("tag");
  return blockingRead(
    state,
    ctx,
    () => state.catalog.serviceIndex(name),
    () =>
      tagged(state.catalog.instances(name), tags).flatMap((svc) => {
        const checks = state.catalog.instanceChecks(svc);
        if (passing && checks.some((check) => check.status !== "passing")) return [];
        const node = state.catalog.node(svc.node);
        if (!node) return [];
        return [
          {
            Node: nodeJson(node, state.datacenter),
            Service: nodeServiceJson(svc),
            Checks: checks.map(checkJson),
          },
        ];
      }),
  );
}

function healthChecks(state: ConsulState, ctx: RouteContext): Promise<Reply> {
  const name = serviceName(ctx);
  return blockingRead(
    state,
    ctx,
    () => state.catalog.serviceIndex(name),
    () =>
      state.catalog
        .checks()
        .filter((check) => check.serviceName === name)
        .map(checkJson),
  );
}

function nodeChecks(state: ConsulState, ctx: RouteContext): Promise<Reply> {
  const node = ctx.rest;
  if (node === "") throw new HttpError(400, "Missing node name");
  requireAccess(ctx.principal, "read", "node", node);
  return blockingRead(
    state,
    ctx,
    () => state.raft.index("checks"),
    () =>
      state.catalog
        .checks()
        .filter((check) => check.node === node)
        .map(checkJson),
  );
}

function catalogServices(state: ConsulState, ctx: RouteContext): Promise<Reply> {
  requireAccess(ctx.principal, "read", "service", "");
  return blockingRead(
    state,
    ctx,
    () => state.raft.index("services"),
    () => {
      const tags = new Map<string, Set<string>>();
      for (const svc of state.catalog.services()) {
        const set = tags.get(svc.service) ?? new Set<string>();
        svc.tags.forEach((tag) => set.add(tag));
        tags.set(svc.service, set);
      }
      const names = [...tags.keys()].sort();
      return Object.fromEntries(names.map((name) => [name, [...(tags.get(name) ?? [])].sort()]));
    },
  );
}

function catalogService(state: ConsulState, ctx: RouteContext): Promise<Reply> {
  const name = serviceName(ctx);
  const tags = ctx.req.query.getAll("tag");
  return blockingRead(
    state,
    ctx,
    () => state.catalog.serviceIndex(name),
    () =>
      tagged(state.catalog.instances(name), tags).flatMap((svc) => {
        const node = state.catalog.node(svc.node);
        return node ? [serviceNodeJson(svc, node, state.datacenter)] : [];
      }),
  );
}

function catalogNodes(state: ConsulState, ctx: RouteContext): Promise<Reply> {
  requireAccess(ctx.principal, "read", "node", "");
  return blockingRead(
    state,
    ctx,
    () => state.raft.index("nodes"),
    () => state.catalog.nodes().map((node) => nodeJson(node, state.datacenter)),
  );
}

function serviceName(ctx: RouteContext): string {
  if (ctx.rest === "") throw new HttpError(400, "Missing service name");
  requireAccess(ctx.principal, "read", "service", ctx.rest);
  return ctx.rest;
}

/** ?passing, ?passing=true/1/false as Go's strconv.ParseBool reads it. */
function passingParam(query: URLSearchParams): boolean {
  const value = query.get("passing");
  if (value === null) return false;
  if (value === "") return true;
  if (["1", "t", "T", "TRUE", "true", "True"].includes(value)) return true;
  if (["0", "f", "F", "FALSE", "false", "False"].includes(value)) return false;
  throw new HttpError(400, "Invalid value for ?passing");
}

/** ?tag= (repeatable): instances carrying every tag asked for. */
const tagged = (instances: CatalogService[], tags: readonly string[]): CatalogService[] =>
  instances.filter((svc) => tags.every((tag) => svc.tags.includes(tag)));
