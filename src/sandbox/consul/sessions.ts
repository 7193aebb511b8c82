import { randomUUID } from "node:crypto";
import type { Catalog } from "./catalog.js";
import { parseGoDuration } from "./go.js";
import type { KvStore } from "./kv.js";
import type { Raft } from "./raft.js";

export type Behavior = "release" | "delete";

export interface Session {
  readonly id: string;
  readonly name: string;
  readonly node: string;
  /** Nanoseconds, as Consul reports it. */
  readonly lockDelay: number;
  readonly behavior: Behavior;
  /** As the client gave it ("30s"); "" for none. */
  readonly ttl: string;
  readonly nodeChecks: readonly string[];
  readonly serviceChecks: readonly string[] | null;
  /** The deprecated `Checks` field, kept when a client still sends it. */
  readonly checks: readonly string[];
  readonly createIndex: number;
  readonly modifyIndex: number;
}

export type SessionRequest = Omit<Session, "id" | "createIndex" | "modifyIndex" | "behavior"> & {
  readonly behavior: string;
};

export interface SessionTime {
  readonly now: () => number;
  /** Multiplies TTLs and lock delays (tests run them fast). */
  readonly scale: number;
}

const TTL_MIN_NS = 10e9;
const TTL_MAX_NS = 24 * 3600e9;
const MAX_LOCK_DELAY_NS = 60e9;
/** Consul invalidates a TTL session only after twice its TTL (structs.SessionTTLMultiplier). */
const TTL_MULTIPLIER = 2;

/** Sessions as agent/consul/session_endpoint.go, session_ttl.go and state/session.go handle them. */
export class Sessions {
  private readonly byId = new Map<string, Session>();
  private readonly expiries = new Map<string, { at: number; timer: NodeJS.Timeout }>();

  constructor(
    private readonly raft: Raft,
    private readonly kv: KvStore,
    private readonly catalog: Catalog,
    private readonly time: SessionTime,
  ) {}

  exists(id: string): boolean {
    return this.byId.has(id);
  }

  get(id: string): Session | undefined {
    return this.byId.get(id);
  }

  list(): Session[] {
    return [...this.byId.values()].sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  }

  /** Throws with Consul's message (an RPC error: HTTP 500) when the request is refused. */
  create(idx: number, request: SessionRequest): Session {
    const behavior = validBehavior(request.behavior);
    const ttlNs = validTtl(request.ttl);
    this.validateChecks(request);
    const session: Session = { ...request, behavior, id: randomUUID(), createIndex: idx, modifyIndex: idx };
    this.byId.set(session.id, session);
    this.raft.touch("sessions", idx);
    if (ttlNs > 0) this.schedule(session.id, ttlNs);
    return session;
  }

  /** Renewing restarts the TTL; not a Raft write. */
  renew(id: string): Session | undefined {
    const session = this.byId.get(id);
    const ttlNs = session && session.ttl !== "" ? parseGoDuration(session.ttl) : 0;
    if (ttlNs > 0) this.schedule(id, ttlNs);
    return session;
  }

  /** Destroy or invalidation: frees or deletes the session's locks and applies its lock-delay. */
  destroy(idx: number, id: string): void {
    const session = this.byId.get(id);
    if (!session) return;
    this.byId.delete(id);
    this.unschedule(id);
    this.raft.touch("sessions", idx);
    const delayMs = (Math.min(session.lockDelay, MAX_LOCK_DELAY_NS) / 1e6) * this.time.scale;
    for (const entry of this.kv.heldBy(id)) {
      if (session.behavior === "delete") this.kv.delete(idx, entry.key);
      else this.kv.releaseHeld(idx, entry);
      if (delayMs > 0) this.kv.setLockDelay(entry.key, this.time.now() + delayMs);
    }
  }

  /** A check a session depends on went critical or was removed. */
  checkLost(idx: number, node: string, checkId: string): void {
    for (const session of [...this.byId.values()]) {
      const uses = [...session.nodeChecks, ...(session.serviceChecks ?? []), ...session.checks];
      if (session.node === node && uses.includes(checkId)) this.destroy(idx, session.id);
    }
  }

  /**
   * Invalidates the sessions whose TTL ran out by the injected clock. Timers call it; requests call it
   * too, so a clock that runs ahead of real time (the sandbox's) is honoured on the next request.
   */
  sweep(): boolean {
    const now = this.time.now();
    const due = [...this.expiries].filter(([, expiry]) => expiry.at <= now).map(([id]) => id);
    if (due.length === 0) return false;
    const idx = this.raft.next();
    for (const id of due) this.destroy(idx, id);
    return true;
  }

  close(): void {
    for (const id of [...this.expiries.keys()]) this.unschedule(id);
  }

  private schedule(id: string, ttlNs: number): void {
    this.unschedule(id);
    const delayMs = (ttlNs / 1e6) * TTL_MULTIPLIER * this.time.scale;
    const at = this.time.now() + delayMs;
    const timer = setTimeout(() => this.onTimer(id), delayMs);
    this.expiries.set(id, { at, timer });
  }

  private onTimer(id: string): void {
    const expiry = this.expiries.get(id);
    if (!expiry) return;
    const left = expiry.at - this.time.now();
    if (left > 0) {
      // An injected clock slower than real time: look again when it should have got there.
      this.expiries.set(id, { at: expiry.at, timer: setTimeout(() => this.onTimer(id), left) });
      return;
    }
    if (this.sweep()) this.raft.committed();
  }

  private unschedule(id: string): void {
    const expiry = this.expiries.get(id);
    if (expiry) clearTimeout(expiry.timer);
    this.expiries.delete(id);
  }

  private validateChecks(request: SessionRequest): void {
    if (!this.catalog.node(request.node)) throw new Error("Missing node registration");
    const ids = [...request.nodeChecks, ...(request.serviceChecks ?? []), ...request.checks];
    for (const checkId of ids) {
      const check = this.catalog.check(request.node, checkId);
      if (!check) throw new Error(`Missing check '${checkId}' registration`);
      if (check.status === "critical") throw new Error(`Check '${checkId}' is in critical state`);
    }
  }
}

function validBehavior(behavior: string): Behavior {
  if (behavior === "" || behavior === "release") return "release";
  if (behavior === "delete") return "delete";
  throw new Error(`Invalid Behavior setting '${behavior}'`);
}

/** The TTL in nanoseconds (0 for none), or Consul's refusal. */
function validTtl(ttl: string): number {
  if (ttl === "") return 0;
  let ns: number;
  try {
    ns = parseGoDuration(ttl);
  } catch (error) {
    throw new Error(`Session TTL '${ttl}' invalid: ${(error as Error).message}`, { cause: error });
  }
  if (ns !== 0 && (ns < TTL_MIN_NS || ns > TTL_MAX_NS)) {
    throw new Error(`Invalid Session TTL '${ns}', must be between [10s=24h0m0s]`);
  }
  return ns;
}
