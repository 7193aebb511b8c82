import { cloneJson } from "./json.js";
import type { Room, StoredEvent } from "./room.js";
import type { ClientEvent, UnsignedData } from "./types.js";

export interface Viewer {
  userId: string;
  /** The access token of the request, to echo `transaction_id` to the sender's own device only. */
  token?: string;
}

export interface RenderOptions {
  now: number;
  /** Omitted inside /sync (ClientEventWithoutRoomID). */
  withRoomId: boolean;
  viewer?: Viewer;
}

export function toClientEvent(event: StoredEvent, room: Room, opts: RenderOptions): ClientEvent {
  const out: ClientEvent = {
    event_id: event.eventId,
    type: event.type,
    sender: event.sender,
    origin_server_ts: event.originServerTs,
    content: cloneJson(event.content),
  };
  if (event.stateKey !== undefined) out.state_key = event.stateKey;
  if (opts.withRoomId) out.room_id = event.roomId;
  if (event.redacts !== undefined) out.redacts = event.redacts;
  out.unsigned = unsigned(event, room, opts);
  return out;
}

function unsigned(event: StoredEvent, room: Room, opts: RenderOptions): UnsignedData {
  const data: UnsignedData = { age: Math.max(0, opts.now - event.originServerTs) };
  if (opts.viewer) data.membership = room.membershipAt(opts.viewer.userId, event.pos);
  if (event.txn && opts.viewer?.token === event.txn.token) data.transaction_id = event.txn.txnId;
  if (event.redactedBecause) {
    data.redacted_because = toClientEvent(event.redactedBecause, room, opts);
  } else if (event.prevContent) {
    data.prev_content = cloneJson(event.prevContent);
  }
  return data;
}
