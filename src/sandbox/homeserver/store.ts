import { badJson, tooLarge } from "./errors.js";
import { newEventId } from "./ids.js";
import { canonicalJsonProblem, type JsonObject } from "./json.js";
import { redactContent } from "./redaction.js";
import { Room, type StoredEvent } from "./room.js";
import type { Stream } from "./stream.js";

export interface EventDraft {
  type: string;
  sender: string;
  content: JsonObject;
  stateKey?: string;
  redacts?: string;
  txn?: { token: string; txnId: string };
}

export type StoreListener = (room: Room, event: StoredEvent) => void;

/** Spec: the whole PDU must fit in 65536 bytes of canonical JSON. Leave room for hashes/signatures. */
const MAX_EVENT_BYTES = 65_536 - 1_024;

/** All rooms and aliases; the single place where events come into existence. */
export class RoomStore {
  private readonly rooms = new Map<string, Room>();
  readonly aliases = new Map<string, string>();
  private readonly listeners = new Set<StoreListener>();

  constructor(
    readonly stream: Stream,
    readonly serverName: string,
    readonly now: () => number,
  ) {}

  get(roomId: string): Room | undefined {
    return this.rooms.get(roomId);
  }

  all(): IterableIterator<Room> {
    return this.rooms.values();
  }

  addRoom(room: Room): void {
    if (this.rooms.has(room.roomId)) throw new Error(`room ${room.roomId} already exists`);
    this.rooms.set(room.roomId, room);
  }

  append(room: Room, draft: EventDraft): StoredEvent {
    checkEventSize(room, draft);
    const problem = canonicalJsonProblem(draft.content);
    if (problem) throw badJson(problem);
    const previous = draft.stateKey === undefined ? undefined : room.state(draft.type, draft.stateKey);
    const event: StoredEvent = {
      eventId: newEventId(),
      roomId: room.roomId,
      type: draft.type,
      sender: draft.sender,
      ...(draft.stateKey === undefined ? {} : { stateKey: draft.stateKey }),
      content: draft.content,
      originServerTs: this.now(),
      pos: this.stream.advance(),
      ...(draft.redacts === undefined ? {} : { redacts: draft.redacts }),
      ...(previous ? { prevContent: previous.content } : {}),
      ...(draft.txn ? { txn: draft.txn } : {}),
    };
    room.add(event);
    if (event.redacts !== undefined) applyRedaction(room, event.redacts, event);
    this.emit(room, event);
    return event;
  }

  onEvent(listener: StoreListener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  close(): void {
    for (const room of this.rooms.values()) {
      room.typing.forEach((timer) => clearTimeout(timer));
      room.typing.clear();
    }
  }

  private emit(room: Room, event: StoredEvent): void {
    for (const listener of [...this.listeners]) {
      try {
        listener(room, event);
      } catch (error) {
        // A listener bug must not turn into a 500 for whichever client caused the event: rethrow it
        // outside the request, where the test runner reports it.
        queueMicrotask(() => {
          throw error;
        });
      }
    }
  }
}

function checkEventSize(room: Room, draft: EventDraft): void {
  const { txn: _txn, ...fields } = draft;
  const size = Buffer.byteLength(
    JSON.stringify({ room_id: room.roomId, ...fields, event_id: "$".padEnd(44, "x"), origin_server_ts: 0 }),
  );
  if (size > MAX_EVENT_BYTES) throw tooLarge("event too large");
}

function applyRedaction(room: Room, targetId: string, redaction: StoredEvent): void {
  const target = room.event(targetId);
  if (!target || target.redactedBecause) return;
  target.content = redactContent(target.type, target.content);
  target.redactedBecause = redaction;
}
