import { optionalObjectBody, optionalString, requiredString } from "./body.js";
import { badJson, forbidden, invalidParam, MatrixHttpError } from "./errors.js";
import { joinedRoom } from "./events.js";
import { postReceipt, setTyping } from "./ephemeral.js";
import { inviteUser, joinRoom, leaveRoom, resolveRoom } from "./membership.js";
import type { AuthedContext, Route } from "./router.js";
import { V3, type Services } from "./services.js";

/** Join, leave, invite, forget, alias lookup; receipts and typing. */

export function membershipRoutes(services: Services): Route[] {
  const { store, accounts } = services;
  const join = (ctx: AuthedContext, target: string) => {
    const reason = optionalString(optionalObjectBody(ctx.body), "reason");
    const event = joinRoom(store, accounts, target, ctx.device.userId, reason);
    return { body: { room_id: event.roomId } };
  };
  return [
    {
      method: "POST",
      path: `${V3}/join/:roomIdOrAlias`,
      handler: (ctx) => join(ctx, ctx.params.roomIdOrAlias ?? ""),
    },
    {
      method: "POST",
      path: `${V3}/rooms/:roomId/join`,
      handler: (ctx) => join(ctx, ctx.params.roomId ?? ""),
    },
    {
      method: "POST",
      path: `${V3}/rooms/:roomId/leave`,
      handler: (ctx) => {
        const reason = optionalString(optionalObjectBody(ctx.body), "reason");
        leaveRoom(store, ctx.params.roomId ?? "", ctx.device.userId, reason);
        return { body: {} };
      },
    },
    {
      method: "POST",
      path: `${V3}/rooms/:roomId/invite`,
      handler: (ctx) => {
        const body = optionalObjectBody(ctx.body);
        const target = requiredString(body, "user_id");
        const reason = optionalString(body, "reason");
        inviteUser(store, accounts, ctx.params.roomId ?? "", ctx.device.userId, target, {
          ...(reason === undefined ? {} : { reason }),
        });
        return { body: {} };
      },
    },
    {
      method: "POST",
      path: `${V3}/rooms/:roomId/forget`,
      handler: (ctx) => {
        const room = store.get(ctx.params.roomId ?? "");
        if (room?.membership(ctx.device.userId) === "join") {
          throw new MatrixHttpError(400, "M_UNKNOWN", `User ${ctx.device.userId} is in room ${room.roomId}`);
        }
        return { body: {} };
      },
    },
    {
      method: "GET",
      path: `${V3}/directory/room/:roomAlias`,
      handler: (ctx) => {
        const alias = ctx.params.roomAlias ?? "";
        if (!alias.startsWith("#")) throw invalidParam(`${alias} is not a valid room alias`);
        return { body: { room_id: resolveRoom(store, alias).roomId, servers: [store.serverName] } };
      },
    },
    ...ephemeralRoutes(services),
  ];
}

function ephemeralRoutes(services: Services): Route[] {
  const { store, accounts } = services;
  return [
    {
      method: "POST",
      path: `${V3}/rooms/:roomId/receipt/:receiptType/:eventId`,
      handler: (ctx) => {
        const room = joinedRoom(store, ctx.params.roomId ?? "", ctx.device.userId);
        const threadId = optionalString(optionalObjectBody(ctx.body), "thread_id");
        const { receiptType = "", eventId = "" } = ctx.params;
        postReceipt(store, accounts, room, ctx.device.userId, receiptType, eventId, threadId);
        return { body: {} };
      },
    },
    {
      method: "PUT",
      path: `${V3}/rooms/:roomId/typing/:userId`,
      handler: (ctx) => {
        if (ctx.params.userId !== ctx.device.userId)
          throw forbidden("Cannot set another user's typing state");
        const room = joinedRoom(store, ctx.params.roomId ?? "", ctx.device.userId);
        const body = optionalObjectBody(ctx.body);
        if (typeof body.typing !== "boolean") throw badJson("'typing' must be a boolean");
        const timeout = typeof body.timeout === "number" ? body.timeout : 30_000;
        setTyping(store, room, ctx.device.userId, body.typing, timeout);
        return { body: {} };
      },
    },
  ];
}
