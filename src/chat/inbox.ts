import type { StateStore } from "../state/store.js";
import type { RoomEvent } from "./events.js";

const PENDING = "inbox/pending/";
const PROCESSED = "inbox/processed/";
const BUCKETS = 10;

interface Bucket {
  seq: number;
  ids: string[];
}

/**
 * Inbound events are accepted here durably before the sync position moves past them, and remembered as
 * processed once handled (the last `kept` IDs), so that a crash neither loses a command nor runs it twice
 * when the homeserver delivers it again.
 */
export class Inbox {
  private readonly pending = new Map<string, RoomEvent>();
  private readonly processed = new Set<string>();
  private buckets: Bucket[] = [];
  private current = 0;

  constructor(
    private readonly store: StateStore,
    private readonly kept: number,
  ) {}

  async load(): Promise<RoomEvent[]> {
    for (const { value } of await this.store.list<RoomEvent>(PENDING)) this.pending.set(value.eventId, value);
    this.buckets = Array.from({ length: BUCKETS }, () => ({ seq: 0, ids: [] }));
    for (const { key, value } of await this.store.list<Bucket>(PROCESSED)) {
      const index = Number(key.slice(PROCESSED.length));
      if (index >= 0 && index < BUCKETS) this.buckets[index] = value;
    }
    this.current = this.buckets.reduce((best, b, i) => (b.seq > this.buckets[best]!.seq ? i : best), 0);
    for (const bucket of this.buckets) for (const id of bucket.ids) this.processed.add(id);
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
      let bucket = this.buckets[this.current]!;
      if (bucket.ids.length >= Math.ceil(this.kept / BUCKETS)) {
        const seq = bucket.seq + 1;
        this.current = (this.current + 1) % BUCKETS;
        for (const old of this.buckets[this.current]!.ids) this.processed.delete(old);
        bucket = { seq, ids: [] };
        this.buckets[this.current] = bucket;
      }
      bucket.ids.push(eventId);
      this.processed.add(eventId);
      await this.store.set(PROCESSED + this.current, bucket);
    }
    this.pending.delete(eventId);
    await this.store.delete(PENDING + encodeURIComponent(eventId));
  }

  pendingCount(): number {
    return this.pending.size;
  }
}
