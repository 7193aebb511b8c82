import { invalidParam } from "./errors.js";
import { isJsonObject, objectField, type JsonObject } from "./json.js";
import { queryValue, type AuthedContext, type Route } from "./router.js";
import { V3, type Services } from "./services.js";
import { buildSync, parseSyncToken, type SyncRequest } from "./sync.js";
import { timelineFilter } from "./event-filter.js";

/** GET /sync with long-polling: answers as soon as there is something for the user, else at `timeout`. */

export function syncRoutes(services: Services): Route[] {
  return [{ method: "GET", path: `${V3}/sync`, handler: (ctx) => sync(services, ctx) }];
}

async function sync(services: Services, ctx: AuthedContext): Promise<{ body: object }> {
  const req = syncRequest(services, ctx);
  const timeout = Number(queryValue(ctx.query, "timeout") ?? "0");
  if (!Number.isFinite(timeout) || timeout < 0) throw invalidParam("'timeout' must be a non-negative number");
  const build = () => buildSync(services.store, services.accounts, req);
  let result = build();
  const waits = req.since !== undefined && !req.fullState;
  // Wall-clock on purpose: the long-poll is a network timeout, not simulated time.
  const deadline = Date.now() + timeout;
  const { stream } = services.store;
  while (waits && !result.hasUpdates && !ctx.signal.aborted && !stream.closed && Date.now() < deadline) {
    await stream.wait(deadline - Date.now(), ctx.signal);
    result = build();
  }
  const delivered = Object.values(result.response.rooms.join).flatMap((room) =>
    room.timeline.events.map((event) => event.event_id),
  );
  if (delivered.length > 0) services.syncDelivered(req.userId, delivered);
  return { body: result.response };
}

function syncRequest(services: Services, ctx: AuthedContext): SyncRequest {
  const sinceToken = queryValue(ctx.query, "since");
  const since = sinceToken === undefined ? undefined : parseSyncToken(sinceToken);
  if (sinceToken !== undefined && since === undefined) throw invalidParam("Invalid stream token");
  const filter = resolveFilter(services, ctx);
  const limit = objectField(objectField(filter, "room") ?? {}, "timeline")?.limit;
  const timeline = timelineFilter(filter);
  return {
    userId: ctx.device.userId,
    token: ctx.device.token,
    fullState: queryValue(ctx.query, "full_state") === "true",
    ...(since === undefined ? {} : { since }),
    ...(typeof limit === "number" && Number.isInteger(limit) && limit >= 0 ? { timelineLimit: limit } : {}),
    ...(timeline ? { timelineFilter: timeline } : {}),
  };
}

/** `filter` is a stored filter id or an inline JSON filter; only room.timeline (limit, senders, types) is honoured. */
function resolveFilter(services: Services, ctx: AuthedContext): JsonObject {
  const filter = queryValue(ctx.query, "filter");
  if (filter === undefined) return {};
  if (filter.startsWith("{")) return parseInlineFilter(filter);
  const stored = services.accounts.require(ctx.device.userId).filters[Number(filter)];
  if (!stored) throw invalidParam("No such filter");
  return stored;
}

function parseInlineFilter(text: string): JsonObject {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    throw invalidParam("Invalid filter");
  }
  if (!isJsonObject(parsed)) throw invalidParam("Invalid filter");
  return parsed;
}
