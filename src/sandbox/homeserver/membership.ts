import type { Accounts } from "./accounts.js";
import { forbidden, MatrixHttpError, notFound } from "./errors.js";
import { joinedRoom } from "./events.js";
import { newRoomId } from "./ids.js";
import { deepEqual, type JsonObject } from "./json.js";
import { requiredFor, userLevel } from "./powerlevels.js";
import { Room, type StoredEvent } from "./room.js";
import type { RoomStore } from "./store.js";
import type { CreateRoomOptions, RoomPreset } from "./types.js";

/** Room creation and membership changes (join, invite, leave, profile refresh). */

export const ROOM_VERSION = "11";

function memberContent(
  accounts: Accounts,
  userId: string,
  membership: string,
  extra: JsonObject,
): JsonObject {
  const profile = accounts.get(userId)?.profile;
  const content: JsonObject = { membership };
  const displayname = profile?.get("displayname");
  const avatarUrl = profile?.get("avatar_url");
  if (typeof displayname === "string") content.displayname = displayname;
  if (typeof avatarUrl === "string") content.avatar_url = avatarUrl;
  return { ...content, ...extra };
}

/** Writes a member event unless it would repeat the current one (servers treat that as a no-op). */
function setMembership(
  store: RoomStore,
  room: Room,
  sender: string,
  target: string,
  content: JsonObject,
): StoredEvent {
  const current = room.state("m.room.member", target);
  if (current && current.sender === sender && deepEqual(current.content, content)) return current;
  return store.append(room, { type: "m.room.member", sender, stateKey: target, content });
}

function defaultPowerLevels(creator: string, preset: RoomPreset, invitees: string[]): JsonObject {
  const users: JsonObject = { [creator]: 100 };
  if (preset === "trusted_private_chat") invitees.forEach((userId) => (users[userId] = 100));
  // Synapse's defaults; its private presets lower "invite" to 0.
  return {
    users,
    users_default: 0,
    events: {
      "m.room.name": 50,
      "m.room.power_levels": 100,
      "m.room.history_visibility": 100,
      "m.room.canonical_alias": 50,
      "m.room.avatar": 50,
      "m.room.tombstone": 100,
      "m.room.server_acl": 100,
      "m.room.encryption": 100,
    },
    events_default: 0,
    state_default: 50,
    ban: 50,
    kick: 50,
    redact: 50,
    invite: preset === "public_chat" ? 50 : 0,
  };
}

export function fullAlias(alias: string, serverName: string): string {
  return alias.startsWith("#") ? alias : `#${alias}:${serverName}`;
}

/** Events in the order the spec's /createRoom prescribes (and Synapse sends). */
export function createRoom(
  store: RoomStore,
  accounts: Accounts,
  creator: string,
  opts: CreateRoomOptions = {},
): Room {
  accounts.require(creator);
  const preset = opts.preset ?? "private_chat";
  const alias = opts.alias === undefined ? undefined : fullAlias(opts.alias, store.serverName);
  if (alias !== undefined && store.aliases.has(alias)) {
    throw new MatrixHttpError(400, "M_ROOM_IN_USE", "Room alias already taken");
  }
  const room = new Room(opts.roomId ?? newRoomId(store.serverName), ROOM_VERSION);
  store.addRoom(room);
  const state = (type: string, content: JsonObject, stateKey = ""): StoredEvent =>
    store.append(room, { type, sender: creator, stateKey, content });

  state("m.room.create", { room_version: ROOM_VERSION });
  state("m.room.member", memberContent(accounts, creator, "join", {}), creator);
  state("m.room.power_levels", defaultPowerLevels(creator, preset, opts.invite ?? []));
  if (alias !== undefined) {
    store.aliases.set(alias, room.roomId);
    state("m.room.canonical_alias", { alias });
  }
  state("m.room.join_rules", { join_rule: preset === "public_chat" ? "public" : "invite" });
  state("m.room.history_visibility", { history_visibility: "shared" });
  state("m.room.guest_access", { guest_access: preset === "public_chat" ? "forbidden" : "can_join" });
  if (opts.name !== undefined) state("m.room.name", { name: opts.name });
  if (opts.topic !== undefined) state("m.room.topic", { topic: opts.topic });
  for (const invitee of opts.invite ?? []) {
    inviteUser(store, accounts, room.roomId, creator, invitee, { isDirect: opts.isDirect ?? false });
  }
  return room;
}

export function resolveRoom(store: RoomStore, roomIdOrAlias: string): Room {
  const roomId = roomIdOrAlias.startsWith("#") ? store.aliases.get(roomIdOrAlias) : roomIdOrAlias;
  const room = roomId === undefined ? undefined : store.get(roomId);
  if (!room) {
    throw roomIdOrAlias.startsWith("#")
      ? notFound(`Room alias ${roomIdOrAlias} not found`)
      : notFound("No known servers");
  }
  return room;
}

export function joinRoom(
  store: RoomStore,
  accounts: Accounts,
  roomIdOrAlias: string,
  userId: string,
  reason?: string,
): StoredEvent {
  accounts.require(userId);
  const room = resolveRoom(store, roomIdOrAlias);
  const membership = room.membership(userId);
  if (membership === "ban") throw forbidden("You are banned from this room");
  if (membership !== "join" && membership !== "invite" && room.joinRule() !== "public") {
    throw forbidden("You are not invited to this room.");
  }
  const extra: JsonObject = reason === undefined ? {} : { reason };
  return setMembership(store, room, userId, userId, memberContent(accounts, userId, "join", extra));
}

export function inviteUser(
  store: RoomStore,
  accounts: Accounts,
  roomId: string,
  sender: string,
  target: string,
  opts: { reason?: string; isDirect?: boolean } = {},
): StoredEvent {
  const room = joinedRoom(store, roomId, sender);
  if (!accounts.get(target)) throw notFound(`Unknown user ${target}`);
  if (userLevel(room, sender) < requiredFor(room, "invite")) {
    throw forbidden("You don't have permission to invite users");
  }
  const membership = room.membership(target);
  if (membership === "join") throw forbidden(`${target} is already in the room.`);
  if (membership === "ban") throw forbidden(`${target} is banned from the room`);
  const extra: JsonObject = {};
  if (opts.reason !== undefined) extra.reason = opts.reason;
  if (opts.isDirect) extra.is_direct = true;
  return setMembership(store, room, sender, target, memberContent(accounts, target, "invite", extra));
}

/** Leaving, or rejecting an invite. */
export function leaveRoom(store: RoomStore, roomId: string, userId: string, reason?: string): StoredEvent {
  const room = store.get(roomId);
  const membership = room?.membership(userId);
  if (!room || (membership !== "join" && membership !== "invite")) {
    throw forbidden(`User ${userId} not in room ${roomId}`);
  }
  const content: JsonObject = { membership: "leave", ...(reason === undefined ? {} : { reason }) };
  return store.append(room, { type: "m.room.member", sender: userId, stateKey: userId, content });
}

/** Like Synapse, a profile change is announced by a new member event in every room the user is in. */
export function refreshProfileInRooms(store: RoomStore, accounts: Accounts, userId: string): void {
  for (const room of store.all()) {
    if (room.membership(userId) !== "join") continue;
    const current = room.state("m.room.member", userId)?.content ?? {};
    const kept: JsonObject = {};
    for (const [key, value] of Object.entries(current)) {
      if (key !== "displayname" && key !== "avatar_url" && key !== "reason") kept[key] = value;
    }
    setMembership(store, room, userId, userId, memberContent(accounts, userId, "join", kept));
  }
}
