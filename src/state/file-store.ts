import { appendFile, mkdir, readdir, readFile, rm, stat } from "node:fs/promises";
import { join } from "node:path";
import writeFileAtomic from "write-file-atomic";
import type { AuditEntry, StateStore, Versioned } from "./store.js";

interface StoredValue {
  version: number;
  value: unknown;
}

/**
 * The embedded store: one file per key, each replaced atomically (write to a temporary file, then
 * rename), so a kill mid-write leaves either the old or the new value, never a torn one. Keys are
 * mirrored in memory: this backend belongs to a single process (several instances use Consul).
 */
export class FileStateStore implements StateStore {
  private readonly entries = new Map<string, StoredValue>();
  private readonly writes = new Map<string, Promise<void>>();

  private constructor(
    private readonly dir: string,
    private readonly fsync: boolean,
  ) {}

  static async open(dir: string, opts: { fsync?: boolean } = {}): Promise<FileStateStore> {
    const store = new FileStateStore(dir, opts.fsync ?? true);
    await mkdir(join(dir, "kv"), { recursive: true });
    for (const name of await readdir(join(dir, "kv"))) {
      if (!name.endsWith(".json")) continue; // leftovers of an interrupted atomic write
      const text = await readFile(join(dir, "kv", name), "utf8");
      store.entries.set(decodeURIComponent(name.slice(0, -".json".length)), JSON.parse(text) as StoredValue);
    }
    return store;
  }

  async get<T>(key: string): Promise<Versioned<T> | undefined> {
    const entry = this.entries.get(key);
    return entry && { value: structuredClone(entry.value) as T, version: entry.version };
  }

  async set<T>(key: string, value: T): Promise<void> {
    await this.write(key, value);
  }

  async cas<T>(key: string, value: T, version: number): Promise<boolean> {
    if ((this.entries.get(key)?.version ?? 0) !== version) return false;
    await this.write(key, value);
    return true;
  }

  async delete(key: string): Promise<void> {
    if (!this.entries.delete(key)) return;
    await this.serialise(key, () => rm(this.pathOf(key), { force: true }));
  }

  async list<T>(prefix: string): Promise<Array<Versioned<T> & { key: string }>> {
    return [...this.entries.entries()]
      .filter(([key]) => key.startsWith(prefix))
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
      .map(([key, entry]) => ({ key, value: structuredClone(entry.value) as T, version: entry.version }));
  }

  async appendAudit(entry: AuditEntry): Promise<void> {
    await appendFile(join(this.dir, "audit.jsonl"), JSON.stringify(entry) + "\n");
  }

  async readAudit(limit: number): Promise<AuditEntry[]> {
    let text: string;
    try {
      text = await readFile(join(this.dir, "audit.jsonl"), "utf8");
    } catch {
      return [];
    }
    return text
      .split("\n")
      .filter((line) => line.trim() !== "")
      .slice(-limit)
      .map((line) => JSON.parse(line) as AuditEntry);
  }

  async healthy(): Promise<boolean> {
    try {
      await stat(join(this.dir, "kv"));
      return true;
    } catch {
      return false;
    }
  }

  async close(): Promise<void> {
    await Promise.all(this.writes.values());
  }

  /** Updates memory at once (later reads see it) and the file in the background, in order per key. */
  private write(key: string, value: unknown): Promise<void> {
    const entry = { version: (this.entries.get(key)?.version ?? 0) + 1, value: structuredClone(value) };
    this.entries.set(key, entry);
    const text = JSON.stringify(entry);
    return this.serialise(key, () => writeFileAtomic(this.pathOf(key), text, { fsync: this.fsync }));
  }

  private serialise(key: string, op: () => Promise<void>): Promise<void> {
    const next = (this.writes.get(key) ?? Promise.resolve()).then(op);
    const tracked = next.finally(() => {
      if (this.writes.get(key) === tracked) this.writes.delete(key);
    });
    this.writes.set(key, tracked);
    return next;
  }

  private pathOf(key: string): string {
    return join(this.dir, "kv", `${encodeURIComponent(key)}.json`);
  }
}
