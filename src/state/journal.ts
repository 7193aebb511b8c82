import type { Clock } from "../clock.js";
import { crashPoint } from "../crash.js";
import type { StateStore } from "./store.js";

export type ActionStatus = "running" | "succeeded" | "failed" | "interrupted";

export interface ActionStep {
  name: string;
  at: number;
  /** What later steps need to resume (identifiers, never secrets). */
  result?: unknown;
}

export interface ActionRecord {
  id: string;
  kind: string;
  /** Normalized arguments, as approved; never secrets. */
  args: Record<string, unknown>;
  requester: string;
  roomId: string;
  status: ActionStatus;
  steps: ActionStep[];
  startedAt: number;
  endedAt?: number;
  error?: string;
}

export type NewAction = Pick<ActionRecord, "id" | "kind" | "args" | "requester" | "roomId">;

const PREFIX = "journal/";

/**
 * The action journal: an action is recorded before it touches any backend, and each completed step
 * after it, so that a restart can resume an action from its last completed step, and so that the same
 * action ID never runs twice.
 */
export class ActionJournal {
  constructor(
    private readonly store: StateStore,
    private readonly clock: Clock,
    /** Runs before each step that is not done yet: the leader confirms it still holds its lock. */
    private readonly beforeStep: () => Promise<void> = async () => {},
  ) {}

  /** Records a new action. When the ID exists already, returns the existing record with fresh=false. */
  async begin(action: NewAction): Promise<{ record: ActionRecord; fresh: boolean }> {
    const record: ActionRecord = { ...action, status: "running", steps: [], startedAt: this.clock.now() };
    if (await this.store.cas(PREFIX + action.id, record, 0)) return { record, fresh: true };
    const existing = await this.get(action.id);
    if (!existing) throw new Error(`action ${action.id} vanished while being created`);
    return { record: existing, fresh: false };
  }

  async get(id: string): Promise<ActionRecord | undefined> {
    return (await this.store.get<ActionRecord>(PREFIX + id))?.value;
  }

  /**
   * Runs a step once. If the journal shows the step done (an earlier run before a restart), its recorded
   * result is returned and `run` is not called again.
   */
  async step<T>(id: string, name: string, run: () => Promise<T>): Promise<T> {
    const before = await this.require(id);
    const done = before.steps.find((s) => s.name === name);
    if (done) return done.result as T;
    if (before.status !== "running")
      throw new Error(`action ${id} is ${before.status}; step ${name} not run`);
    await this.beforeStep();
    const result = await run();
    await this.update(id, (record) => {
      record.steps.push({ name, at: this.clock.now(), ...(result === undefined ? {} : { result }) });
    });
    crashPoint(`step:${name}`);
    return result;
  }

  async finish(id: string, status: Exclude<ActionStatus, "running">, error?: string): Promise<ActionRecord> {
    return this.update(id, (record) => {
      record.status = status;
      record.endedAt = this.clock.now();
      if (error !== undefined) record.error = error;
    });
  }

  async unfinished(): Promise<ActionRecord[]> {
    return (await this.store.list<ActionRecord>(PREFIX))
      .map((entry) => entry.value)
      .filter((record) => record.status === "running");
  }

  private async require(id: string): Promise<ActionRecord> {
    const record = await this.get(id);
    if (!record) throw new Error(`no action ${id} in the journal`);
    return record;
  }

  private async update(id: string, change: (record: ActionRecord) => void): Promise<ActionRecord> {
    for (;;) {
      const current = await this.store.get<ActionRecord>(PREFIX + id);
      if (!current) throw new Error(`no action ${id} in the journal`);
      change(current.value);
      if (await this.store.cas(PREFIX + id, current.value, current.version)) return current.value;
    }
  }
}
