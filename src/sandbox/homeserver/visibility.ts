import { stringField } from "./json.js";
import type { Room, StoredEvent } from "./room.js";

/**
 * Events with `from` < pos ≤ `upto` that `userId` may see, following the spec's history visibility
 * rules with the state in force when each event was sent. Rooms created here use "shared": a member
 * sees the history from before they joined (so a newly joined bot gets older messages too, as with
 * Synapse), and nothing sent after they left.
 */
export function visibleEvents(
  room: Room,
  userId: string,
  from: number,
  upto: number,
  joinedNow = room.membershipAt(userId, upto) === "join",
): StoredEvent[] {
  let visibility = room.historyVisibilityAt(from);
  let membership = room.membershipAt(userId, from);
  const visible: StoredEvent[] = [];
  for (const event of room.events.slice(room.indexAfter(from))) {
    if (event.pos > upto) break;
    const own = event.type === "m.room.member" && event.stateKey === userId;
    if (own) membership = stringField(event.content, "membership") ?? "leave";
    if (own || canSee(visibility, membership, joinedNow)) visible.push(event);
    if (event.type === "m.room.history_visibility" && event.stateKey === "") {
      visibility = stringField(event.content, "history_visibility") ?? "shared";
    }
  }
  return visible;
}

function canSee(visibility: string, membership: string, joinedNow: boolean): boolean {
  if (visibility === "world_readable" || membership === "join") return true;
  if (visibility === "shared") return joinedNow;
  if (visibility === "invited") return membership === "invite";
  return false;
}

/** Whether one event is visible to `userId` now (for /event, /relations, /context-like reads). */
export function canSeeEvent(room: Room, userId: string, event: StoredEvent): boolean {
  const joinedNow = room.membership(userId) === "join";
  return visibleEvents(room, userId, event.pos - 1, event.pos, joinedNow).length === 1;
}
