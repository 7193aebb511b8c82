import { createHash } from "node:crypto";
import pLimit, { type LimitFunction } from "p-limit";
import type { Logger } from "pino";
import type { Clock } from "../clock.js";
import type { StateStore } from "../state/store.js";
import {
  editContent,
  reactionContent,
  replyContent,
  threadContent,
  toNoticeContent,
  type Message,
  type MessageContent,
} from "./message.js";
import { DeliveryError, type ChatTransport } from "./transport.js";

/**
 * The local ID of a message majordome sent or is about to send, or else an event ID. Local IDs may look
 * like event IDs (a command's answers are named after its event), so what the outbox knows wins.
 */
export type EventRef = string;

interface OutboxItem {
  seq: number;
  id: string;
  roomId: string;
  /** Items of one lane go out in order; lanes go out side by side (up to the concurrency limit). */
  lane: string;
  kind: "message" | "edit" | "reaction" | "redaction";
  message?: Message;
  replyTo?: EventRef;
  threadRoot?: EventRef;
  target?: EventRef;
  key?: string;
  /** The caller named it: once sent it is remembered, so the same call later (after a restart) does nothing. */
  named?: boolean;
}

export interface OutboxTimings {
  outbox_retry_min: number;
  outbox_retry_max: number;
  rate_limit_wait_max: number;
}

export interface OutboxEvents {
  rateLimited?(waitMs: number): void;
  sent?(item: { id: string; roomId: string; kind: string; eventId: string }): void;
}

const QUEUE = "outbox/";
const SENT = "sent/";

/**
 * Every message majordome sends goes through here. An item is persisted before the caller's promise
 * resolves and is removed only once the homeserver has answered, so a crash neither loses it nor posts it
 * twice: the resend uses the same transaction ID and the homeserver answers the same event ID.
 * Items of a lane go out in order (by default a room is one lane; the answers to one command are one
 * lane); an edit or reaction waits for the message it refers to. Rate limits are waited out and retried;
 * nothing is dropped but what the homeserver refuses for good (logged).
 */
export class Outbox {
  /** Pending items by lane. */
  private readonly queues = new Map<string, OutboxItem[]>();
  /** IDs of every queued item (a named send asks; the queues can be long during a storm). */
  private readonly queuedIds = new Set<string>();
  private readonly inFlight = new Set<string>();
  private readonly workers = new Map<string, Promise<void>>();
  private readonly sentIds = new Map<string, string | null>();
  private readonly waiters = new Map<string, Array<(eventId: string | null) => void>>();
  private readonly idleWaiters: Array<() => void> = [];
  private lastSeq = 0;
  private running = false;

  private readonly limit: LimitFunction;

  constructor(
    private readonly store: StateStore,
    private readonly transport: ChatTransport,
    private readonly clock: Clock,
    private readonly timings: OutboxTimings,
    private readonly log: Logger,
    private readonly events: OutboxEvents = {},
    concurrency = 4,
  ) {
    this.limit = pLimit(concurrency);
  }

  /** Loads what a previous run left unsent and what it sent. */
  async load(): Promise<void> {
    for (const { key, value } of await this.store.list<string | null>(SENT)) {
      this.sentIds.set(key.slice(SENT.length), value);
    }
    for (const { value } of await this.store.list<OutboxItem>(QUEUE)) {
      this.queueOf(value.lane).push(value);
      this.queuedIds.add(value.id);
      this.lastSeq = Math.max(this.lastSeq, value.seq);
    }
  }

  start(): void {
    this.running = true;
    for (const lane of this.queues.keys()) this.kick(lane);
  }

  async stop(): Promise<void> {
    this.running = false;
    await Promise.all(this.workers.values());
  }

  depth(): number {
    let total = 0;
    for (const queue of this.queues.values()) total += queue.length;
    return total;
  }

  /**
   * Sends a notice. Giving `id` makes the call idempotent: a second call with the same ID does nothing.
   * `lane` orders it after the lane's earlier items (default: the room's lane).
   */
  async send(
    roomId: string,
    msg: Message,
    opts: { id?: string; replyTo?: EventRef; threadRoot?: EventRef; lane?: string } = {},
  ): Promise<string> {
    const id = opts.id ?? this.freshId("m");
    if (this.known(id)) return id;
    await this.enqueue({
      id,
      roomId,
      lane: opts.lane ?? roomId,
      kind: "message",
      message: msg,
      ...pick(opts, "replyTo", "threadRoot"),
    });
    return id;
  }

  /**
   * Replaces a message's content; pending edits of the same message are coalesced into the latest.
   * Giving `id` makes the call idempotent instead (an outcome edited again after a crash): it is not
   * coalesced, and a second call with the same ID does nothing.
   */
  async edit(roomId: string, target: string, msg: Message, opts: { id?: string } = {}): Promise<void> {
    const lane = `${roomId} edits of ${target}`;
    if (opts.id !== undefined) {
      if (this.known(opts.id)) return;
      await this.enqueue({ id: opts.id, roomId, lane, kind: "edit", target, message: msg, named: true });
      return;
    }
    const pending = [...this.queues.values()]
      .flat()
      .find(
        (item) =>
          !this.inFlight.has(item.id) &&
          ((item.kind === "message" && item.id === target) ||
            (item.kind === "edit" && item.target === target)),
      );
    if (pending) {
      pending.message = msg;
      await this.store.set(this.keyOf(pending), pending);
      return;
    }
    await this.enqueue({
      // Unique across restarts (a counter from 0 would reuse an ID, and its transaction ID, from before).
      id: `${target}~e${this.nextSeq().toString(36)}`,
      roomId,
      // All edits of a message share a lane, so they reach the homeserver in the order they were made.
      lane,
      kind: "edit",
      target,
      message: msg,
    });
  }

  async react(
    roomId: string,
    target: EventRef,
    key: string,
    opts: { id?: string; lane?: string } = {},
  ): Promise<void> {
    const itemId = opts.id ?? this.freshId("r");
    if (this.known(itemId)) return;
    await this.enqueue({
      id: itemId,
      roomId,
      lane: opts.lane ?? roomId,
      kind: "reaction",
      target,
      key,
      ...(opts.id !== undefined ? { named: true } : {}),
    });
  }

  async redact(roomId: string, target: EventRef, id?: string): Promise<void> {
    const itemId = id ?? this.freshId("x");
    if (this.known(itemId)) return;
    await this.enqueue({
      id: itemId,
      roomId,
      lane: roomId,
      kind: "redaction",
      target,
      ...(id !== undefined ? { named: true } : {}),
    });
  }

  /** The event ID of a message once delivered (null if the homeserver refused it for good). */
  eventIdOf(ref: EventRef): Promise<string | null> {
    if (!this.isLocal(ref)) return Promise.resolve(ref);
    const sent = this.sentIds.get(ref);
    if (sent !== undefined) return Promise.resolve(sent);
    return new Promise((resolve) => {
      const list = this.waiters.get(ref) ?? [];
      list.push(resolve);
      this.waiters.set(ref, list);
    });
  }

  /** Resolves when nothing is left to send. */
  drained(): Promise<void> {
    if (this.depth() === 0) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  private isLocal(ref: EventRef): boolean {
    return this.known(ref);
  }

  private known(id: string): boolean {
    return this.sentIds.has(id) || this.queuedIds.has(id);
  }

  private async enqueue(item: Omit<OutboxItem, "seq">): Promise<void> {
    const full: OutboxItem = { ...item, seq: this.nextSeq() };
    await this.store.set(this.keyOf(full), full);
    this.queueOf(full.lane).push(full);
    this.queuedIds.add(full.id);
    this.kick(full.lane);
  }

  private kick(lane: string): void {
    if (!this.running || this.workers.has(lane)) return;
    const worker = this.drainLane(lane).finally(() => {
      this.workers.delete(lane);
      if ((this.queues.get(lane)?.length ?? 0) > 0 && this.running) this.kick(lane);
      else {
        this.queues.delete(lane);
        if (this.depth() === 0) this.idleWaiters.splice(0).forEach((resolve) => resolve());
      }
    });
    this.workers.set(lane, worker);
  }

  private async drainLane(lane: string): Promise<void> {
    const queue = this.queueOf(lane);
    while (this.running && queue.length > 0) {
      const item = queue[0]!;
      this.inFlight.add(item.id);
      try {
        // Wait for what it refers to outside the concurrency limit, so waiting never blocks a send.
        const target = await this.targetOf(item);
        const eventId = target === null ? null : await this.limit(() => this.deliverWithRetry(item, target));
        await this.settle(item, eventId);
      } finally {
        this.inFlight.delete(item.id);
      }
      queue.shift();
      this.queuedIds.delete(item.id);
    }
  }

  private async deliverWithRetry(item: OutboxItem, target: string | undefined): Promise<string | null> {
    for (let attempt = 0; ; attempt++) {
      try {
        return await this.deliver(item, target);
      } catch (error) {
        const failure = error instanceof DeliveryError ? error.failure : "transient";
        if (failure === "permanent") {
          this.log.error(
            { item: item.id, kind: item.kind, err: (error as Error).message },
            "message refused",
          );
          return null;
        }
        const backoff = Math.min(this.timings.outbox_retry_min * 2 ** attempt, this.timings.outbox_retry_max);
        const retryAfter = error instanceof DeliveryError ? error.retryAfterMs : undefined;
        const base =
          failure === "rate-limited"
            ? Math.min(retryAfter ?? backoff, this.timings.rate_limit_wait_max)
            : backoff;
        const wait = base + Math.random() * base * 0.1;
        if (failure === "rate-limited") this.events.rateLimited?.(wait);
        this.log.warn({ item: item.id, failure, waitMs: Math.round(wait) }, "send failed, retrying");
        await this.clock.sleep(wait);
      }
    }
  }

  private async deliver(item: OutboxItem, target: string | undefined): Promise<string | null> {
    const txnId = transactionId(item.id);
    switch (item.kind) {
      case "message": {
        const msg = item.message!;
        const content: MessageContent = !target
          ? toNoticeContent(msg)
          : item.threadRoot
            ? threadContent(msg, target)
            : replyContent(msg, target);
        return this.transport.sendEvent(item.roomId, "m.room.message", content, txnId);
      }
      case "edit":
        return this.transport.sendEvent(
          item.roomId,
          "m.room.message",
          editContent(item.message!, target!),
          txnId,
        );
      case "reaction":
        return this.transport.sendEvent(
          item.roomId,
          "m.reaction",
          reactionContent(target!, item.key!),
          txnId,
        );
      case "redaction":
        return this.transport.redactEvent(item.roomId, target!, txnId);
    }
  }

  /**
   * The event an item refers to (thread root, replied-to, edited, reacted-to): undefined when none; null
   * when it is a message of ours that was never delivered (then neither is this item).
   */
  private async targetOf(item: OutboxItem): Promise<string | null | undefined> {
    const ref = item.kind === "message" ? (item.threadRoot ?? item.replyTo) : item.target;
    if (ref === undefined || !this.isLocal(ref)) return ref;
    // A message whose relation was refused still goes out, without the relation.
    if (item.kind === "message") return (await this.eventIdOf(ref)) ?? undefined;
    return this.eventIdOf(ref);
  }

  private async settle(item: OutboxItem, eventId: string | null): Promise<void> {
    // Messages are remembered for what refers to them (edits, replies, reactions), named items so
    // that asking again does nothing.
    if (item.kind === "message" || item.named) {
      await this.store.set(SENT + item.id, eventId);
      this.sentIds.set(item.id, eventId);
      this.waiters.get(item.id)?.forEach((resolve) => resolve(eventId));
      this.waiters.delete(item.id);
    }
    await this.store.delete(this.keyOf(item));
    if (eventId) this.events.sent?.({ id: item.id, roomId: item.roomId, kind: item.kind, eventId });
  }

  private queueOf(lane: string): OutboxItem[] {
    let queue = this.queues.get(lane);
    if (!queue) {
      queue = [];
      this.queues.set(lane, queue);
    }
    return queue;
  }

  private keyOf(item: OutboxItem): string {
    return `${QUEUE}${String(item.seq).padStart(16, "0")}`;
  }

  private nextSeq(): number {
    this.lastSeq = Math.max(this.lastSeq + 1, this.clock.now() * 1000);
    return this.lastSeq;
  }

  private freshId(kind: string): string {
    return `${kind}:${this.nextSeq().toString(36)}`;
  }
}

/** Derived from the item's ID, so a resend after a crash reuses it. */
export function transactionId(itemId: string): string {
  return "mj" + createHash("sha256").update(itemId).digest("base64url").slice(0, 30);
}

function pick<T extends object, K extends keyof T>(obj: T, ...keys: K[]): Partial<Pick<T, K>> {
  const out: Partial<Pick<T, K>> = {};
  for (const key of keys) if (obj[key] !== undefined) out[key] = obj[key];
  return out;
}
