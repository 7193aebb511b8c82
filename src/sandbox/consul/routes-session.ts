import { requireAccess } from "./acl.js";
import { block, queryMeta, queryOptions } from "./blocking.js";
import { parseGoDuration } from "./go.js";
import { HttpError, json, type Reply } from "./http.js";
import { field, isRecord, parseJson } from "./json.js";
import type { Route, RouteContext } from "./router.js";
import type { SessionRequest } from "./sessions.js";
import { AGENT_NODE, type ConsulState } from "./state.js";
import { sessionJson } from "./wire.js";

/** Values below this many nanoseconds are taken as seconds (clients send "LockDelay": 15). */
const LOCK_DELAY_MIN_THRESHOLD = 1000;

/** /v1/session/* (agent/session_endpoint.go). */
export function sessionRoutes(state: ConsulState): Route[] {
  return [
    { pattern: "/v1/session/create", methods: ["PUT"], handle: (ctx) => create(state, ctx) },
    { pattern: "/v1/session/destroy/", methods: ["PUT"], handle: (ctx) => destroy(state, ctx) },
    { pattern: "/v1/session/renew/", methods: ["PUT"], handle: (ctx) => renew(state, ctx) },
    { pattern: "/v1/session/info/", methods: ["GET"], handle: (ctx) => info(state, ctx) },
    { pattern: "/v1/session/node/", methods: ["GET"], handle: (ctx) => list(state, ctx, ctx.rest) },
    { pattern: "/v1/session/list", methods: ["GET"], handle: (ctx) => list(state, ctx, undefined) },
  ];
}

function create(state: ConsulState, { req, principal }: RouteContext): Reply {
  const request = sessionRequest(req.bodySize > 0 ? req.body.toString("utf8") : undefined);
  requireAccess(principal, "write", "session", request.node);
  const session = state.write((idx) => state.sessions.create(idx, request));
  return json({ ID: session.id });
}

function destroy(state: ConsulState, { principal, rest: id }: RouteContext): Reply {
  if (id === "") throw new HttpError(400, "Missing session");
  requireAccess(principal, "write", "session", state.sessions.get(id)?.node ?? AGENT_NODE);
  state.write((idx) => state.sessions.destroy(idx, id));
  return json(true);
}

function renew(state: ConsulState, { principal, rest: id }: RouteContext): Reply {
  if (id === "") throw new HttpError(400, "Missing session");
  requireAccess(principal, "write", "session", state.sessions.get(id)?.node ?? AGENT_NODE);
  const session = state.sessions.renew(id);
  if (!session) throw new HttpError(404, `Session id '${id}' not found`);
  return json([sessionJson(session)]);
}

async function info(state: ConsulState, { req, principal, rest: id }: RouteContext): Promise<Reply> {
  if (id === "") throw new HttpError(400, "Missing session");
  requireAccess(principal, "read", "session", state.sessions.get(id)?.node ?? AGENT_NODE);
  const opts = queryOptions(req.query);
  await block(state.raft, opts, req.signal, () => state.raft.index("sessions"));
  const session = state.sessions.get(id);
  return json(session ? [sessionJson(session)] : [], queryMeta(state.raft.index("sessions"), opts));
}

async function list(
  state: ConsulState,
  { req, principal }: RouteContext,
  node: string | undefined,
): Promise<Reply> {
  if (node === "") throw new HttpError(400, "Missing node name");
  requireAccess(principal, "read", "session", node ?? "");
  const opts = queryOptions(req.query);
  await block(state.raft, opts, req.signal, () => state.raft.index("sessions"));
  const sessions = state.sessions.list().filter((s) => node === undefined || s.node === node);
  return json(sessions.map(sessionJson), queryMeta(state.raft.index("sessions"), opts));
}

/**
 * The create body, with the server's defaults and its fix-ups: LockDelay as a duration string or
 * nanoseconds (small numbers are seconds), and the deprecated Checks field.
 */
function sessionRequest(body: string | undefined): SessionRequest {
  const defaults: SessionRequest = {
    name: "",
    node: AGENT_NODE,
    lockDelay: 15e9,
    behavior: "release",
    ttl: "",
    nodeChecks: ["serfHealth"],
    serviceChecks: null,
    checks: ["serfHealth"],
  };
  if (body === undefined) return fixupChecks(defaults);
  let raw: unknown;
  try {
    raw = parseJson(body);
  } catch (error) {
    throw new HttpError(400, `Request decode failed: ${(error as Error).message}`);
  }
  if (!isRecord(raw)) throw new HttpError(400, "Request decode failed: expected a JSON object");
  return fixupChecks({
    name: stringOr(field(raw, "Name"), defaults.name),
    node: stringOr(field(raw, "Node"), defaults.node),
    lockDelay: lockDelay(field(raw, "LockDelay")) ?? defaults.lockDelay,
    behavior: stringOr(field(raw, "Behavior"), defaults.behavior),
    ttl: stringOr(field(raw, "TTL"), defaults.ttl),
    nodeChecks: stringsOr(field(raw, "NodeChecks"), defaults.nodeChecks),
    serviceChecks: serviceChecks(field(raw, "ServiceChecks")),
    checks: stringsOr(field(raw, "Checks"), defaults.checks),
  });
}

/** fixupEmptySessionChecks: an empty Checks empties NodeChecks; the default Checks defers to NodeChecks. */
function fixupChecks(request: SessionRequest): SessionRequest {
  if (request.checks.length === 0) return { ...request, nodeChecks: [] };
  if (request.checks.length === 1 && request.checks[0] === "serfHealth") return { ...request, checks: [] };
  if (request.nodeChecks.length === 0) return { ...request, checks: [] };
  return request;
}

function lockDelay(value: unknown): number | undefined {
  let ns: number;
  if (typeof value === "string") {
    try {
      ns = parseGoDuration(value);
    } catch (error) {
      throw new HttpError(400, `Request decode failed: ${(error as Error).message}`);
    }
  } else if (typeof value === "number") {
    ns = value;
  } else {
    return undefined;
  }
  return ns < LOCK_DELAY_MIN_THRESHOLD ? ns * 1e9 : ns;
}

function serviceChecks(value: unknown): string[] | null {
  if (!Array.isArray(value) || value.length === 0) return null;
  return value.map((check) => (isRecord(check) ? stringOr(field(check, "ID"), "") : ""));
}

const stringOr = (value: unknown, fallback: string): string => (typeof value === "string" ? value : fallback);

const stringsOr = (value: unknown, fallback: readonly string[]): readonly string[] =>
  Array.isArray(value)
    ? value.filter((item): item is string => typeof item === "string")
    : value === null
      ? []
      : fallback;
