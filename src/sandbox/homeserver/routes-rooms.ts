import { objectBody, optionalObjectBody, optionalString } from "./body.js";
import { forbidden, notFound } from "./errors.js";
import { joinedRoom, readableRoom, redactEvent, sendMessage, sendState } from "./events.js";
import { stringField, type JsonObject } from "./json.js";
import { createRoom } from "./membership.js";
import { boundary, pageParams, paginate } from "./pagination.js";
import type { Room, StoredEvent } from "./room.js";
import { queryValue, type AuthedContext, type Route } from "./router.js";
import { toClientEvent } from "./serialize.js";
import { V3, type Services } from "./services.js";
import type { ClientEvent, RoomPreset } from "./types.js";
import { canSeeEvent, visibleEvents } from "./visibility.js";

/** Sending, redacting and reading room events and state; room creation. */

export function render(services: Services, ctx: AuthedContext, room: Room, event: StoredEvent): ClientEvent {
  const viewer = { userId: ctx.device.userId, token: ctx.device.token };
  return toClientEvent(event, room, { now: services.store.now(), withRoomId: true, viewer });
}

export function roomRoutes(services: Services): Route[] {
  return [...writeRoutes(services), ...readRoutes(services), ...stateRoutes(services)];
}

function writeRoutes(services: Services): Route[] {
  const { store, accounts } = services;
  return [
    {
      method: "PUT",
      path: `${V3}/rooms/:roomId/send/:eventType/:txnId`,
      rateLimited: true,
      txnParam: "txnId",
      handler: (ctx) => {
        const { roomId = "", eventType = "", txnId = "" } = ctx.params;
        const content = objectBody(ctx.body);
        const txn = { token: ctx.device.token, txnId };
        const event = sendMessage(store, roomId, ctx.device.userId, eventType, content, txn);
        return { body: { event_id: event.eventId }, createdEvent: true };
      },
    },
    {
      method: "PUT",
      path: `${V3}/rooms/:roomId/redact/:eventId/:txnId`,
      rateLimited: true,
      txnParam: "txnId",
      handler: (ctx) => {
        const { roomId = "", eventId = "", txnId = "" } = ctx.params;
        const reason = optionalString(optionalObjectBody(ctx.body), "reason");
        const txn = { token: ctx.device.token, txnId };
        const event = redactEvent(store, roomId, ctx.device.userId, eventId, reason, txn);
        return { body: { event_id: event.eventId }, createdEvent: true };
      },
    },
    {
      method: "POST",
      path: `${V3}/createRoom`,
      handler: (ctx) => {
        const request = optionalObjectBody(ctx.body);
        const room = createRoom(store, accounts, ctx.device.userId, createOptions(request));
        return { body: { room_id: room.roomId } };
      },
    },
  ];
}

/** The /createRoom fields this double understands (no initial_state or power level overrides). */
function createOptions(request: JsonObject): Parameters<typeof createRoom>[3] {
  const preset = optionalString(request, "preset");
  const visibility = optionalString(request, "visibility");
  const invite = Array.isArray(request.invite) ? request.invite.filter((u) => typeof u === "string") : [];
  const name = optionalString(request, "name");
  const topic = optionalString(request, "topic");
  const alias = optionalString(request, "room_alias_name");
  return {
    preset: isPreset(preset) ? preset : visibility === "public" ? "public_chat" : "private_chat",
    invite,
    isDirect: request.is_direct === true,
    ...(name === undefined ? {} : { name }),
    ...(topic === undefined ? {} : { topic }),
    ...(alias === undefined ? {} : { alias }),
  };
}

function isPreset(value: string | undefined): value is RoomPreset {
  return value === "private_chat" || value === "trusted_private_chat" || value === "public_chat";
}

function readRoutes(services: Services): Route[] {
  const { store } = services;
  return [
    {
      method: "GET",
      path: `${V3}/joined_rooms`,
      handler: (ctx) => {
        const joined = [...store.all()].filter((room) => room.membership(ctx.device.userId) === "join");
        return { body: { joined_rooms: joined.map((room) => room.roomId) } };
      },
    },
    {
      method: "GET",
      path: `${V3}/rooms/:roomId/event/:eventId`,
      handler: (ctx) => {
        const room = store.get(ctx.params.roomId ?? "");
        const event = room?.event(ctx.params.eventId ?? "");
        if (!room || !event) throw notFound("Event not found.");
        if (!canSeeEvent(room, ctx.device.userId, event)) {
          throw forbidden("You don't have permission to access that event.");
        }
        return { body: render(services, ctx, room, event) };
      },
    },
    {
      method: "GET",
      path: `${V3}/rooms/:roomId/members`,
      handler: (ctx) => ({ body: { chunk: members(services, ctx) } }),
    },
    {
      method: "GET",
      path: `${V3}/rooms/:roomId/joined_members`,
      handler: (ctx) => {
        const room = joinedRoom(store, ctx.params.roomId ?? "", ctx.device.userId);
        return { body: { joined: joinedMembers(room) } };
      },
    },
    {
      method: "GET",
      path: `${V3}/rooms/:roomId/messages`,
      handler: (ctx) => ({ body: messages(services, ctx) }),
    },
  ];
}

/** Profiles as the member events carry them (absent fields are left out rather than null). */
function joinedMembers(room: Room): JsonObject {
  const joined: JsonObject = {};
  for (const userId of room.usersWith("join")) {
    const content = room.state("m.room.member", userId)?.content ?? {};
    const displayname = stringField(content, "displayname");
    const avatarUrl = stringField(content, "avatar_url");
    joined[userId] = {
      ...(displayname === undefined ? {} : { display_name: displayname }),
      ...(avatarUrl === undefined ? {} : { avatar_url: avatarUrl }),
    };
  }
  return joined;
}

function members(services: Services, ctx: AuthedContext): ClientEvent[] {
  const { room, upto } = readableRoom(services.store, ctx.params.roomId ?? "", ctx.device.userId);
  const at = queryValue(ctx.query, "at");
  const position = at === undefined ? upto : Math.min(upto, boundary(at, "at") - 1);
  const membership = queryValue(ctx.query, "membership");
  const notMembership = queryValue(ctx.query, "not_membership");
  return room
    .stateAt(position)
    .filter((event) => event.type === "m.room.member")
    .filter((event) => {
      const value = stringField(event.content, "membership");
      return (
        (membership === undefined || value === membership) &&
        (notMembership === undefined || value !== notMembership)
      );
    })
    .map((event) => render(services, ctx, room, event));
}

function messages(services: Services, ctx: AuthedContext): object {
  const { room, upto } = readableRoom(services.store, ctx.params.roomId ?? "", ctx.device.userId);
  const { dir, limit } = pageParams(
    { dir: queryValue(ctx.query, "dir"), limit: queryValue(ctx.query, "limit") },
    { dir: "b", limit: 10 },
  );
  const from = queryValue(ctx.query, "from") ?? (dir === "b" ? `s${upto}` : "p0");
  const to = queryValue(ctx.query, "to");
  const visible = visibleEvents(room, ctx.device.userId, 0, upto);
  const page = paginate(visible, { dir, from, limit, ...(to === undefined ? {} : { to }) });
  const chunk = page.chunk.map((event) => render(services, ctx, room, event));
  return { start: from, chunk, state: [], ...(page.next === undefined ? {} : { end: page.next }) };
}

function stateRoutes(services: Services): Route[] {
  const { store } = services;
  const getOne = (ctx: AuthedContext) => {
    const { room, upto } = readableRoom(store, ctx.params.roomId ?? "", ctx.device.userId);
    const type = ctx.params.type ?? "";
    const stateKey = ctx.params.stateKey ?? "";
    const event = room.stateAt(upto).find((e) => e.type === type && e.stateKey === stateKey);
    if (!event) throw notFound("Event not found.");
    const asEvent = queryValue(ctx.query, "format") === "event";
    return { body: asEvent ? render(services, ctx, room, event) : structuredClone(event.content) };
  };
  const put = (ctx: AuthedContext) => {
    const before = store.stream.current;
    const { roomId = "", type = "", stateKey = "" } = ctx.params;
    const event = sendState(store, roomId, ctx.device.userId, type, stateKey, objectBody(ctx.body));
    return { body: { event_id: event.eventId }, createdEvent: event.pos > before };
  };
  return [
    {
      method: "GET",
      path: `${V3}/rooms/:roomId/state`,
      handler: (ctx) => {
        const { room, upto } = readableRoom(store, ctx.params.roomId ?? "", ctx.device.userId);
        return { body: room.stateAt(upto).map((event) => render(services, ctx, room, event)) };
      },
    },
    { method: "GET", path: `${V3}/rooms/:roomId/state/:type`, handler: getOne },
    { method: "GET", path: `${V3}/rooms/:roomId/state/:type/:stateKey`, handler: getOne },
    { method: "PUT", path: `${V3}/rooms/:roomId/state/:type`, rateLimited: true, handler: put },
    { method: "PUT", path: `${V3}/rooms/:roomId/state/:type/:stateKey`, rateLimited: true, handler: put },
  ];
}
