import { requireAccess } from "./acl.js";
import type { CheckInput, CheckStatus, ServiceAddress } from "./catalog.js";
import { goQuote } from "./go.js";
import { HttpError, json, noBody, type Reply } from "./http.js";
import { field, isRecord, parseJson } from "./json.js";
import type { Route, RouteContext } from "./router.js";
import { AGENT_ADDRESS, AGENT_NODE, SERVER_RPC_PORT, type ConsulState } from "./state.js";

/**
 * The agent endpoints a test or the sandbox drives (agent/agent_endpoint.go): services and TTL-style
 * check updates, on the server's own node. Checks are never run; their status is what is set.
 */
export function agentRoutes(state: ConsulState): Route[] {
  const put = (pattern: string, handle: (ctx: RouteContext) => Reply): Route => ({
    pattern,
    methods: ["PUT"],
    handle,
  });
  return [
    put("/v1/agent/service/register", (ctx) => register(state, ctx)),
    put("/v1/agent/service/deregister/", (ctx) => deregister(state, ctx)),
    put("/v1/agent/check/pass/", (ctx) => updateCheck(state, ctx, "passing")),
    put("/v1/agent/check/warn/", (ctx) => updateCheck(state, ctx, "warning")),
    put("/v1/agent/check/fail/", (ctx) => updateCheck(state, ctx, "critical")),
  ];
}

/** /v1/status/*: answered without any token. */
export function statusRoutes(): Route[] {
  const leader = `${AGENT_ADDRESS}:${SERVER_RPC_PORT}`;
  return [
    { pattern: "/v1/status/leader", methods: ["GET"], acl: false, handle: () => json(leader) },
    { pattern: "/v1/status/peers", methods: ["GET"], acl: false, handle: () => json([leader]) },
  ];
}

function register(state: ConsulState, { req, principal }: RouteContext): Reply {
  const body = decode(req.body);
  const name = str(field(body, "Name"));
  if (name === "") throw new HttpError(400, "Missing service name");
  requireAccess(principal, "write", "service", name);
  const id = str(field(body, "ID")) || name;
  const address = str(field(body, "Address"));
  const port = num(field(body, "Port"));
  state.write((idx) =>
    state.catalog.registerService(idx, {
      node: AGENT_NODE,
      service: name,
      id,
      serviceAddress: address,
      port,
      tags: strings(field(body, "Tags")),
      meta: stringMap(field(body, "Meta")),
      taggedAddresses: {
        ...defaultTaggedAddresses(address, port),
        ...taggedAddresses(field(body, "TaggedAddresses")),
      },
      checks: checkInputs(body, id, name),
    }),
  );
  return noBody(200);
}

function deregister(state: ConsulState, { principal, rest: id }: RouteContext): Reply {
  const svc = state.catalog.service(AGENT_NODE, id);
  if (!svc) {
    throw new HttpError(
      404,
      `Unknown service ID ${goQuote(id)}. Ensure that the service ID is passed, not the service name.`,
    );
  }
  requireAccess(principal, "write", "service", svc.service);
  state.write((idx) => state.catalog.deregisterService(idx, AGENT_NODE, id));
  return noBody(200);
}

function updateCheck(
  state: ConsulState,
  { req, principal, rest: id }: RouteContext,
  status: CheckStatus,
): Reply {
  const check = state.catalog.check(AGENT_NODE, id);
  if (!check) {
    throw new HttpError(
      404,
      `Unknown check ID ${goQuote(id)}. Ensure that the check ID is passed, not the check name.`,
    );
  }
  if (check.serviceName === "") requireAccess(principal, "write", "node", AGENT_NODE);
  else requireAccess(principal, "write", "service", check.serviceName);
  const note = req.query.get("note") ?? "";
  state.write((idx) => state.catalog.setCheck(idx, AGENT_NODE, id, status, note));
  return noBody(200);
}

/** Check / Checks of a registration; IDs and names default as the agent makes them. */
function checkInputs(body: Record<string, unknown>, serviceId: string, serviceName: string): CheckInput[] {
  const many = field(body, "Checks");
  const one = field(body, "Check");
  const defs = Array.isArray(many) ? many.filter(isRecord) : isRecord(one) ? [one] : [];
  return defs.map((def, i) => {
    const suffix = defs.length > 1 ? `:${i + 1}` : "";
    return {
      checkId: str(field(def, "CheckID")) || str(field(def, "ID")) || `service:${serviceId}${suffix}`,
      name: str(field(def, "Name")) || `Service '${serviceName}' check`,
      status: status(field(def, "Status")),
      notes: str(field(def, "Notes")),
      type: checkType(def),
    };
  });
}

function checkType(def: Record<string, unknown>): string {
  const kinds = ["TTL", "HTTP", "TCP", "GRPC", "UDP", "H2PING", "AliasService", "AliasNode"];
  const kind = kinds.find((name) => str(field(def, name)) !== "");
  if (kind?.startsWith("Alias")) return "alias";
  return kind?.toLowerCase() ?? (Array.isArray(field(def, "ScriptArgs")) ? "script" : "");
}

/** New checks start critical unless the registration says otherwise. */
function status(value: unknown): CheckStatus {
  return value === "passing" || value === "warning" ? value : "critical";
}

/** The agent adds lan_ipv4 / wan_ipv4 tagged addresses to a service with an IPv4 address. */
function defaultTaggedAddresses(address: string, port: number): Record<string, ServiceAddress> {
  if (!/^\d{1,3}(\.\d{1,3}){3}$/.test(address)) return {};
  return { lan_ipv4: { address, port }, wan_ipv4: { address, port } };
}

function taggedAddresses(value: unknown): Record<string, ServiceAddress> {
  if (!isRecord(value)) return {};
  const out: Record<string, ServiceAddress> = {};
  for (const [tag, entry] of Object.entries(value)) {
    if (isRecord(entry))
      out[tag] = { address: str(field(entry, "Address")), port: num(field(entry, "Port")) };
  }
  return out;
}

function decode(body: Buffer): Record<string, unknown> {
  let raw: unknown;
  try {
    raw = parseJson(body.toString("utf8"));
  } catch (error) {
    throw new HttpError(400, `Request decode failed: ${(error as Error).message}`);
  }
  if (!isRecord(raw)) throw new HttpError(400, "Request decode failed: expected a JSON object");
  return raw;
}

const str = (value: unknown): string => (typeof value === "string" ? value : "");
const num = (value: unknown): number => (typeof value === "number" ? value : 0);
const strings = (value: unknown): string[] =>
  Array.isArray(value) ? value.filter((item): item is string => typeof item === "string") : [];
const stringMap = (value: unknown): Record<string, string> =>
  isRecord(value)
    ? Object.fromEntries(Object.entries(value).filter((e): e is [string, string] => typeof e[1] === "string"))
    : {};
