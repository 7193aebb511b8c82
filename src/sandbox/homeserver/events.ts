import { forbidden } from "./errors.js";
import { deepEqual, stringField, type JsonObject } from "./json.js";
import { requiredFor, requiredForEvent, userLevel } from "./powerlevels.js";
import type { Room, StoredEvent } from "./room.js";
import type { RoomStore } from "./store.js";

/** Sending message events, state events and redactions, with the authorization rules a client can hit. */

export type Txn = { token: string; txnId: string };

/** The room, if `userId` is joined to it; unknown rooms look the same as rooms one is not in. */
export function joinedRoom(store: RoomStore, roomId: string, userId: string): Room {
  const room = store.get(roomId);
  if (!room || room.membership(userId) !== "join") {
    throw forbidden(`User ${userId} not in room ${roomId}`);
  }
  return room;
}

/**
 * The room as far as `userId` may read it: members read the present; former members the room as
 * it was when they left (`upto` is then their leave); anyone else is refused.
 */
export function readableRoom(store: RoomStore, roomId: string, userId: string): { room: Room; upto: number } {
  const room = store.get(roomId);
  if (room?.membership(userId) === "join") return { room, upto: store.stream.current };
  const leftAt = room?.everJoined(userId) ? room.lastMembershipPos(userId) : undefined;
  if (!room || leftAt === undefined) throw forbidden(`User ${userId} not in room ${roomId}`);
  return { room, upto: leftAt };
}

function requireLevel(room: Room, userId: string, needed: number, what: string): void {
  if (userLevel(room, userId) < needed) {
    throw forbidden(`You don't have permission to ${what} (level ${needed} needed)`);
  }
}

export function sendMessage(
  store: RoomStore,
  roomId: string,
  sender: string,
  type: string,
  content: JsonObject,
  txn?: Txn,
): StoredEvent {
  const room = joinedRoom(store, roomId, sender);
  requireLevel(room, sender, requiredForEvent(room, type, false), `send ${type} events`);
  return store.append(room, { type, sender, content, ...(txn ? { txn } : {}) });
}

export function sendState(
  store: RoomStore,
  roomId: string,
  sender: string,
  type: string,
  stateKey: string,
  content: JsonObject,
): StoredEvent {
  const room = joinedRoom(store, roomId, sender);
  if (stateKey.startsWith("@") && stateKey !== sender) {
    throw forbidden("You are not allowed to set others' state");
  }
  if (type === "m.room.member") checkOwnMemberUpdate(room, sender, content);
  else requireLevel(room, sender, requiredForEvent(room, type, true), `send ${type} events`);
  // Synapse returns the current event instead of creating an identical one.
  const current = room.state(type, stateKey);
  if (current && current.sender === sender && deepEqual(current.content, content)) return current;
  return store.append(room, { type, sender, stateKey, content });
}

/** Membership changes go through join/invite/leave; the state API may only refresh one's own profile. */
function checkOwnMemberUpdate(room: Room, sender: string, content: JsonObject): void {
  if (stringField(content, "membership") !== room.membership(sender)) {
    throw forbidden("Membership changes must use the join, invite and leave endpoints");
  }
}

export function redactEvent(
  store: RoomStore,
  roomId: string,
  sender: string,
  targetId: string,
  reason?: string,
  txn?: Txn,
): StoredEvent {
  const room = joinedRoom(store, roomId, sender);
  const target = room.event(targetId);
  if (target?.sender !== sender) requireLevel(room, sender, requiredFor(room, "redact"), "redact");
  const content: JsonObject = { redacts: targetId, ...(reason === undefined ? {} : { reason }) };
  return store.append(room, {
    type: "m.room.redaction",
    sender,
    content,
    redacts: targetId,
    ...(txn ? { txn } : {}),
  });
}
