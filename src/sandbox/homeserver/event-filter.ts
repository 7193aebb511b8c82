import { objectField, type JsonObject } from "./json.js";
import type { StoredEvent } from "./room.js";

/**
 * The event-filter part of a sync filter (spec: EventFilter / RoomEventFilter) for the timeline:
 * `senders`, `not_senders`, `types`, `not_types` (with `*` wildcards). The `not_` lists win.
 */
export type TimelineFilter = (event: StoredEvent) => boolean;

export function timelineFilter(filter: JsonObject): TimelineFilter | undefined {
  const spec = objectField(objectField(filter, "room") ?? {}, "timeline");
  if (!spec) return undefined;
  const list = (key: string) => {
    const value = spec[key];
    return Array.isArray(value) ? value.filter((v): v is string => typeof v === "string") : undefined;
  };
  const [senders, notSenders, types, notTypes] = [
    list("senders"),
    list("not_senders"),
    list("types"),
    list("not_types"),
  ];
  if (!senders && !notSenders && !types && !notTypes) return undefined;
  const matchesType = (patterns: string[], type: string) => patterns.some((p) => wildcard(p).test(type));
  return (event) =>
    !(notSenders?.includes(event.sender) ?? false) &&
    !(notTypes && matchesType(notTypes, event.type)) &&
    (senders ? senders.includes(event.sender) : true) &&
    (types ? matchesType(types, event.type) : true);
}

function wildcard(pattern: string): RegExp {
  return new RegExp(
    `^${pattern
      .split("*")
      .map((part) => part.replace(/[.+?^${}()|[\]\\]/g, "\\$&"))
      .join(".*")}$`,
  );
}
