/** Public types of the homeserver double. */

export interface HomeserverOptions {
  serverName: string;
  /** Default 127.0.0.1. */
  host?: string;
  /** 0 (the default) picks any free port. */
  port?: number;
  /** Milliseconds since the epoch, for origin_server_ts, ages and rate-limit refills. Default Date.now. */
  now?: () => number;
}

/** The spec's ClientEvent; `room_id` is absent inside /sync, as the spec's ClientEventWithoutRoomID. */
export interface ClientEvent {
  event_id: string;
  type: string;
  sender: string;
  origin_server_ts: number;
  content: Record<string, unknown>;
  state_key?: string;
  room_id?: string;
  /** Redaction events only: kept at top level for clients of room versions < 11 (spec v1.11+). */
  redacts?: string;
  unsigned?: UnsignedData;
}

export interface UnsignedData {
  age?: number;
  /** The requesting user's membership at the time of the event (spec v1.11). */
  membership?: string;
  /** Only for the access token that sent the event. */
  transaction_id?: string;
  prev_content?: Record<string, unknown>;
  redacted_because?: ClientEvent;
  [key: string]: unknown;
}

export type RoomPreset = "private_chat" | "trusted_private_chat" | "public_chat";

export interface CreateRoomOptions {
  name?: string;
  /** Force the room id (otherwise `!<random>:serverName`). */
  roomId?: string;
  topic?: string;
  /** Default private_chat: join_rules invite, history shared, invite power 0 (as Synapse). */
  preset?: RoomPreset;
  /** Local part (or full `#alias:server`) of an alias published for the room. */
  alias?: string;
  invite?: string[];
  isDirect?: boolean;
}

export interface RequestRecord {
  method: string;
  /** Path with each segment percent-decoded, without the query string. */
  path: string;
  query: Record<string, string | string[]>;
  userId?: string;
  status: number;
  txnId?: string;
}

export interface RateLimit {
  burst: number;
  perSecond: number;
}

export interface FailMatch {
  method?: string;
  /** Tested against the decoded path (see RequestRecord.path). */
  path: RegExp;
}

export interface Homeserver {
  readonly url: string;
  readonly serverName: string;
  /** Idempotent. A new `accessToken` for an existing user adds a device with that token. */
  registerUser(localpartOrUserId: string, accessToken?: string): { userId: string; accessToken: string };
  /** The creator is joined. Returns the room id. */
  createRoom(creatorUserId: string, opts?: CreateRoomOptions): string;
  invite(roomId: string, senderUserId: string, targetUserId: string): string;
  join(roomIdOrAlias: string, userId: string): string;
  leave(roomId: string, userId: string): string;
  sendEvent(roomId: string, senderUserId: string, type: string, content: object): string;
  sendState(roomId: string, senderUserId: string, type: string, stateKey: string, content: object): string;
  sendText(roomId: string, senderUserId: string, body: string): string;
  react(roomId: string, senderUserId: string, targetEventId: string, key: string): string;
  redact(roomId: string, senderUserId: string, eventId: string, reason?: string): string;
  timeline(roomId: string): ClientEvent[];
  getEvent(roomId: string, eventId: string): ClientEvent | undefined;
  onEvent(listener: (roomId: string, event: ClientEvent) => void): () => void;
  /** Called when a /sync answer carrying these timeline events is sent to `userId`. */
  onSyncDelivered(listener: (userId: string, eventIds: string[]) => void): () => void;
  setRateLimit(userId: string, limit: RateLimit | null): void;
  failNext(match: FailMatch, count: number, status: number, errcode: string, error?: string): void;
  readonly requests: ReadonlyArray<RequestRecord>;
  /** rateLimited: 429s from setRateLimit; sends: events created over HTTP (send, redact, state). */
  stats(): { rateLimited: number; sends: number };
  close(): Promise<void>;
}
