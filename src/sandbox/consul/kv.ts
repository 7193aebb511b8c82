import { goQuote } from "./go.js";
import type { Raft } from "./raft.js";

/** A KV entry as Consul's state store keeps it (structs.DirEntry). */
export interface DirEntry {
  readonly key: string;
  /** null for an empty value: Consul stores a nil slice and answers `"Value": null`. */
  readonly value: Buffer | null;
  readonly flags: bigint;
  readonly session: string;
  readonly lockIndex: number;
  readonly createIndex: number;
  readonly modifyIndex: number;
}

export interface KvWrite {
  readonly key: string;
  readonly value: Buffer | null;
  readonly flags: bigint;
}

interface KvSnapshot {
  readonly entries: Map<string, DirEntry>;
  readonly tombstones: Map<string, number>;
}

/** Keys sort as memdb's radix tree orders them: by UTF-8 bytes. */
const byKey = (a: string, b: string): number => Buffer.compare(Buffer.from(a), Buffer.from(b));

const sameContent = (a: DirEntry, b: Omit<DirEntry, "createIndex" | "modifyIndex">): boolean =>
  a.key === b.key &&
  a.flags === b.flags &&
  a.session === b.session &&
  a.lockIndex === b.lockIndex &&
  (a.value === null || b.value === null ? a.value === b.value : a.value.equals(b.value));

/** Every operation mirrors agent/consul/state/kvs.go; `idx` is the Raft index of the write. */
export class KvStore {
  private entries = new Map<string, DirEntry>();
  /** Deleted keys (or prefixes, for a tree delete) and the index they were deleted at. */
  private tombstones = new Map<string, number>();
  /** Keys whose lock a session held when it was invalidated, and when they may be locked again. */
  private readonly lockDelays = new Map<string, number>();

  constructor(
    private readonly raft: Raft,
    private readonly sessionExists: (id: string) => boolean,
  ) {}

  get(key: string): DirEntry | undefined {
    return this.entries.get(key);
  }

  list(prefix: string): DirEntry[] {
    const keys = [...this.entries.keys()].filter((key) => key.startsWith(prefix)).sort(byKey);
    return keys.map((key) => this.entries.get(key)).filter((entry) => entry !== undefined);
  }

  /** ?keys: keys under the prefix, cut after the first separator past it and deduplicated. */
  keys(prefix: string, separator: string): string[] {
    const out: string[] = [];
    for (const { key } of this.list(prefix)) {
      const at = separator === "" ? -1 : key.indexOf(separator, prefix.length);
      const listed = at < 0 ? key : key.slice(0, at + separator.length);
      if (out[out.length - 1] !== listed) out.push(listed);
    }
    return out;
  }

  /** kvsMaxIndex: the last write to the KV table or its graveyard. */
  maxIndex(): number {
    return Math.max(this.raft.index("kvs"), this.raft.index("tombstones"));
  }

  /** X-Consul-Index of a single-key read: the entry's ModifyIndex, else the table's. */
  keyIndex(key: string): number {
    return this.entries.get(key)?.modifyIndex ?? this.maxIndex();
  }

  /**
   * X-Consul-Index of ?recurse and ?keys reads (kvsListTxn): the highest index under the prefix,
   * tombstones included, else the table's. Consul reaps tombstones after a while, which can move
   * an index backwards; the double keeps them.
   */
  prefixIndex(prefix: string): number {
    if (prefix === "") return this.maxIndex();
    let index = 0;
    for (const entry of this.list(prefix)) index = Math.max(index, entry.modifyIndex);
    for (const [key, at] of this.tombstones) if (key.startsWith(prefix)) index = Math.max(index, at);
    return index === 0 ? this.maxIndex() : index;
  }

  heldBy(session: string): DirEntry[] {
    return [...this.entries.values()].filter((entry) => entry.session === session);
  }

  /** A plain PUT: keeps the lock holder, resets LockIndex to what the request carries (0), as Consul does. */
  set(idx: number, write: KvWrite): DirEntry {
    return this.store(idx, { ...write, session: "", lockIndex: 0 }, false);
  }

  /** ?cas=: 0 means create-only. */
  cas(idx: number, write: KvWrite, index: bigint): DirEntry | undefined {
    const existing = this.entries.get(write.key);
    if (index === 0n) return existing ? undefined : this.set(idx, write);
    if (!existing || BigInt(existing.modifyIndex) !== index) return undefined;
    return this.set(idx, write);
  }

  /** ?acquire=: undefined when another session holds the lock. Throws for a missing or unknown session. */
  lock(idx: number, write: KvWrite, session: string): DirEntry | undefined {
    if (session === "") throw new Error("missing session");
    if (!this.sessionExists(session)) throw new Error(`invalid session ${goQuote(session)}`);
    const existing = this.entries.get(write.key);
    if (existing && existing.session !== "" && existing.session !== session) return undefined;
    const lockIndex = !existing ? 1 : existing.lockIndex + (existing.session === session ? 0 : 1);
    return this.store(idx, { ...write, session, lockIndex }, true);
  }

  /** ?release=: writes the value too; undefined when the session does not hold the lock. */
  unlock(idx: number, write: KvWrite, session: string): DirEntry | undefined {
    if (session === "") throw new Error("missing session");
    const existing = this.entries.get(write.key);
    if (!existing || existing.session !== session) return undefined;
    return this.store(idx, { ...write, session: "", lockIndex: existing.lockIndex }, true);
  }

  /** Frees a lock of an invalidated session (Behavior "release"), keeping value and LockIndex. */
  releaseHeld(idx: number, entry: DirEntry): void {
    this.store(idx, { ...entry, session: "" }, true);
  }

  delete(idx: number, key: string): void {
    if (!this.entries.delete(key)) return;
    this.bury(idx, key);
  }

  /** ?cas= on DELETE: true when deleted, and (as in Consul) when the key did not exist. */
  deleteCas(idx: number, key: string, index: bigint): boolean {
    const existing = this.entries.get(key);
    if (!existing) return true;
    if (BigInt(existing.modifyIndex) !== index) return false;
    this.delete(idx, key);
    return true;
  }

  /** ?recurse on DELETE: one tombstone for the prefix, none when the whole store is emptied. */
  deleteTree(idx: number, prefix: string): void {
    const doomed = [...this.entries.keys()].filter((key) => key.startsWith(prefix));
    if (doomed.length === 0) return;
    for (const key of doomed) this.entries.delete(key);
    if (prefix !== "") this.bury(idx, prefix);
    else this.raft.touch("kvs", idx);
  }

  checkSession(key: string, session: string): DirEntry {
    const entry = this.entries.get(key);
    if (!entry) throw new Error(`failed to check session, key ${goQuote(key)} doesn't exist`);
    if (entry.session !== session) {
      throw new Error(
        `failed session check for key ${goQuote(key)}, current session ${goQuote(entry.session)} != ${goQuote(session)}`,
      );
    }
    return entry;
  }

  checkIndex(key: string, index: bigint): DirEntry {
    const entry = this.entries.get(key);
    if (!entry) throw new Error(`failed to check index, key ${goQuote(key)} doesn't exist`);
    if (BigInt(entry.modifyIndex) !== index) {
      throw new Error(
        `failed index check for key ${goQuote(key)}, current modify index ${entry.modifyIndex} != ${index}`,
      );
    }
    return entry;
  }

  setLockDelay(key: string, until: number): void {
    this.lockDelays.set(key, until);
  }

  /** True while a lock-delay forbids acquiring the key. */
  lockDelayed(key: string, now: number): boolean {
    const until = this.lockDelays.get(key);
    if (until === undefined) return false;
    if (until > now) return true;
    this.lockDelays.delete(key);
    return false;
  }

  snapshot(): KvSnapshot {
    return { entries: new Map(this.entries), tombstones: new Map(this.tombstones) };
  }

  restore(snapshot: KvSnapshot): void {
    this.entries = snapshot.entries;
    this.tombstones = snapshot.tombstones;
  }

  /** kvsSetTxn: an unchanged entry is not rewritten, so its ModifyIndex stays. */
  private store(
    idx: number,
    next: Omit<DirEntry, "createIndex" | "modifyIndex">,
    updateSession: boolean,
  ): DirEntry {
    const existing = this.entries.get(next.key);
    const session = updateSession ? next.session : (existing?.session ?? "");
    const candidate = { ...next, session };
    if (existing && sameContent(existing, candidate)) return existing;
    const entry: DirEntry = { ...candidate, createIndex: existing?.createIndex ?? idx, modifyIndex: idx };
    this.entries.set(entry.key, entry);
    this.raft.touch("kvs", idx);
    return entry;
  }

  private bury(idx: number, key: string): void {
    this.tombstones.set(key, idx);
    this.raft.touch("kvs", idx);
    this.raft.touch("tombstones", idx);
  }
}
