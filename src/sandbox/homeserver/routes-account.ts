import { objectBody, optionalString } from "./body.js";
import { badJson, forbidden, invalidParam, MatrixHttpError, notFound } from "./errors.js";
import { isJsonObject, type JsonObject } from "./json.js";
import { refreshProfileInRooms } from "./membership.js";
import type { AuthedContext, Route } from "./router.js";
import { V3, type Services } from "./services.js";

/** Versions, login, whoami, account data, filters and profiles. */

const SPEC_VERSIONS = [
  "r0.6.1",
  "v1.1",
  "v1.2",
  "v1.3",
  "v1.4",
  "v1.5",
  "v1.6",
  "v1.7",
  "v1.8",
  "v1.9",
  "v1.10",
  "v1.11",
];

export function accountRoutes(services: Services): Route[] {
  return [
    {
      method: "GET",
      path: "/_matrix/client/versions",
      auth: false,
      handler: () => ({ body: { versions: SPEC_VERSIONS, unstable_features: {} } }),
    },
    {
      method: "GET",
      path: `${V3}/login`,
      auth: false,
      handler: () => ({ body: { flows: [{ type: "m.login.password" }] } }),
    },
    {
      method: "POST",
      path: `${V3}/login`,
      auth: false,
      handler: (ctx) => ({ body: login(services, ctx.body) }),
    },
    {
      method: "POST",
      path: `${V3}/logout`,
      handler: (ctx) => {
        services.accounts.removeDevice(ctx.device.token);
        return { body: {} };
      },
    },
    {
      method: "GET",
      path: `${V3}/account/whoami`,
      handler: ({ device }) => ({
        body: { user_id: device.userId, device_id: device.deviceId, is_guest: false },
      }),
    },
    ...accountDataRoutes(services),
    ...filterRoutes(services),
    ...profileRoutes(services),
  ];
}

function login(services: Services, body: unknown): JsonObject {
  const request = objectBody(body);
  if (request.type !== "m.login.password") throw new MatrixHttpError(400, "M_UNKNOWN", "Bad login type.");
  const identifier = isJsonObject(request.identifier) ? request.identifier : {};
  // `user` at top level is the pre-r0.4 form some clients still send.
  const user = optionalString(identifier, "user") ?? optionalString(request, "user");
  // Synapse matches user ids case-insensitively at login.
  const userId = user === undefined ? undefined : safeUserId(services, user.toLowerCase());
  if (userId === undefined || !services.accounts.get(userId) || typeof request.password !== "string") {
    throw forbidden("Invalid username or password");
  }
  const device = services.accounts.addDevice(userId, optionalString(request, "device_id"));
  return {
    user_id: userId,
    access_token: device.token,
    device_id: device.deviceId,
    well_known: { "m.homeserver": { base_url: services.baseUrl() } },
  };
}

function safeUserId(services: Services, user: string): string | undefined {
  try {
    return services.accounts.userIdFor(user);
  } catch {
    return undefined;
  }
}

function requireSelf(ctx: AuthedContext, what: string): string {
  const userId = ctx.params.userId ?? "";
  if (userId !== ctx.device.userId) throw forbidden(`Cannot ${what} for other users.`);
  return userId;
}

function accountDataRoutes(services: Services): Route[] {
  const { accounts, store } = services;
  const roomParam = (ctx: AuthedContext): string => {
    const roomId = ctx.params.roomId ?? "";
    if (!roomId.startsWith("!")) throw invalidParam(`${roomId} is not a valid room ID.`);
    return roomId;
  };
  const get = (ctx: AuthedContext, roomId: string | undefined) => {
    const userId = requireSelf(ctx, "get account data");
    const entry = accounts.getAccountData(userId, roomId, ctx.params.type ?? "");
    if (!entry)
      throw notFound(roomId === undefined ? "Account data not found." : "Room account data not found.");
    return { body: entry.content };
  };
  const put = (ctx: AuthedContext, roomId: string | undefined) => {
    const userId = requireSelf(ctx, "add account data");
    const type = ctx.params.type ?? "";
    if (type === "m.fully_read") {
      throw new MatrixHttpError(405, "M_BAD_JSON", "Cannot set m.fully_read through this API.");
    }
    const content = objectBody(ctx.body);
    accounts.setAccountData(userId, roomId, type, content, store.stream.advance());
    return { body: {} };
  };
  const global = `${V3}/user/:userId/account_data/:type`;
  const perRoom = `${V3}/user/:userId/rooms/:roomId/account_data/:type`;
  return [
    { method: "GET", path: global, handler: (ctx) => get(ctx, undefined) },
    { method: "PUT", path: global, handler: (ctx) => put(ctx, undefined) },
    { method: "GET", path: perRoom, handler: (ctx) => get(ctx, roomParam(ctx)) },
    { method: "PUT", path: perRoom, handler: (ctx) => put(ctx, roomParam(ctx)) },
  ];
}

function filterRoutes(services: Services): Route[] {
  return [
    {
      method: "POST",
      path: `${V3}/user/:userId/filter`,
      handler: (ctx) => {
        const userId = requireSelf(ctx, "create filters");
        const filters = services.accounts.require(userId).filters;
        filters.push(objectBody(ctx.body));
        return { body: { filter_id: String(filters.length - 1) } };
      },
    },
    {
      method: "GET",
      path: `${V3}/user/:userId/filter/:filterId`,
      handler: (ctx) => {
        const userId = requireSelf(ctx, "get filters");
        const filter = services.accounts.require(userId).filters[Number(ctx.params.filterId)];
        if (!filter) throw notFound("No such filter");
        return { body: filter };
      },
    },
  ];
}

function profileRoutes(services: Services): Route[] {
  const { accounts, store } = services;
  const profileOf = (userId: string) => {
    const user = accounts.get(userId);
    if (!user) throw notFound("Profile not found");
    return user.profile;
  };
  return [
    {
      method: "GET",
      path: `${V3}/profile/:userId`,
      handler: (ctx) => ({ body: Object.fromEntries(profileOf(ctx.params.userId ?? "")) }),
    },
    {
      method: "GET",
      path: `${V3}/profile/:userId/:key`,
      handler: (ctx) => {
        const key = ctx.params.key ?? "";
        const value = profileOf(ctx.params.userId ?? "").get(key);
        if (value === undefined) throw notFound("Profile field not found");
        return { body: { [key]: value } };
      },
    },
    {
      method: "PUT",
      path: `${V3}/profile/:userId/:key`,
      handler: (ctx) => {
        const userId = requireSelf(ctx, "modify the profile");
        const key = ctx.params.key ?? "";
        const value = objectBody(ctx.body)[key];
        const isMemberField = key === "displayname" || key === "avatar_url";
        if (value === undefined) throw badJson(`Missing '${key}'`);
        if (isMemberField && value !== null && typeof value !== "string") {
          throw invalidParam(`${key} must be a string`);
        }
        // matrix-bot-sdk's setDisplayName(null) clears the name.
        if (value === null) profileOf(userId).delete(key);
        else profileOf(userId).set(key, value);
        if (isMemberField) refreshProfileInRooms(store, accounts, userId);
        return { body: {} };
      },
    },
    {
      method: "DELETE",
      path: `${V3}/profile/:userId/:key`,
      handler: (ctx) => {
        const userId = requireSelf(ctx, "modify the profile");
        const key = ctx.params.key ?? "";
        profileOf(userId).delete(key);
        if (key === "displayname" || key === "avatar_url") refreshProfileInRooms(store, accounts, userId);
        return { body: {} };
      },
    },
  ];
}
