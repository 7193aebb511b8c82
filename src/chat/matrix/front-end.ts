import { createRequire } from "node:module";
import { RustSdkCryptoStorageProvider } from "matrix-bot-sdk";
import type { Logger } from "pino";
import type { Clock } from "../../clock.js";
import type { StateStore } from "../../state/store.js";
import type { RoomEvent } from "../events.js";
import type { MessageContent } from "../message.js";
import type { ChatTransport } from "../transport.js";
import { AwaitedSyncClient, deliveryError, routeSdkLogs } from "./sdk.js";
import { MatrixSender } from "./send.js";
import { StateStorageProvider } from "./storage.js";

export interface MatrixFrontEndOptions {
  homeserverUrl: string;
  accessToken: string;
  /** How long one send may take before it is retried. */
  sendTimeoutMs: number;
  /** Rooms majordome serves (commands, alerts); events elsewhere are ignored. */
  rooms: string[];
  /** Invites are accepted only from this homeserver domain (and from `trustedInviters`), into `rooms`. */
  userDomain: string;
  trustedInviters?: string[];
  /** Where the crypto store lives when encryption is on (needs the native binding). */
  encryption: { cryptoStorePath: string } | null;
  syncTimeoutMs: number;
  store: StateStore;
  clock: Clock;
  log: Logger;
}

// Loaded as the SDK loads it (CommonJS require), so we see the same module: the stand-in or the real binding.
const crypto = createRequire(import.meta.url)("@matrix-org/matrix-sdk-crypto-nodejs") as {
  cryptoAvailable?: boolean;
  unavailableReason?: string;
};

type Sink = (event: RoomEvent) => Promise<void>;

/** The Matrix side: syncs with matrix-bot-sdk, hands served rooms' events to the pipeline, sends for the outbox. */
export class MatrixFrontEnd implements ChatTransport {
  readonly client: AwaitedSyncClient;
  private readonly sender: MatrixSender;
  private readonly storage: StateStorageProvider;
  private readonly rooms: Set<string>;
  private sink: Sink = async () => undefined;
  private userId = "";
  private firstSync = false;
  private stopping = false;
  private lastStoredAt = 0;
  private markSynced: () => void = () => undefined;
  /** Resolves once the first sync batch has been handled and its position stored. */
  readonly firstSynced = new Promise<void>((resolve) => (this.markSynced = resolve));

  constructor(private readonly opts: MatrixFrontEndOptions) {
    if (opts.encryption && crypto.cryptoAvailable === false) {
      throw new Error(
        `matrix.encryption is on, but ${crypto.unavailableReason ?? "the crypto binding is missing"}`,
      );
    }
    routeSdkLogs(opts.log, () => this.stopping);
    this.sender = new MatrixSender(opts.homeserverUrl, opts.accessToken, opts.sendTimeoutMs);
    this.rooms = new Set(opts.rooms);
    this.storage = new StateStorageProvider(opts.store, (token) => {
      if (token === null) {
        // The SDK resets the position when it creates a new sync filter: what the initial sync that
        // follows returns is history, not new commands.
        this.firstSync = true;
        return;
      }
      this.lastStoredAt = opts.clock.now();
      this.firstSync = false;
      this.markSynced();
    });
    this.client = new AwaitedSyncClient(
      opts.homeserverUrl,
      opts.accessToken,
      this.storage,
      (type, ...payload) => this.onSdkEvent(type, payload),
      opts.encryption
        ? new RustSdkCryptoStorageProvider(opts.encryption.cryptoStorePath, 0 /* SQLite */)
        : undefined,
    );
    this.client.syncingTimeout = opts.syncTimeoutMs;
  }

  /** Checks the access token and loads the stored sync position. Returns the bot's user ID. */
  async connect(): Promise<string> {
    await this.storage.load();
    // With no stored position this is the first run: what the initial sync returns predates majordome.
    this.firstSync = this.storage.getSyncToken() === null;
    this.userId = await this.client.getUserId();
    return this.userId;
  }

  /** Joins the served rooms it can, and starts syncing into `sink`. */
  async start(sink: Sink): Promise<void> {
    this.sink = sink;
    const joined = new Set(await this.client.getJoinedRooms());
    for (const roomId of this.rooms) {
      if (joined.has(roomId)) continue;
      try {
        await this.client.joinRoom(roomId);
      } catch (error) {
        this.opts.log.warn(
          { roomId, err: (error as Error).message },
          "cannot join a configured room yet; waiting for an invite",
        );
      }
    }
    await this.client.start(syncFilter(this.userId));
  }

  stop(): void {
    this.stopping = true;
    this.client.stop();
  }

  /** After stop, once the outbox has nothing left to send. */
  close(): Promise<void> {
    return this.sender.close();
  }

  /** When the sync position was last stored (0: not yet): the bot is in sync while this is recent. */
  lastSyncAt(): number {
    return this.lastStoredAt;
  }

  async sendEvent(roomId: string, type: string, content: MessageContent, txnId: string): Promise<string> {
    try {
      let [eventType, body] = [type, content];
      if (this.client.crypto && (await this.client.crypto.isRoomEncrypted(roomId))) {
        const encrypted = await this.client.crypto.encryptRoomEvent(roomId, type, content);
        [eventType, body] = ["m.room.encrypted", { ...encrypted }];
      }
      const path = `/_matrix/client/v3/rooms/${enc(roomId)}/send/${enc(eventType)}/${enc(txnId)}`;
      return (await this.sender.put(path, body)).event_id;
    } catch (error) {
      throw deliveryError(error);
    }
  }

  async redactEvent(roomId: string, eventId: string, txnId: string, reason?: string): Promise<string> {
    try {
      const path = `/_matrix/client/v3/rooms/${enc(roomId)}/redact/${enc(eventId)}/${enc(txnId)}`;
      return (await this.sender.put(path, reason ? { reason } : {})).event_id;
    } catch (error) {
      throw deliveryError(error);
    }
  }

  /** The reactions (m.annotation) on an event now, through the relations API, all pages. */
  async reactionsOn(
    roomId: string,
    eventId: string,
  ): Promise<Array<{ eventId: string; sender: string; key: string }>> {
    const found: Array<{ eventId: string; sender: string; key: string }> = [];
    let from: string | undefined;
    do {
      const path = `/_matrix/client/v1/rooms/${enc(roomId)}/relations/${enc(eventId)}/m.annotation/m.reaction`;
      const page = (await this.client.doRequest("GET", path, { limit: 100, ...(from ? { from } : {}) })) as {
        chunk?: Array<Record<string, unknown>>;
        next_batch?: string;
      };
      for (const raw of page.chunk ?? []) {
        const event = toRoomEvent(roomId, raw);
        const rel = event && (event.content["m.relates_to"] as { key?: unknown } | undefined);
        if (event && typeof rel?.key === "string")
          found.push({ eventId: event.eventId, sender: event.sender, key: rel.key });
      }
      from = page.next_batch;
    } while (from);
    return found;
  }

  private async onSdkEvent(type: string, payload: unknown[]): Promise<void> {
    const [roomId, raw] = payload as [string, Record<string, unknown>];
    if (type === "room.invite") return this.onInvite(roomId, raw);
    if (type !== "room.event" && type !== "room.decrypted_event") return;
    if (!this.rooms.has(roomId) || this.firstSync) return;
    if (type === "room.event" && raw.type === "m.room.encrypted") return; // handled as room.decrypted_event
    const event = toRoomEvent(roomId, raw);
    if (!event || event.sender === this.userId) return;
    // Awaited by the sync loop: the sync position is stored only after every event was accepted.
    await this.sink(event);
  }

  private async onInvite(roomId: string, raw: Record<string, unknown>): Promise<void> {
    const inviter = typeof raw.sender === "string" ? raw.sender : "";
    const trusted =
      inviter.endsWith(`:${this.opts.userDomain}`) || (this.opts.trustedInviters ?? []).includes(inviter);
    if (!this.rooms.has(roomId) || !trusted) {
      this.opts.log.warn(
        { roomId, inviter },
        "ignored an invite (not a served room, or not a trusted inviter)",
      );
      return;
    }
    try {
      await this.client.joinRoom(roomId);
      this.opts.log.info({ roomId, inviter }, "joined on invite");
    } catch (error) {
      this.opts.log.warn({ roomId, err: (error as Error).message }, "could not join on invite");
    }
  }
}

/**
 * Only what majordome acts on: no presence, typing or receipts, and not its own timeline events (they
 * would wake every long-poll right after each message it sends). Constant for a given bot account: the
 * SDK restarts from an initial sync whenever the filter changes.
 */
function syncFilter(botUserId: string): Record<string, unknown> {
  return {
    presence: { not_types: ["*"] },
    room: {
      timeline: { not_senders: [botUserId] },
      ephemeral: { not_types: ["*"] },
    },
  };
}

function toRoomEvent(roomId: string, raw: Record<string, unknown>): RoomEvent | undefined {
  if (typeof raw.event_id !== "string" || typeof raw.sender !== "string" || typeof raw.type !== "string") {
    return undefined;
  }
  const content = (typeof raw.content === "object" && raw.content !== null ? raw.content : {}) as Record<
    string,
    unknown
  >;
  const redacts = typeof raw.redacts === "string" ? raw.redacts : content.redacts;
  return {
    roomId,
    eventId: raw.event_id,
    sender: raw.sender,
    type: raw.type,
    content,
    originServerTs: typeof raw.origin_server_ts === "number" ? raw.origin_server_ts : 0,
    ...(typeof redacts === "string" ? { redacts } : {}),
  };
}

function enc(part: string): string {
  return encodeURIComponent(part);
}
