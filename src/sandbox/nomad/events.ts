import type { EventBatch, StreamEvent } from "./store.js";

/**
 * The event broker's ring of recent raft entries (nomad/stream/event_buffer.go). A subscription at
 * index N starts AT N (inclusive); an index older than the oldest buffered entry silently starts at
 * the oldest; index 0 means "from now on".
 */
export class EventBroker {
  private readonly buffer: EventBatch[] = [];
  private readonly subscribers = new Set<(batch: EventBatch) => void>();

  constructor(private size = 100) {}

  /** How many raft entries the buffer keeps (Nomad's default is about 100). */
  setCapacity(size: number): void {
    this.size = size;
    this.buffer.splice(0, Math.max(0, this.buffer.length - size));
  }

  publish(batch: EventBatch): void {
    this.buffer.push(batch);
    if (this.buffer.length > this.size) this.buffer.shift();
    for (const subscriber of [...this.subscribers]) subscriber(batch);
  }

  since(index: number): EventBatch[] {
    return index <= 0 ? [] : this.buffer.filter((batch) => batch.Index >= index);
  }

  subscribe(fn: (batch: EventBatch) => void): () => void {
    this.subscribers.add(fn);
    return () => this.subscribers.delete(fn);
  }

  /** Every (Topic, Type) published so far (for tests checking the wire strings). */
  emittedTypes(): Set<string> {
    return new Set(this.buffer.flatMap((b) => b.Events.map((e) => `${e.Topic}/${e.Type}`)));
  }
}

/** `topic=Allocation&topic=Job:web`: topic → keys ("*" when no key); no topic at all means everything. */
export type TopicFilter = Map<string, string[]>;

export function parseTopics(values: readonly string[]): TopicFilter | string {
  const topics: TopicFilter = new Map();
  if (values.length === 0) return new Map([["*", ["*"]]]);
  for (const raw of values) {
    const parts = raw.split(":");
    if (parts.length > 2) return `error parsing topics: Invalid key value pair for topic, topic: ${raw}`;
    const [topic = "", key = "*"] = parts;
    topics.set(topic, [...(topics.get(topic) ?? []), key]);
  }
  return topics;
}

/** The events of a batch a subscriber sees (nomad/stream/subscription.go filter). */
export function filterBatch(
  batch: EventBatch,
  topics: TopicFilter,
  namespace: string,
): EventBatch | undefined {
  const events = batch.Events.filter((event) => matches(event, topics, namespace));
  return events.length === 0 ? undefined : { Index: batch.Index, Events: events };
}

function matches(event: StreamEvent, topics: TopicFilter, namespace: string): boolean {
  if (namespace !== "*" && event.Namespace !== "" && event.Namespace !== namespace) return false;
  const keys = [...(topics.get("*") ?? []), ...(topics.get(event.Topic) ?? [])];
  return keys.some((key) => key === "*" || key === event.Key || (event.FilterKeys ?? []).includes(key));
}
