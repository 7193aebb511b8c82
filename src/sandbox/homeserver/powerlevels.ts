import { isJsonObject, type JsonObject } from "./json.js";
import type { Room } from "./room.js";

/** Power-level checks from the spec's authorization rules (the parts a client can trip over). */

function level(value: unknown, fallback: number): number {
  return typeof value === "number" && Number.isInteger(value) ? value : fallback;
}

export function userLevel(room: Room, userId: string): number {
  const pl = room.powerLevels();
  if (!pl) return room.creator() === userId ? 100 : 0;
  const users = isJsonObject(pl.users) ? pl.users : {};
  return level(users[userId], level(pl.users_default, 0));
}

/** Level needed to send an event of `type` (state or not). */
export function requiredForEvent(room: Room, type: string, isState: boolean): number {
  const pl: JsonObject | undefined = room.powerLevels();
  if (!pl) return 0;
  const events = isJsonObject(pl.events) ? pl.events : {};
  const fallback = isState ? level(pl.state_default, 50) : level(pl.events_default, 0);
  return level(events[type], fallback);
}

/** Level for invite / redact / kick / ban (spec defaults: invite 0, others 50). */
export function requiredFor(room: Room, action: "invite" | "redact" | "kick" | "ban"): number {
  const pl = room.powerLevels();
  const fallback = action === "invite" ? 0 : 50;
  return pl ? level(pl[action], fallback) : fallback;
}
