import { forbidden, notFound } from "./errors.js";
import { objectField, stringField } from "./json.js";
import { pageParams, paginate } from "./pagination.js";
import type { StoredEvent } from "./room.js";
import { queryValue, type AuthedContext, type Route } from "./router.js";
import { render } from "./routes-rooms.js";
import { V1, type Services } from "./services.js";
import { visibleEvents } from "./visibility.js";

/** GET /relations (v1): children of an event, newest first, 5 per page by default (as Synapse). */

export function relationRoutes(services: Services): Route[] {
  const base = `${V1}/rooms/:roomId/relations/:eventId`;
  const handler = (ctx: AuthedContext) => ({ body: relations(services, ctx) });
  return [
    { method: "GET", path: base, handler },
    { method: "GET", path: `${base}/:relType`, handler },
    { method: "GET", path: `${base}/:relType/:eventType`, handler },
  ];
}

function relations(services: Services, ctx: AuthedContext): object {
  const { roomId = "", eventId = "", relType, eventType } = ctx.params;
  const userId = ctx.device.userId;
  const room = services.store.get(roomId);
  if (!room?.everJoined(userId)) {
    throw forbidden(`User ${userId} not in room ${roomId}`);
  }
  const visible = new Set(visibleEvents(room, userId, 0, services.store.stream.current));
  const parent = room.event(eventId);
  if (!parent || !visible.has(parent)) throw notFound("Event not found.");
  const matching = room
    .relationsOf(eventId)
    .filter((event) => relType === undefined || relationType(event) === relType)
    .filter((event) => eventType === undefined || event.type === eventType)
    .filter((event) => visible.has(event));
  const { dir, limit } = pageParams(
    { dir: queryValue(ctx.query, "dir"), limit: queryValue(ctx.query, "limit") },
    { dir: "b", limit: 5 },
  );
  const from = queryValue(ctx.query, "from");
  const to = queryValue(ctx.query, "to");
  const page = paginate(matching, {
    dir,
    limit,
    ...(from === undefined ? {} : { from }),
    ...(to === undefined ? {} : { to }),
  });
  return {
    chunk: page.chunk.map((event) => render(services, ctx, room, event)),
    ...(page.next === undefined ? {} : { next_batch: page.next }),
    ...(from === undefined ? {} : { prev_batch: from }),
  };
}

function relationType(event: StoredEvent): string | undefined {
  const relation = objectField(event.content, "m.relates_to");
  return relation && stringField(relation, "rel_type");
}
