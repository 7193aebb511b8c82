import { isJsonObject, objectField, type JsonObject } from "./json.js";
import type { Room } from "./room.js";

/** The per-room extras of a joined room in /sync: summary, ephemeral events, unread counts. */

export function summary(room: Room, userId: string): JsonObject {
  const joined = room.usersWith("join");
  const invitedUsers = room.usersWith("invite");
  const result: JsonObject = {
    "m.joined_member_count": joined.length,
    "m.invited_member_count": invitedUsers.length,
  };
  // Heroes are what a client names an unnamed room after.
  if (room.name() === undefined && room.canonicalAlias() === undefined) {
    result["m.heroes"] = [...joined, ...invitedUsers].filter((id) => id !== userId).slice(0, 5);
  }
  return result;
}

function child(parent: JsonObject, key: string): JsonObject {
  const existing = parent[key];
  if (isJsonObject(existing)) return existing;
  const created: JsonObject = {};
  parent[key] = created;
  return created;
}

export function ephemeral(room: Room, userId: string, since: number | undefined): JsonObject[] {
  const events: JsonObject[] = [];
  if (since === undefined ? room.typing.size > 0 : room.typingPos > since) {
    events.push({ type: "m.typing", content: { user_ids: [...room.typing.keys()] } });
  }
  const receipts: JsonObject = {};
  for (const receipt of room.receipts.values()) {
    if (since !== undefined && receipt.pos <= since) continue;
    if (receipt.type === "m.read.private" && receipt.userId !== userId) continue;
    const byUser = child(child(receipts, receipt.eventId), receipt.type);
    byUser[receipt.userId] = { ts: receipt.ts, ...(receipt.threadId ? { thread_id: receipt.threadId } : {}) };
  }
  if (Object.keys(receipts).length > 0) events.push({ type: "m.receipt", content: receipts });
  return events;
}

const NOTIFYING_TYPES = new Set(["m.room.message", "m.room.encrypted", "m.sticker"]);

/**
 * No push-rule engine here: with the default rules every message from someone else notifies, and
 * one that mentions the user (m.mentions) highlights. Counted from the user's read receipt or join.
 */
export function unread(room: Room, userId: string): { highlight_count: number; notification_count: number } {
  let from = room.lastMembershipPos(userId) ?? 0;
  for (const receipt of room.receipts.values()) {
    if (receipt.userId !== userId || receipt.type === "m.fully_read") continue;
    from = Math.max(from, room.event(receipt.eventId)?.pos ?? 0);
  }
  // Counted on from where the last count stopped, so a long room does not make every sync slower.
  const byUser = tallies.get(room) ?? new Map<string, Tally>();
  tallies.set(room, byUser);
  let tally = byUser.get(userId);
  if (!tally || tally.from !== from) {
    tally = { from, next: room.indexAfter(from), notification_count: 0, highlight_count: 0 };
    byUser.set(userId, tally);
  }
  for (; tally.next < room.events.length; tally.next++) {
    const event = room.events[tally.next]!;
    if (event.sender === userId || !NOTIFYING_TYPES.has(event.type)) continue;
    tally.notification_count += 1;
    const mentions = objectField(event.content, "m.mentions");
    const userIds = mentions?.user_ids;
    if (Array.isArray(userIds) && userIds.includes(userId)) tally.highlight_count += 1;
  }
  return { highlight_count: tally.highlight_count, notification_count: tally.notification_count };
}

interface Tally {
  from: number;
  /** Index in room.events of the first event not counted yet. */
  next: number;
  notification_count: number;
  highlight_count: number;
}

const tallies = new WeakMap<Room, Map<string, Tally>>();
