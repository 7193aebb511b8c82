import { allowed, deniedMessage, refuseAnonymous, type Principal } from "./acl.js";
import { goQuote } from "./go.js";
import { json, type Reply } from "./http.js";
import type { JsonObject } from "./json.js";
import type { DirEntry } from "./kv.js";
import type { Route } from "./router.js";
import { KV_MAX_VALUE_SIZE } from "./routes-kv.js";
import type { ConsulState } from "./state.js";
import { parseTxnBody, WRITE_VERBS, type TxnOp } from "./txn-ops.js";
import { dirEntryJson } from "./wire.js";

type KvOp = Extract<TxnOp, { kind: "kv" }>;

interface TxnError {
  readonly OpIndex: number;
  readonly What: string;
}

/** One result: the entry, and whether its value is shown (only reads show it). */
type Result = { readonly entry: DirEntry; readonly withValue: boolean };

/**
 * PUT /v1/txn (agent/txn_endpoint.go, consul/txn_endpoint.go, state/txn.go): all operations or
 * none. Every failing operation is reported, as 409 with {Results: null, Errors}.
 */
export function txnRoutes(state: ConsulState): Route[] {
  return [
    {
      pattern: "/v1/txn",
      methods: ["PUT"],
      handle: ({ req, principal }) => {
        const ops = parseTxnBody(req.body, req.bodySize, KV_MAX_VALUE_SIZE);
        const writes = ops.some((op) => op.kind === "other" || WRITE_VERBS.has(op.verb));
        const first = ops.find((op) => op.kind === "kv");
        refuseAnonymous(principal, writes ? "write" : "read", "key", first?.kind === "kv" ? first.key : "");
        const preErrors = preCheck(state, principal, ops);
        if (preErrors.length > 0) return conflict(preErrors);
        const outcome = writes ? state.write((idx) => run(state, idx, ops)) : run(state, 0, ops);
        if ("errors" in outcome) return conflict(outcome.errors);
        const readable = outcome.results.filter((r) => allowed(principal, "read", "key", r.entry.key));
        const body = {
          Results: readable.map((r) => ({ KV: dirEntryJson(r.entry, r.withValue) })),
          Errors: null,
        };
        return json(body, writes ? {} : { "X-Consul-LastContact": "0", "X-Consul-KnownLeader": "true" });
      },
    },
  ];
}

const conflict = (errors: readonly TxnError[]): Reply =>
  json({ Results: null, Errors: errors.map((e): JsonObject => ({ ...e })) }, {}, 409);

/** kvsPreApply for each operation: key present, ACLs, lock-delay. Any error stops the transaction. */
function preCheck(state: ConsulState, principal: Principal, ops: readonly TxnOp[]): TxnError[] {
  const errors: TxnError[] = [];
  ops.forEach((op, OpIndex) => {
    const what = op.kind === "kv" ? preCheckKv(state, principal, op) : undefined;
    if (what !== undefined) errors.push({ OpIndex, What: what });
  });
  return errors;
}

function preCheckKv(state: ConsulState, principal: Principal, op: KvOp): string | undefined {
  if (op.key === "" && op.verb !== "delete-tree") return "Must provide key";
  const access =
    op.verb === "get" || op.verb === "get-tree" ? undefined : WRITE_VERBS.has(op.verb) ? "write" : "read";
  if (access !== undefined && !allowed(principal, access, "key", op.key)) {
    return deniedMessage(principal, access, "key", op.key);
  }
  if (op.verb === "lock" && state.kv.lockDelayed(op.key, state.now())) {
    return `failed to lock key ${goQuote(op.key)} due to lock delay`;
  }
  return undefined;
}

/** Runs every operation; on any error the store is put back as it was. */
function run(
  state: ConsulState,
  idx: number,
  ops: readonly TxnOp[],
): { results: Result[] } | { errors: TxnError[] } {
  const saved = { kv: state.kv.snapshot(), tables: state.raft.saveTables() };
  const results: Result[] = [];
  const errors: TxnError[] = [];
  ops.forEach((op, OpIndex) => {
    try {
      if (op.kind === "other") throw new Error(op.what);
      results.push(...runKv(state, idx, op));
    } catch (error) {
      errors.push({ OpIndex, What: (error as Error).message });
    }
  });
  if (errors.length === 0) return { results };
  state.kv.restore(saved.kv);
  state.raft.restoreTables(saved.tables);
  return { errors };
}

function runKv(state: ConsulState, idx: number, op: KvOp): Result[] {
  const { kv } = state;
  const write = { key: op.key, value: op.value, flags: op.flags };
  const key = goQuote(op.key);
  const written = (entry: DirEntry | undefined, failure: string): Result[] => {
    if (!entry) throw new Error(failure);
    return [{ entry, withValue: false }];
  };
  switch (op.verb) {
    case "set":
      return written(kv.set(idx, write), "");
    case "cas":
      return written(kv.cas(idx, write, op.index), `failed to set key ${key}, index is stale`);
    case "lock":
      return written(kv.lock(idx, write, op.session), `failed to lock key ${key}, lock is already held`);
    case "unlock":
      return written(
        kv.unlock(idx, write, op.session),
        `failed to unlock key ${key}, lock isn't held, or is held by another session`,
      );
    case "delete":
      kv.delete(idx, op.key);
      return [];
    case "delete-tree":
      kv.deleteTree(idx, op.key);
      return [];
    case "delete-cas":
      if (!kv.deleteCas(idx, op.key, op.index))
        throw new Error(`failed to delete key ${key}, index is stale`);
      return [];
    default:
      return runKvRead(state, op);
  }
}

function runKvRead(state: ConsulState, op: KvOp): Result[] {
  const { kv } = state;
  const key = goQuote(op.key);
  switch (op.verb) {
    case "get": {
      const entry = kv.get(op.key);
      if (!entry) throw new Error(`key ${key} doesn't exist`);
      return [{ entry, withValue: true }];
    }
    case "get-tree":
      return kv.list(op.key).map((entry) => ({ entry, withValue: true }));
    case "check-session":
      return [{ entry: kv.checkSession(op.key, op.session), withValue: false }];
    case "check-index":
      return [{ entry: kv.checkIndex(op.key, op.index), withValue: false }];
    case "check-not-exists":
      if (kv.get(op.key)) throw new Error(`key ${key} exists`);
      return [];
    default:
      throw new Error(`unknown KV verb ${goQuote(op.verb)}`);
  }
}
