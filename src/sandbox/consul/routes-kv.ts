import { allowed, allowedPrefixWrite, denied, refuseAnonymous, requireAccess } from "./acl.js";
import { block, queryMeta, queryOptions } from "./blocking.js";
import { parseUint64 } from "./go.js";
import { HttpError, json, noBody, rawValue, text, type ConsulRequest, type Reply } from "./http.js";
import type { KvWrite } from "./kv.js";
import type { Route, RouteContext } from "./router.js";
import type { ConsulState } from "./state.js";
import { dirEntryJson } from "./wire.js";

/** kv_max_value_size's default (the suggested Raft entry size). */
export const KV_MAX_VALUE_SIZE = 512 * 1024;

/** /v1/kv/<key> as agent/kvs_endpoint.go and the KVS RPC endpoint answer it. */
export function kvRoutes(state: ConsulState): Route[] {
  return [
    {
      pattern: "/v1/kv/",
      methods: ["GET", "PUT", "DELETE"],
      handle: (ctx) => {
        if (ctx.req.method === "PUT") return kvPut(state, ctx);
        if (ctx.req.method === "DELETE") return kvDelete(state, ctx);
        return ctx.req.query.has("keys") ? kvKeys(state, ctx) : kvGet(state, ctx);
      },
    },
  ];
}

async function kvGet(state: ConsulState, { req, principal, rest: key }: RouteContext): Promise<Reply> {
  const opts = queryOptions(req.query);
  if (req.query.has("recurse")) {
    refuseAnonymous(principal, "read", "key", key);
    await block(state.raft, opts, req.signal, () => state.kv.prefixIndex(key));
    const entries = state.kv.list(key);
    const readable = entries.filter((entry) => allowed(principal, "read", "key", entry.key));
    const meta = queryMeta(state.kv.prefixIndex(key), opts, readable.length < entries.length);
    return readable.length === 0
      ? noBody(404, meta)
      : json(
          readable.map((e) => dirEntryJson(e)),
          meta,
        );
  }
  if (key === "") throw new HttpError(400, "Missing key name");
  requireAccess(principal, "read", "key", key);
  await block(state.raft, opts, req.signal, () => state.kv.keyIndex(key));
  const entry = state.kv.get(key);
  const meta = queryMeta(state.kv.keyIndex(key), opts);
  if (!entry) return noBody(404, meta);
  if (req.query.has("raw")) return rawValue(entry.value ?? Buffer.alloc(0), meta);
  return json([dirEntryJson(entry)], meta);
}

async function kvKeys(state: ConsulState, { req, principal, rest: prefix }: RouteContext): Promise<Reply> {
  const opts = queryOptions(req.query);
  // Consul still honours its historic misspelling, the correct one winning.
  const separator = req.query.get("separator") ?? req.query.get("seperator") ?? "";
  refuseAnonymous(principal, "read", "key", prefix);
  await block(state.raft, opts, req.signal, () => state.kv.prefixIndex(prefix));
  const keys = state.kv.keys(prefix, separator);
  const readable = keys.filter((key) => allowed(principal, "read", "key", key));
  const meta = queryMeta(state.kv.prefixIndex(prefix), opts, readable.length < keys.length);
  if (readable.length === 0 && prefix !== "") return noBody(404, meta);
  return json(readable, meta);
}

function kvPut(state: ConsulState, { req, principal, rest: key }: RouteContext): Reply {
  if (key === "") throw new HttpError(400, "Missing key name");
  const conflict = conflictingFlags(req.query, ["cas", "acquire", "release"]);
  if (conflict) return conflict;
  const flags = req.query.has("flags") ? rpcParseUint(req.query.get("flags")) : 0n;
  const cas = req.query.has("cas") ? rpcParseUint(req.query.get("cas")) : undefined;
  if (req.bodySize > KV_MAX_VALUE_SIZE) {
    throw new HttpError(
      413,
      `Request body(${req.bodySize} bytes) too large, max size: ${KV_MAX_VALUE_SIZE} bytes. ` +
        "See https://developer.hashicorp.com/docs/agent/config/config-files#kv_max_value_size.",
    );
  }
  requireAccess(principal, "write", "key", key);
  const write: KvWrite = { key, value: req.body.length > 0 ? req.body : null, flags };
  return json(applyPut(state, req, write, cas));
}

/** A plain set answers true whatever happens; cas, acquire and release answer whether they did it. */
function applyPut(state: ConsulState, req: ConsulRequest, write: KvWrite, cas: bigint | undefined): boolean {
  const acquire = req.query.get("acquire");
  const release = req.query.get("release");
  if (acquire !== null) {
    // Lock-delay is checked on the leader before the write: a refused lock is just `false`.
    if (state.kv.lockDelayed(write.key, state.now())) return false;
    return state.write((idx) => state.kv.lock(idx, write, acquire)) !== undefined;
  }
  if (release !== null) return state.write((idx) => state.kv.unlock(idx, write, release)) !== undefined;
  if (cas !== undefined) return state.write((idx) => state.kv.cas(idx, write, cas)) !== undefined;
  state.write((idx) => state.kv.set(idx, write));
  return true;
}

function kvDelete(state: ConsulState, { req, principal, rest: key }: RouteContext): Reply {
  const conflict = conflictingFlags(req.query, ["recurse", "cas"]);
  if (conflict) return conflict;
  if (req.query.has("recurse")) {
    if (!allowedPrefixWrite(principal, key)) throw denied(principal, "write", "key", key);
    state.write((idx) => state.kv.deleteTree(idx, key));
    return json(true);
  }
  if (key === "") throw new HttpError(400, "Missing key name");
  const cas = req.query.has("cas") ? rpcParseUint(req.query.get("cas")) : undefined;
  requireAccess(principal, "write", "key", key);
  if (cas !== undefined) return json(state.write((idx) => state.kv.deleteCas(idx, key, cas)));
  state.write((idx) => state.kv.delete(idx, key));
  return json(true);
}

/** conflictingFlags in kvs_endpoint.go: 400 with the whole (sorted, encoded) query. */
function conflictingFlags(query: URLSearchParams, flags: readonly string[]): Reply | undefined {
  if (flags.filter((flag) => query.has(flag)).length < 2) return undefined;
  const sorted = new URLSearchParams(query);
  sorted.sort();
  return text(400, `Conflicting flags: ${sorted.toString()}\n`);
}

/** A malformed ?cas= or ?flags= is returned as a plain error by the handler: HTTP 500. */
function rpcParseUint(value: string | null): bigint {
  try {
    return parseUint64(value ?? "");
  } catch (error) {
    throw new HttpError(500, (error as Error).message);
  }
}
