import { objectField, stringField, type JsonObject } from "./json.js";

/** An event as stored: server-side fields in camelCase; serialize.ts renders the ClientEvent. */
export interface StoredEvent {
  readonly eventId: string;
  readonly roomId: string;
  readonly type: string;
  readonly sender: string;
  readonly stateKey?: string;
  /** Replaced by the redacted content when the event is redacted. */
  content: JsonObject;
  readonly originServerTs: number;
  /** Global stream position (see stream.ts). */
  readonly pos: number;
  readonly redacts?: string;
  redactedBecause?: StoredEvent;
  /** Content of the state event this one replaced. */
  readonly prevContent?: JsonObject;
  readonly txn?: { readonly token: string; readonly txnId: string };
}

export interface Receipt {
  readonly eventId: string;
  readonly type: string;
  readonly userId: string;
  readonly threadId?: string;
  readonly ts: number;
  readonly pos: number;
}

interface MembershipChange {
  readonly pos: number;
  readonly membership: string;
}

const stateMapKey = (type: string, stateKey: string): string => `${type}\u0000${stateKey}`;

export class Room {
  readonly events: StoredEvent[] = [];
  private readonly byId = new Map<string, StoredEvent>();
  private readonly current = new Map<string, StoredEvent>();
  private readonly memberships = new Map<string, MembershipChange[]>();
  private readonly visibilityChanges: { pos: number; visibility: string }[] = [];
  /** Who is typing, with the timer that stops it. */
  readonly typing = new Map<string, NodeJS.Timeout>();
  typingPos = 0;
  /** Latest receipt per (user, type, thread). */
  readonly receipts = new Map<string, Receipt>();

  constructor(
    readonly roomId: string,
    readonly version: string,
  ) {}

  add(event: StoredEvent): void {
    this.events.push(event);
    this.byId.set(event.eventId, event);
    if (event.stateKey === undefined) return;
    this.current.set(stateMapKey(event.type, event.stateKey), event);
    if (event.type === "m.room.member") {
      const log = this.memberships.get(event.stateKey) ?? [];
      log.push({ pos: event.pos, membership: stringField(event.content, "membership") ?? "leave" });
      this.memberships.set(event.stateKey, log);
    }
    if (event.type === "m.room.history_visibility" && event.stateKey === "") {
      const visibility = stringField(event.content, "history_visibility") ?? "shared";
      this.visibilityChanges.push({ pos: event.pos, visibility });
    }
  }

  /** Index in `events` of the first event after stream position `pos`. */
  indexAfter(pos: number): number {
    let low = 0;
    let high = this.events.length;
    while (low < high) {
      const mid = (low + high) >> 1;
      if ((this.events[mid]?.pos ?? Infinity) <= pos) low = mid + 1;
      else high = mid;
    }
    return low;
  }

  /** History visibility after position `pos` ("shared" when unset, as the spec says). */
  historyVisibilityAt(pos: number): string {
    return this.visibilityChanges.findLast((change) => change.pos <= pos)?.visibility ?? "shared";
  }

  event(eventId: string): StoredEvent | undefined {
    return this.byId.get(eventId);
  }

  state(type: string, stateKey = ""): StoredEvent | undefined {
    return this.current.get(stateMapKey(type, stateKey));
  }

  stateEvents(): StoredEvent[] {
    return [...this.current.values()];
  }

  /** The room state after every event up to and including stream position `pos`. */
  stateAt(pos: number): StoredEvent[] {
    // The common case (state now) needs no walk through the whole history.
    if (pos >= (this.events.at(-1)?.pos ?? 0)) return [...this.current.values()];
    const state = new Map<string, StoredEvent>();
    for (const event of this.events) {
      if (event.pos > pos) break;
      if (event.stateKey !== undefined) state.set(stateMapKey(event.type, event.stateKey), event);
    }
    return [...state.values()];
  }

  /** Membership just after position `pos` ("leave" when the user never had one). */
  membershipAt(userId: string, pos: number): string {
    const log = this.memberships.get(userId) ?? [];
    let membership = "leave";
    for (const change of log) {
      if (change.pos > pos) break;
      membership = change.membership;
    }
    return membership;
  }

  membership(userId: string): string {
    return this.membershipAt(userId, Number.POSITIVE_INFINITY);
  }

  hasHistoryWith(userId: string): boolean {
    return this.memberships.has(userId);
  }

  everJoined(userId: string): boolean {
    return this.memberships.get(userId)?.some((change) => change.membership === "join") ?? false;
  }

  usersWith(membership: string): string[] {
    return [...this.memberships.keys()].filter((userId) => this.membership(userId) === membership);
  }

  /** Position of the user's latest membership change, if any. */
  lastMembershipPos(userId: string): number | undefined {
    return this.memberships.get(userId)?.at(-1)?.pos;
  }

  powerLevels(): JsonObject | undefined {
    return this.state("m.room.power_levels")?.content;
  }

  joinRule(): string {
    const content = this.state("m.room.join_rules")?.content;
    return (content && stringField(content, "join_rule")) ?? "invite";
  }

  name(): string | undefined {
    const content = this.state("m.room.name")?.content;
    return content && stringField(content, "name");
  }

  canonicalAlias(): string | undefined {
    const content = this.state("m.room.canonical_alias")?.content;
    return content && stringField(content, "alias");
  }

  creator(): string | undefined {
    return this.state("m.room.create")?.sender;
  }

  /** Events whose m.relates_to points at `eventId` (redacted ones have lost it). */
  relationsOf(eventId: string): StoredEvent[] {
    return this.events.filter((event) => {
      const relation = objectField(event.content, "m.relates_to");
      if (!relation || stringField(relation, "rel_type") === undefined) return false;
      return stringField(relation, "event_id") === eventId;
    });
  }
}
