/**
 * The state majordome keeps across restarts. Keys are slash-separated paths; values are JSON.
 * `version` is a per-key counter (Consul's ModifyIndex in the Consul backend), used for check-and-set.
 */
export interface Versioned<T> {
  value: T;
  version: number;
}

/** One audit record: who did what, with what result. Never secrets. */
export interface AuditFields {
  kind: string;
  actor?: string;
  roomId?: string;
  command?: string;
  args?: unknown;
  result?: string;
  [field: string]: unknown;
}

export interface AuditEntry extends AuditFields {
  at: number;
}

export interface StateStore {
  get<T>(key: string): Promise<Versioned<T> | undefined>;
  set<T>(key: string, value: T): Promise<void>;
  /** Writes only if the key is at `version` (0: only if absent). Returns false on a conflict. */
  cas<T>(key: string, value: T, version: number): Promise<boolean>;
  /** Writes several keys at once (cheaper than one set each); each is written whole or not at all. */
  setMany(entries: ReadonlyArray<readonly [key: string, value: unknown]>): Promise<void>;
  delete(key: string): Promise<void>;
  /** Every key starting with `prefix`, in key order. */
  list<T>(prefix: string): Promise<Array<Versioned<T> & { key: string }>>;
  appendAudit(entry: AuditEntry): Promise<void>;
  /** The latest `limit` audit entries, oldest first. */
  readAudit(limit: number): Promise<AuditEntry[]>;
  /** True while the backing storage answers (for /health). */
  healthy(): Promise<boolean>;
  close(): Promise<void>;
}

export class StateConflictError extends Error {}
