import type { AccountDataEntry, Accounts } from "./accounts.js";
import type { JsonObject } from "./json.js";
import type { Room, StoredEvent } from "./room.js";
import { toClientEvent } from "./serialize.js";
import type { RoomStore } from "./store.js";
import { ephemeral, summary, unread } from "./sync-extras.js";
import type { ClientEvent } from "./types.js";
import type { TimelineFilter } from "./event-filter.js";
import { visibleEvents } from "./visibility.js";

/** Synapse's timeline limit when no filter gives one, for initial syncs and newly joined rooms. */
export const DEFAULT_TIMELINE_LIMIT = 10;

export interface SyncRequest {
  userId: string;
  token: string;
  /** Stream position from the `since` token; absent for an initial sync. */
  since?: number;
  fullState: boolean;
  /** The filter's room.timeline.limit. Without one, incremental syncs are never truncated. */
  timelineLimit?: number;
  /** The filter's room.timeline senders/types rules: events it rejects are neither sent nor wake the sync. */
  timelineFilter?: TimelineFilter;
}

interface Events<T> {
  events: T[];
}

export interface SyncTimeline extends Events<ClientEvent> {
  limited: boolean;
  prev_batch: string;
}

export interface JoinedRoomSync {
  summary: JsonObject;
  state: Events<ClientEvent>;
  timeline: SyncTimeline;
  ephemeral: Events<JsonObject>;
  account_data: Events<JsonObject>;
  unread_notifications: { highlight_count: number; notification_count: number };
  unread_thread_notifications: JsonObject;
}

export interface LeftRoomSync {
  state: Events<ClientEvent>;
  timeline: SyncTimeline;
  account_data: Events<JsonObject>;
}

export interface SyncResponse {
  next_batch: string;
  account_data: Events<JsonObject>;
  presence: Events<JsonObject>;
  rooms: {
    join: Record<string, JoinedRoomSync>;
    invite: Record<string, { invite_state: Events<JsonObject | ClientEvent> }>;
    leave: Record<string, LeftRoomSync>;
    knock: Record<string, never>;
  };
  to_device: Events<JsonObject>;
  device_lists: { changed: string[]; left: string[] };
  device_one_time_keys_count: Record<string, number>;
}

export const syncToken = (pos: number): string => `s${pos}`;

export function parseSyncToken(token: string): number | undefined {
  const match = /^s(\d+)$/.exec(token);
  return match ? Number(match[1]) : undefined;
}

interface Context {
  store: RoomStore;
  accounts: Accounts;
  req: SyncRequest;
  since: number | undefined;
  upto: number;
  now: number;
}

/** Everything `req.userId` should learn between `since` and now; `hasUpdates` drives the long-poll. */
export function buildSync(
  store: RoomStore,
  accounts: Accounts,
  req: SyncRequest,
): { response: SyncResponse; hasUpdates: boolean } {
  const upto = store.stream.current;
  // A token from the future (e.g. from a previous run of the double) counts as "now".
  const since = req.since === undefined ? undefined : Math.min(req.since, upto);
  const ctx: Context = { store, accounts, req, since, upto, now: store.now() };
  const response = emptySync(upto);
  for (const room of store.all()) {
    if (room.hasHistoryWith(req.userId)) addRoom(ctx, response.rooms, room);
  }
  const user = accounts.require(req.userId);
  response.account_data.events = accountDataSince(user.accountData, since);
  const { join, invite, leave } = response.rooms;
  const roomCount = Object.keys(join).length + Object.keys(invite).length + Object.keys(leave).length;
  return { response, hasUpdates: roomCount > 0 || response.account_data.events.length > 0 };
}

function emptySync(upto: number): SyncResponse {
  return {
    next_batch: syncToken(upto),
    account_data: { events: [] },
    presence: { events: [] },
    rooms: { join: {}, invite: {}, leave: {}, knock: {} },
    to_device: { events: [] },
    device_lists: { changed: [], left: [] },
    device_one_time_keys_count: {},
  };
}

function addRoom(ctx: Context, rooms: SyncResponse["rooms"], room: Room): void {
  const { userId } = ctx.req;
  const now = room.membershipAt(userId, ctx.upto);
  const before = ctx.since === undefined ? undefined : room.membershipAt(userId, ctx.since);
  if (now === "join") {
    const entry =
      before === "join" && ctx.since !== undefined
        ? incrementalJoined(ctx, room, ctx.since)
        : fullJoined(ctx, room);
    if (entry) rooms.join[room.roomId] = entry;
  } else if (now === "invite") {
    const changedAt = room.lastMembershipPos(userId) ?? 0;
    if (ctx.since === undefined || changedAt > ctx.since) rooms.invite[room.roomId] = invited(ctx, room);
  } else if (ctx.since !== undefined && (before === "join" || before === "invite")) {
    rooms.leave[room.roomId] = left(ctx, room, ctx.since);
  }
}

function render(ctx: Context, room: Room, event: StoredEvent): ClientEvent {
  const viewer = { userId: ctx.req.userId, token: ctx.req.token };
  return toClientEvent(event, room, { now: ctx.now, withRoomId: false, viewer });
}

/** The events a timeline shows: the last `limit` visible ones (all when no limit). */
interface TimelineSlice {
  events: StoredEvent[];
  limited: boolean;
  /** Stream position just before the first event: the state block is the state there. */
  before: number;
}

function lastEvents(ctx: Context, visible: StoredEvent[], limit: number | undefined): TimelineSlice {
  const events = limit === undefined ? visible : limit === 0 ? [] : visible.slice(-limit);
  const before = (events[0]?.pos ?? ctx.upto + 1) - 1;
  return { events, limited: events.length < visible.length, before };
}

function timeline(ctx: Context, room: Room, slice: TimelineSlice): SyncTimeline {
  return {
    events: slice.events.map((event) => render(ctx, room, event)),
    limited: slice.limited,
    // Where a client would paginate back from (GET /messages).
    prev_batch: syncToken(slice.before),
  };
}

function filtered(ctx: Context, events: StoredEvent[]): StoredEvent[] {
  const keep = ctx.req.timelineFilter;
  return keep ? events.filter(keep) : events;
}

/** Initial sync, or a room joined since the last sync: recent timeline plus the state before it. */
function fullJoined(ctx: Context, room: Room): JoinedRoomSync {
  const visible = filtered(ctx, visibleEvents(room, ctx.req.userId, 0, ctx.upto));
  const slice = lastEvents(ctx, visible, ctx.req.timelineLimit ?? DEFAULT_TIMELINE_LIMIT);
  return joinedEntry(ctx, room, room.stateAt(slice.before), timeline(ctx, room, slice), undefined);
}

function incrementalJoined(ctx: Context, room: Room, since: number): JoinedRoomSync | undefined {
  const visible = filtered(ctx, visibleEvents(room, ctx.req.userId, since, ctx.upto));
  const slice = lastEvents(ctx, visible, ctx.req.timelineLimit);
  // Without truncation every state change is in the timeline; after a gap, the state block carries
  // the changes made in the gap (spec: "between since and the start of the timeline").
  const state = ctx.req.fullState
    ? room.stateAt(slice.before)
    : slice.limited
      ? room.stateAt(slice.before).filter((e) => e.pos > since)
      : [];
  const entry = joinedEntry(ctx, room, state, timeline(ctx, room, slice), since);
  const quiet =
    slice.events.length === 0 &&
    entry.ephemeral.events.length === 0 &&
    entry.account_data.events.length === 0;
  return quiet && !ctx.req.fullState ? undefined : entry;
}

function joinedEntry(
  ctx: Context,
  room: Room,
  state: StoredEvent[],
  line: SyncTimeline,
  since: number | undefined,
): JoinedRoomSync {
  const user = ctx.accounts.require(ctx.req.userId);
  return {
    summary: summary(room, ctx.req.userId),
    state: { events: state.map((event) => render(ctx, room, event)) },
    timeline: line,
    ephemeral: { events: ephemeral(room, ctx.req.userId, since) },
    account_data: { events: accountDataSince(user.roomAccountData.get(room.roomId), since) },
    unread_notifications: unread(room, ctx.req.userId),
    unread_thread_notifications: {},
  };
}

function left(ctx: Context, room: Room, since: number): LeftRoomSync {
  const visible = visibleEvents(room, ctx.req.userId, since, ctx.upto);
  const user = ctx.accounts.require(ctx.req.userId);
  return {
    state: { events: [] },
    timeline: timeline(ctx, room, lastEvents(ctx, visible, ctx.req.timelineLimit)),
    account_data: { events: accountDataSince(user.roomAccountData.get(room.roomId), since) },
  };
}

/** Synapse's default room_prejoin_state, stripped to {type, state_key, sender, content}, then the invite itself. */
const PREJOIN_TYPES = [
  "m.room.create",
  "m.room.join_rules",
  "m.room.canonical_alias",
  "m.room.avatar",
  "m.room.encryption",
  "m.room.name",
  "m.room.topic",
];

function invited(ctx: Context, room: Room): { invite_state: Events<JsonObject | ClientEvent> } {
  const stripped: (JsonObject | ClientEvent)[] = [];
  for (const type of PREJOIN_TYPES) {
    const event = room.state(type);
    if (event) {
      stripped.push({ type, state_key: "", sender: event.sender, content: structuredClone(event.content) });
    }
  }
  const invite = room.state("m.room.member", ctx.req.userId);
  if (invite) stripped.push(render(ctx, room, invite));
  return { invite_state: { events: stripped } };
}

function accountDataSince(
  entries: ReadonlyMap<string, AccountDataEntry> | undefined,
  since: number | undefined,
): JsonObject[] {
  return [...(entries?.values() ?? [])]
    .filter((entry) => since === undefined || entry.pos > since)
    .map((entry) => ({ type: entry.type, content: structuredClone(entry.content) }));
}
