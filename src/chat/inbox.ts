import type { StateStore } from "../state/store.js";
import type { RoomEvent } from "./events.js";

const PENDING = "inbox/pending/";
const DONE = "inbox/done/";

/**
 * Inbound events are accepted here durably before the sync position moves past them, and remembered as
 * processed once handled (the last `kept` IDs, one small key each, the oldest pruned), so that a crash
 * neither loses a command nor runs it twice when the homeserver delivers it again.
 */
export class Inbox {
  private readonly pending = new Map<string, RoomEvent>();
  /** Processed event IDs, oldest first, with their sequence numbers. */
  private readonly processed = new Map<string, number>();
  private seq = 0;

  constructor(
    private readonly store: StateStore,
    private readonly kept: number,
  ) {}

  async load(): Promise<RoomEvent[]> {
    for (const { value } of await this.store.list<RoomEvent>(PENDING)) this.pending.set(value.eventId, value);
    const done = await this.store.list<number>(DONE);
    done.sort((a, b) => a.value - b.value);
    for (const { key, value } of done) this.processed.set(decodeURIComponent(key.slice(DONE.length)), value);
    this.seq = done.at(-1)?.value ?? 0;
    return [...this.pending.values()].sort((a, b) => a.originServerTs - b.originServerTs);
  }

  /** Handled to the end (not merely accepted). */
  isDone(eventId: string): boolean {
    return this.processed.has(eventId) && !this.pending.has(eventId);
  }

  seen(eventId: string): boolean {
    return this.pending.has(eventId) || this.processed.has(eventId);
  }

  /** Persists the event as to-be-handled. False when it was seen before (a redelivery). */
  async accept(event: RoomEvent): Promise<boolean> {
    if (this.seen(event.eventId)) return false;
    this.pending.set(event.eventId, event);
    await this.store.set(PENDING + encodeURIComponent(event.eventId), event);
    return true;
  }

  async done(eventId: string): Promise<void> {
    if (!this.processed.has(eventId)) {
      this.processed.set(eventId, ++this.seq);
      await this.store.set(DONE + encodeURIComponent(eventId), this.seq);
      for (const [oldest] of this.processed) {
        if (this.processed.size <= this.kept) break;
        this.processed.delete(oldest);
        await this.store.delete(DONE + encodeURIComponent(oldest));
      }
    }
    this.pending.delete(eventId);
    await this.store.delete(PENDING + encodeURIComponent(eventId));
  }

  pendingCount(): number {
    return this.pending.size;
  }
}
