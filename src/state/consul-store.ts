import { randomBytes } from "node:crypto";
import type { ConsulOptions } from "../backends/consul-secrets.js";
import type { Clock } from "../clock.js";
import type { Logger } from "../log.js";
import {
  ConsulError,
  ConsulHttp,
  decodeValue,
  kvPath,
  parseEntries,
  unexpected,
  type ConsulResponse,
  type KvEntry,
  type TxnError,
} from "./consul-http.js";
import { NotLeaderError } from "./leadership.js";
import type { AuditEntry, StateStore, Versioned } from "./store.js";

export { NotLeaderError };

/** A state value over the configured maximum: the message names the key, never the value. */
export class StateValueTooLargeError extends Error {}

/** Writes are made only while `session()` holds `lockKey` (Leadership.guard() builds one). */
export interface LeaderGuard {
  lockKey: string;
  /** The session holding the lock, or undefined when this instance is not the leader. */
  session(): string | undefined;
}

export interface ConsulStateStoreOptions {
  consul: ConsulOptions;
  /** Where everything lives, ending with "/": values under `<prefix>kv/`, the audit log under `<prefix>audit/`. */
  prefix: string;
  clock: Clock;
  logger: Logger;
  /** Largest JSON value accepted, in bytes (Consul's own limit is 512 KB). */
  maxValueBytes?: number;
  auditMaxAgeMs?: number;
  /** Pruning old audit entries runs on append, at most this often. */
  auditPruneIntervalMs?: number;
  guard?: LeaderGuard;
  requestTimeoutMs?: number;
  healthTimeoutMs?: number;
}

export const DEFAULT_MAX_VALUE_BYTES = 256 * 1024;
export const DEFAULT_AUDIT_MAX_AGE_MS = 90 * 24 * 3600_000;
const DEFAULT_PRUNE_INTERVAL_MS = 3600_000;
/** Consul refuses transactions of more than 64 operations. */
const MAX_TXN_OPS = 64;
/** The values of one transaction (base64) stay under this, well within Consul's 512 KB request limit. */
const TXN_VALUE_BYTES_MAX = 400 * 1024;

interface KvOp {
  Verb: string;
  Key: string;
  Value?: string;
  Index?: number;
  Session?: string;
}

type TxnOutcome = { ok: true; results: Array<{ KV: KvEntry }> } | { ok: false; errors: TxnError[] };

/**
 * The state store for several instances: Consul KV. `version` is the key's ModifyIndex, so check-and-set
 * maps onto Consul's `?cas=`. With a guard, every write is a transaction whose first operation checks
 * that the leader's session still holds the lock key: a deposed leader cannot write.
 */
export class ConsulStateStore implements StateStore {
  private readonly http: ConsulHttp;
  private readonly dataRoot: string;
  private readonly auditRoot: string;
  private readonly maxValueBytes: number;
  private readonly auditMaxAgeMs: number;
  private readonly pruneIntervalMs: number;
  /** Orders audit entries appended in the same millisecond; the tag keeps two instances apart. */
  private auditSeq = 0;
  private readonly auditTag = randomBytes(3).toString("hex");
  private lastPrune = Number.NEGATIVE_INFINITY;

  constructor(private readonly opts: ConsulStateStoreOptions) {
    if (!/^([^/]+\/)+$/.test(opts.prefix)) {
      throw new Error(`the Consul state prefix must end with "/" (got "${opts.prefix}")`);
    }
    this.http = new ConsulHttp({
      ...opts.consul,
      clock: opts.clock,
      timeoutMs: opts.requestTimeoutMs ?? 10_000,
    });
    this.dataRoot = opts.prefix + "kv/";
    this.auditRoot = opts.prefix + "audit/";
    this.maxValueBytes = opts.maxValueBytes ?? DEFAULT_MAX_VALUE_BYTES;
    this.auditMaxAgeMs = opts.auditMaxAgeMs ?? DEFAULT_AUDIT_MAX_AGE_MS;
    this.pruneIntervalMs = opts.auditPruneIntervalMs ?? DEFAULT_PRUNE_INTERVAL_MS;
  }

  async get<T>(key: string): Promise<Versioned<T> | undefined> {
    const path = kvPath(this.dataKey(key));
    const [entry] = parseEntries(await this.http.send("GET", path), `GET ${path}`);
    return entry && { value: JSON.parse(decodeValue(entry)) as T, version: entry.ModifyIndex };
  }

  async set<T>(key: string, value: T): Promise<void> {
    const full = this.dataKey(key);
    const body = this.encode(key, value);
    if (this.opts.guard) return void (await this.guardedWrite([setOp(full, body)], `write ${key}`));
    this.expectTrue(await this.http.send("PUT", kvPath(full), { body }), `PUT ${kvPath(full)}`);
  }

  /** In guarded transactions: at most 63 writes (one operation checks the lock) and about 400 KB. */
  async setMany(entries: ReadonlyArray<readonly [key: string, value: unknown]>): Promise<void> {
    if (!this.opts.guard) {
      for (const [key, value] of entries) await this.set(key, value);
      return;
    }
    let batch: KvOp[] = [];
    let bytes = 0;
    for (const [key, value] of entries) {
      const op = setOp(this.dataKey(key), this.encode(key, value));
      const size = op.Value?.length ?? 0;
      if (batch.length === MAX_TXN_OPS - 1 || (batch.length > 0 && bytes + size > TXN_VALUE_BYTES_MAX)) {
        await this.guardedWrite(batch, `write ${batch.length} keys`);
        batch = [];
        bytes = 0;
      }
      batch.push(op);
      bytes += size;
    }
    if (batch.length) await this.guardedWrite(batch, `write ${batch.length} keys`);
  }

  async cas<T>(key: string, value: T, version: number): Promise<boolean> {
    const full = this.dataKey(key);
    const body = this.encode(key, value);
    if (this.opts.guard) {
      const op = { ...setOp(full, body), Verb: "cas", Index: version };
      return this.guardedWrite([op], `write ${key}`);
    }
    const path = kvPath(full);
    const res = await this.http.send("PUT", path, { body, query: { cas: String(version) } });
    if (res.status !== 200) throw unexpected(res, `PUT ${path}?cas`);
    return res.text.trim() === "true";
  }

  async delete(key: string): Promise<void> {
    const full = this.dataKey(key);
    if (this.opts.guard)
      return void (await this.guardedWrite([{ Verb: "delete", Key: full }], `delete ${key}`));
    const path = kvPath(full);
    this.expectTrue(await this.http.send("DELETE", path), `DELETE ${path}`);
  }

  async list<T>(prefix: string): Promise<Array<Versioned<T> & { key: string }>> {
    const path = kvPath(this.dataRoot + prefix);
    const entries = parseEntries(
      await this.http.send("GET", path, { query: { recurse: "" } }),
      `GET ${path}`,
    );
    // Consul answers in byte (UTF-8) order, as the file store does; sorted here too so as not to depend on it.
    return entries
      .map((entry) => ({
        key: entry.Key.slice(this.dataRoot.length),
        version: entry.ModifyIndex,
        value: JSON.parse(decodeValue(entry)) as T,
      }))
      .sort((a, b) => Buffer.compare(Buffer.from(a.key), Buffer.from(b.key)));
  }

  async appendAudit(entry: AuditEntry): Promise<void> {
    this.opts.logger.info({ audit: entry }, `audit: ${entry.kind}`);
    // Keyed by when it was appended (not entry.at), so that reading back follows the order of appends.
    const key = this.auditRoot + auditId(this.opts.clock.now(), this.auditSeq++, this.auditTag);
    const body = this.encode(`audit entry ${entry.kind}`, entry);
    if (this.opts.guard) await this.guardedWrite([setOp(key, body)], "append to the audit log");
    else this.expectTrue(await this.http.send("PUT", kvPath(key), { body }), "PUT audit entry");
    if (this.opts.clock.now() - this.lastPrune >= this.pruneIntervalMs) await this.pruneAudit();
  }

  async readAudit(limit: number): Promise<AuditEntry[]> {
    if (limit <= 0) return [];
    const keys = (await this.auditKeys()).slice(-limit);
    const entries: AuditEntry[] = [];
    for (let at = 0; at < keys.length; at += MAX_TXN_OPS) {
      const batch = keys.slice(at, at + MAX_TXN_OPS).map((key) => ({ Verb: "get", Key: key }));
      for (const result of await this.readAll(batch))
        entries.push(JSON.parse(decodeValue(result)) as AuditEntry);
    }
    return entries;
  }

  async healthy(): Promise<boolean> {
    try {
      const res = await this.http.send("GET", "/v1/status/leader", {
        timeoutMs: this.opts.healthTimeoutMs ?? 2_000,
      });
      // A Consul without a Raft leader answers "" and cannot serve writes.
      return res.status === 200 && res.text.trim() !== '""';
    } catch {
      return false;
    }
  }

  async close(): Promise<void> {
    await this.http.close();
  }

  /** Deletes audit entries older than the maximum age; failures only delay it to the next append. */
  private async pruneAudit(): Promise<void> {
    this.lastPrune = this.opts.clock.now();
    try {
      const cutoff = this.opts.clock.now() - this.auditMaxAgeMs;
      const old = (await this.auditKeys()).filter(
        (key) => auditTime(key.slice(this.auditRoot.length)) < cutoff,
      );
      const perTxn = MAX_TXN_OPS - (this.opts.guard ? 1 : 0);
      for (let at = 0; at < old.length; at += perTxn) {
        const ops = old.slice(at, at + perTxn).map((key) => ({ Verb: "delete", Key: key }));
        if (this.opts.guard) await this.guardedWrite(ops, "prune the audit log");
        else {
          const outcome = await this.txn(ops);
          if (!outcome.ok) throw new ConsulError(`audit pruning refused: ${outcome.errors[0]?.What}`, 409);
        }
      }
      if (old.length > 0) this.opts.logger.debug({ pruned: old.length }, "old audit entries pruned");
    } catch (error) {
      // The entry itself was written: a failed pruning is only reported.
      const level = error instanceof NotLeaderError ? "debug" : "warn";
      this.opts.logger[level]({ err: (error as Error).message }, "could not prune the audit log");
    }
  }

  private async auditKeys(): Promise<string[]> {
    const path = kvPath(this.auditRoot);
    const res = await this.http.send("GET", path, { query: { keys: "" } });
    if (res.status === 404) return [];
    if (res.status !== 200) throw unexpected(res, `GET ${path}?keys`);
    return (JSON.parse(res.text) as string[]).sort();
  }

  /** Reads every key of the batch; keys pruned in the meantime are skipped. */
  private async readAll(ops: KvOp[]): Promise<KvEntry[]> {
    let outcome = await this.txn(ops);
    if (!outcome.ok) {
      const missing = new Set(outcome.errors.map((e) => e.OpIndex));
      const left = ops.filter((_, i) => !missing.has(i));
      if (left.length === 0) return [];
      outcome = await this.txn(left);
      if (!outcome.ok) throw new ConsulError(`audit read refused: ${outcome.errors[0]?.What}`, 409);
    }
    return outcome.results.map((r) => r.KV);
  }

  /**
   * Runs `ops` after checking the guard's session still holds the lock. True when done; false when one
   * of `ops` itself was refused (a stale CAS). NotLeaderError when the session check failed.
   */
  private async guardedWrite(ops: KvOp[], what: string): Promise<boolean> {
    const guard = this.opts.guard;
    if (!guard) throw new Error("guardedWrite without a guard");
    const session = guard.session();
    if (!session) throw new NotLeaderError(`not the leader: did not ${what}`);
    const outcome = await this.txn([{ Verb: "check-session", Key: guard.lockKey, Session: session }, ...ops]);
    if (outcome.ok) return true;
    if (outcome.errors.some((e) => e.OpIndex === 0)) {
      throw new NotLeaderError(
        `no longer the leader (${guard.lockKey} is not held by this instance): did not ${what}`,
      );
    }
    if (ops.every((op) => op.Verb === "cas")) return false;
    throw new ConsulError(`Consul refused to ${what}: ${outcome.errors.map((e) => e.What).join("; ")}`, 409);
  }

  private async txn(ops: KvOp[]): Promise<TxnOutcome> {
    const res = await this.http.send("PUT", "/v1/txn", { body: JSON.stringify(ops.map((KV) => ({ KV }))) });
    if (res.status === 200) {
      const body = JSON.parse(res.text) as { Results: Array<{ KV: KvEntry }> | null };
      return { ok: true, results: body.Results ?? [] };
    }
    if (res.status === 409) {
      const body = JSON.parse(res.text) as { Errors: TxnError[] | null };
      return { ok: false, errors: body.Errors ?? [] };
    }
    throw unexpected(res, "PUT /v1/txn");
  }

  private expectTrue(res: ConsulResponse, what: string): void {
    if (res.status !== 200 || res.text.trim() !== "true") throw unexpected(res, what);
  }

  private encode(name: string, value: unknown): string {
    const text = JSON.stringify(value);
    if (text === undefined) throw new TypeError(`state value for ${name} cannot be stored as JSON`);
    const bytes = Buffer.byteLength(text);
    if (bytes > this.maxValueBytes) {
      throw new StateValueTooLargeError(
        `state value for ${name} is ${bytes} bytes, over the ${this.maxValueBytes}-byte limit`,
      );
    }
    return text;
  }

  /** Keys become URL paths: no empty, "." or ".." segment, nothing that could leave the prefix. */
  private dataKey(key: string): string {
    const segments = key.split("/");
    const bad =
      key === "" ||
      segments.slice(0, -1).some((s) => s === "") ||
      segments.some((s) => s === "." || s === "..") ||
      [...key].some(isControl);
    if (bad)
      throw new Error(`"${[...key].map((c) => (isControl(c) ? "?" : c)).join("")}" cannot be a state key`);
    return this.dataRoot + key;
  }
}

const isControl = (char: string): boolean => {
  const code = char.charCodeAt(0);
  return code < 0x20 || code === 0x7f;
};

const setOp = (key: string, json: string): KvOp => ({
  Verb: "set",
  Key: key,
  Value: Buffer.from(json).toString("base64"),
});

/** Sortable as text: the time of the append, then the order of appends, then which store appended it. */
function auditId(at: number, seq: number, tag: string): string {
  const time = String(Math.max(0, Math.trunc(at))).padStart(15, "0");
  return `${time}-${String(seq % 1e9).padStart(9, "0")}-${tag}`;
}

function auditTime(id: string): number {
  return Number(id.slice(0, id.indexOf("-")));
}
