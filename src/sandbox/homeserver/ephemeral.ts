import type { Accounts } from "./accounts.js";
import { invalidParam } from "./errors.js";
import type { Room } from "./room.js";
import type { RoomStore } from "./store.js";

/** Typing notifications and receipts: not room events, but changes /sync reports as `ephemeral`. */

export const RECEIPT_TYPES = ["m.read", "m.read.private", "m.fully_read"] as const;

export function setTyping(
  store: RoomStore,
  room: Room,
  userId: string,
  typing: boolean,
  timeoutMs: number,
): void {
  const wasTyping = room.typing.has(userId);
  clearTimeout(room.typing.get(userId));
  room.typing.delete(userId);
  if (typing) {
    // Real time on purpose: typing expiry is wall-clock in every server, like the sync long-poll.
    const timer = setTimeout(() => setTyping(store, room, userId, false, 0), Math.max(0, timeoutMs));
    timer.unref();
    room.typing.set(userId, timer);
  }
  // Like Synapse, only a change in who is typing is news (refreshing the timeout is not).
  if (typing !== wasTyping) room.typingPos = store.stream.advance();
}

export function postReceipt(
  store: RoomStore,
  accounts: Accounts,
  room: Room,
  userId: string,
  type: string,
  eventId: string,
  threadId?: string,
): void {
  if (!(RECEIPT_TYPES as readonly string[]).includes(type)) {
    throw invalidParam(`Receipt type must be one of ${RECEIPT_TYPES.join(", ")}`);
  }
  if (type === "m.fully_read") {
    if (threadId !== undefined) throw invalidParam("m.fully_read cannot have a thread_id");
    accounts.setAccountData(
      userId,
      room.roomId,
      "m.fully_read",
      { event_id: eventId },
      store.stream.advance(),
    );
    return;
  }
  const key = `${userId}\u0000${type}\u0000${threadId ?? ""}`;
  const receipt = { eventId, type, userId, ts: store.now(), pos: store.stream.advance() };
  room.receipts.set(key, threadId === undefined ? receipt : { ...receipt, threadId });
}
