/**
 * The Raft log as far as clients can see it: one index shared by every write, the last index that
 * touched each table (what X-Consul-Index reports for list queries), and a signal for blocking
 * queries that something changed.
 */
export type Table =
  | "kvs"
  | "tombstones"
  | "sessions"
  | "nodes"
  | "services"
  | "checks"
  /** When the last instance of some service went away. */
  | "service-extinction"
  /** One per service name: its instances, their checks and their nodes' checks. */
  | `service.${string}`;

export class Raft {
  // A real cluster has applied a few entries (Raft configuration, autopilot) before anyone writes.
  private last = 4;
  private readonly tables = new Map<string, number>();
  private readonly listeners = new Set<() => void>();

  /** The index of a new write. Indexes only grow, even when a write turns out to change nothing. */
  next(): number {
    this.last += 1;
    return this.last;
  }

  touch(table: Table, index: number): void {
    this.tables.set(table, Math.max(index, this.tables.get(table) ?? 0));
  }

  index(table: Table): number {
    return this.tables.get(table) ?? 0;
  }

  /** The table indexes, to undo a failed transaction. */
  saveTables(): Map<string, number> {
    return new Map(this.tables);
  }

  restoreTables(saved: Map<string, number>): void {
    this.tables.clear();
    for (const [table, index] of saved) this.tables.set(table, index);
  }

  /** Blocking queries re-run their query after each committed write. */
  onCommit(listener: () => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  committed(): void {
    for (const listener of [...this.listeners]) listener();
  }
}
