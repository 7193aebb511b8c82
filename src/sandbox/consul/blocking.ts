import { parseGoDuration, parseUint64 } from "./go.js";
import { HttpError, type Headers } from "./http.js";
import type { Raft } from "./raft.js";

export interface QueryOptions {
  /** ?index=: 0 means "do not block". */
  readonly minIndex: bigint;
  readonly waitMs: number;
  readonly consistency: "leader" | "stale" | "consistent";
}

const DEFAULT_WAIT_MS = 5 * 60_000;
const MAX_WAIT_MS = 10 * 60_000;
/** Consul adds up to wait/16 of random jitter so that many watchers do not wake together. */
const JITTER_FRACTION = 16;

/** parseWait and parseConsistency of agent/http.go, with their 400 answers. */
export function queryOptions(query: URLSearchParams): QueryOptions {
  let waitMs = DEFAULT_WAIT_MS;
  const wait = query.get("wait") ?? "";
  if (wait !== "") {
    try {
      waitMs = parseGoDuration(wait) / 1e6;
    } catch {
      throw new HttpError(400, "Invalid wait time");
    }
  }
  let minIndex = 0n;
  const index = query.get("index") ?? "";
  if (index !== "") {
    try {
      minIndex = parseUint64(index);
    } catch {
      throw new HttpError(400, "Invalid index");
    }
  }
  return { minIndex, waitMs: Math.min(Math.max(waitMs, 0), MAX_WAIT_MS), consistency: consistency(query) };
}

function consistency(query: URLSearchParams): QueryOptions["consistency"] {
  const stale = query.has("stale");
  const consistent = query.has("consistent");
  if (stale && consistent) {
    throw new HttpError(400, "Cannot specify ?stale with ?consistent, conflicting semantics.");
  }
  return stale ? "stale" : consistent ? "consistent" : "leader";
}

/** Index 0 would make clients spin (?index=0 never blocks), so Consul reports at least 1. */
export const reportable = (index: number): number => Math.max(index, 1);

/**
 * Waits until `index()` moves past ?index=, the wait (plus jitter) runs out, or the request is
 * abandoned. Returns at once without ?index=.
 */
export function block(
  raft: Raft,
  opts: QueryOptions,
  signal: AbortSignal,
  index: () => number,
): Promise<void> {
  const moved = (): boolean => BigInt(reportable(index())) > opts.minIndex;
  if (opts.minIndex === 0n || moved() || signal.aborted) return Promise.resolve();
  return new Promise((resolve) => {
    const done = (): void => {
      clearTimeout(timer);
      unsubscribe();
      signal.removeEventListener("abort", done);
      resolve();
    };
    const timeout = opts.waitMs + Math.random() * (opts.waitMs / JITTER_FRACTION);
    const timer = setTimeout(done, timeout);
    const unsubscribe = raft.onCommit(() => {
      if (moved()) done();
    });
    signal.addEventListener("abort", done, { once: true });
  });
}

/** The headers Consul's setMeta puts on every read. */
export function queryMeta(index: number, opts: QueryOptions, filteredByAcls = false): Headers {
  return {
    "X-Consul-Index": String(reportable(index)),
    "X-Consul-KnownLeader": "true",
    "X-Consul-LastContact": "0",
    "X-Consul-Effective-Consistency": opts.consistency,
    ...(filteredByAcls ? { "X-Consul-Results-Filtered-By-ACLs": "true" } : {}),
  };
}
