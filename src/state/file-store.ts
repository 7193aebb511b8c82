import { mkdirSync } from "node:fs";
import { join } from "node:path";
import { DatabaseSync, type StatementSync } from "node:sqlite";
import type { AuditEntry, StateStore, Versioned } from "./store.js";

/**
 * The embedded store: one SQLite database file (Node's built-in node:sqlite) in write-ahead-log mode.
 * Every write is a transaction, so a kill at any point leaves the state as it was before or after the
 * write, never torn. With `fsync`, each write also reaches the disk before it returns (synchronous=FULL);
 * without, it survives a process crash but maybe not a power cut (synchronous=NORMAL).
 * One process at a time: several instances share state through Consul instead.
 */
export class FileStateStore implements StateStore {
  private readonly statements: Record<
    "get" | "upsert" | "insert" | "update" | "remove" | "range" | "audit" | "lastAudit",
    StatementSync
  >;

  private constructor(private readonly db: DatabaseSync) {
    db.exec(`
      CREATE TABLE IF NOT EXISTS kv (key TEXT PRIMARY KEY, version INTEGER NOT NULL, value TEXT NOT NULL);
      CREATE TABLE IF NOT EXISTS audit (id INTEGER PRIMARY KEY AUTOINCREMENT, entry TEXT NOT NULL);
    `);
    this.statements = {
      get: db.prepare("SELECT version, value FROM kv WHERE key = ?"),
      upsert: db.prepare(
        "INSERT INTO kv (key, version, value) VALUES (?, 1, ?) " +
          "ON CONFLICT(key) DO UPDATE SET version = version + 1, value = excluded.value",
      ),
      insert: db.prepare("INSERT INTO kv (key, version, value) VALUES (?, 1, ?) ON CONFLICT(key) DO NOTHING"),
      update: db.prepare("UPDATE kv SET version = version + 1, value = ? WHERE key = ? AND version = ?"),
      remove: db.prepare("DELETE FROM kv WHERE key = ?"),
      range: db.prepare("SELECT key, version, value FROM kv WHERE key >= ? AND key < ? ORDER BY key"),
      audit: db.prepare("INSERT INTO audit (entry) VALUES (?)"),
      lastAudit: db.prepare("SELECT entry FROM audit ORDER BY id DESC LIMIT ?"),
    };
  }

  static async open(dir: string, opts: { fsync?: boolean } = {}): Promise<FileStateStore> {
    mkdirSync(dir, { recursive: true });
    const db = new DatabaseSync(join(dir, "state.db"));
    db.exec(`PRAGMA journal_mode = WAL; PRAGMA synchronous = ${opts.fsync === false ? "NORMAL" : "FULL"};`);
    return new FileStateStore(db);
  }

  async get<T>(key: string): Promise<Versioned<T> | undefined> {
    const row = this.statements.get.get(key) as { version: number; value: string } | undefined;
    return row && { value: JSON.parse(row.value) as T, version: row.version };
  }

  async set<T>(key: string, value: T): Promise<void> {
    this.statements.upsert.run(key, JSON.stringify(value));
  }

  async setMany(entries: ReadonlyArray<readonly [key: string, value: unknown]>): Promise<void> {
    const texts = entries.map(([key, value]) => [key, JSON.stringify(value)] as const);
    this.db.exec("BEGIN");
    try {
      for (const [key, text] of texts) this.statements.upsert.run(key, text);
      this.db.exec("COMMIT");
    } catch (error) {
      this.db.exec("ROLLBACK");
      throw error;
    }
  }

  async cas<T>(key: string, value: T, version: number): Promise<boolean> {
    const text = JSON.stringify(value);
    const result =
      version === 0 ? this.statements.insert.run(key, text) : this.statements.update.run(text, key, version);
    return result.changes === 1;
  }

  async delete(key: string): Promise<void> {
    this.statements.remove.run(key);
  }

  async list<T>(prefix: string): Promise<Array<Versioned<T> & { key: string }>> {
    const rows = this.statements.range.all(prefix, prefix + "\uffff") as Array<{
      key: string;
      version: number;
      value: string;
    }>;
    return rows.map((row) => ({ key: row.key, version: row.version, value: JSON.parse(row.value) as T }));
  }

  async appendAudit(entry: AuditEntry): Promise<void> {
    this.statements.audit.run(JSON.stringify(entry));
  }

  async readAudit(limit: number): Promise<AuditEntry[]> {
    const rows = this.statements.lastAudit.all(limit) as Array<{ entry: string }>;
    return rows.map((row) => JSON.parse(row.entry) as AuditEntry).reverse();
  }

  async healthy(): Promise<boolean> {
    try {
      this.statements.get.get("health");
      return true;
    } catch {
      return false;
    }
  }

  async close(): Promise<void> {
    if (this.db.isOpen) this.db.close();
  }
}
