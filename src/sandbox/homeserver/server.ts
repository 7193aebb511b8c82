import { closeServer, listenOn } from "../listen.js";
import { createServer, type Server } from "node:http";
import { Accounts } from "./accounts.js";
import { MatrixHttpError } from "./errors.js";
import { redactEvent, sendMessage, sendState } from "./events.js";
import { FaultInjector, RateLimiter } from "./faults.js";
import { createRequestListener } from "./http.js";
import { isJsonObject, type JsonObject } from "./json.js";
import { createRoom, inviteUser, joinRoom, leaveRoom } from "./membership.js";
import type { Room, StoredEvent } from "./room.js";
import type { Route } from "./router.js";
import { accountRoutes } from "./routes-account.js";
import { membershipRoutes } from "./routes-membership.js";
import { relationRoutes } from "./routes-relations.js";
import { roomRoutes } from "./routes-rooms.js";
import { syncRoutes } from "./routes-sync.js";
import { toClientEvent } from "./serialize.js";
import type { Services } from "./services.js";
import { RoomStore } from "./store.js";
import { Stream } from "./stream.js";
import type {
  ClientEvent,
  CreateRoomOptions,
  FailMatch,
  Homeserver,
  HomeserverOptions,
  RateLimit,
  RequestRecord,
} from "./types.js";

export async function startHomeserver(opts: HomeserverOptions): Promise<Homeserver> {
  const homeserver = new HomeserverDouble(opts);
  await homeserver.listen(opts.host ?? "127.0.0.1", opts.port ?? 0);
  return homeserver;
}

/** The in-process API drives the same functions as the HTTP routes, minus rate limits and faults. */
class HomeserverDouble implements Homeserver {
  readonly serverName: string;
  readonly requests: RequestRecord[] = [];
  private readonly accounts: Accounts;
  private readonly store: RoomStore;
  private readonly limiter: RateLimiter;
  private readonly faults = new FaultInjector();
  private readonly syncListeners = new Set<(userId: string, eventIds: string[]) => void>();
  private readonly server: Server;
  private baseUrl = "";
  private sends = 0;

  constructor(opts: HomeserverOptions) {
    const now = opts.now ?? Date.now;
    this.serverName = opts.serverName;
    this.accounts = new Accounts(opts.serverName);
    this.store = new RoomStore(new Stream(), opts.serverName, now);
    this.limiter = new RateLimiter(now);
    const services: Services = {
      accounts: this.accounts,
      store: this.store,
      baseUrl: () => this.baseUrl,
      syncDelivered: (userId, eventIds) => {
        for (const listener of this.syncListeners) listener(userId, eventIds);
      },
    };
    const routes: Route[] = [
      ...accountRoutes(services),
      ...syncRoutes(services),
      ...roomRoutes(services),
      ...membershipRoutes(services),
      ...relationRoutes(services),
    ];
    this.server = createServer(
      createRequestListener({
        routes,
        accounts: this.accounts,
        faults: this.faults,
        limiter: this.limiter,
        record: (request) => this.requests.push(request),
        onCreatedEvent: () => (this.sends += 1),
      }),
    );
    // The SDK keeps connections alive; a server dropping idle sockets sooner than proxies do (nginx:
    // 75 s) would make it hit the reuse-a-closing-socket race, which real deployments do not.
    this.server.keepAliveTimeout = 75_000;
  }

  get url(): string {
    return this.baseUrl;
  }

  async listen(host: string, port: number): Promise<void> {
    this.baseUrl = await listenOn(this.server, host, port);
  }

  registerUser(localpartOrUserId: string, accessToken?: string): { userId: string; accessToken: string } {
    const device = this.accounts.register(localpartOrUserId, accessToken);
    return { userId: device.userId, accessToken: device.token };
  }

  createRoom(creatorUserId: string, opts?: CreateRoomOptions): string {
    return createRoom(this.store, this.accounts, creatorUserId, opts).roomId;
  }

  invite(roomId: string, senderUserId: string, targetUserId: string): string {
    return inviteUser(this.store, this.accounts, roomId, senderUserId, targetUserId).eventId;
  }

  join(roomIdOrAlias: string, userId: string): string {
    return joinRoom(this.store, this.accounts, roomIdOrAlias, userId).eventId;
  }

  leave(roomId: string, userId: string): string {
    return leaveRoom(this.store, roomId, userId).eventId;
  }

  sendEvent(roomId: string, senderUserId: string, type: string, content: object): string {
    return sendMessage(this.store, roomId, senderUserId, type, asJsonObject(content)).eventId;
  }

  sendState(roomId: string, senderUserId: string, type: string, stateKey: string, content: object): string {
    return sendState(this.store, roomId, senderUserId, type, stateKey, asJsonObject(content)).eventId;
  }

  sendText(roomId: string, senderUserId: string, body: string): string {
    return this.sendEvent(roomId, senderUserId, "m.room.message", { msgtype: "m.text", body });
  }

  react(roomId: string, senderUserId: string, targetEventId: string, key: string): string {
    const relation = { rel_type: "m.annotation", event_id: targetEventId, key };
    return this.sendEvent(roomId, senderUserId, "m.reaction", { "m.relates_to": relation });
  }

  redact(roomId: string, senderUserId: string, eventId: string, reason?: string): string {
    return redactEvent(this.store, roomId, senderUserId, eventId, reason).eventId;
  }

  timeline(roomId: string): ClientEvent[] {
    const room = this.requireRoom(roomId);
    return room.events.map((event) => this.render(room, event));
  }

  getEvent(roomId: string, eventId: string): ClientEvent | undefined {
    const room = this.requireRoom(roomId);
    const event = room.event(eventId);
    return event && this.render(room, event);
  }

  onSyncDelivered(listener: (userId: string, eventIds: string[]) => void): () => void {
    this.syncListeners.add(listener);
    return () => this.syncListeners.delete(listener);
  }

  onEvent(listener: (roomId: string, event: ClientEvent) => void): () => void {
    return this.store.onEvent((room, event) => listener(room.roomId, this.render(room, event)));
  }

  setRateLimit(userId: string, limit: RateLimit | null): void {
    this.limiter.set(userId, limit);
  }

  failNext(match: FailMatch, count: number, status: number, errcode: string, error?: string): void {
    this.faults.add(match, count, status, errcode, error);
  }

  stats(): { rateLimited: number; sends: number } {
    return { rateLimited: this.limiter.refused, sends: this.sends };
  }

  async close(): Promise<void> {
    this.store.close();
    this.store.stream.close();
    await closeServer(this.server);
  }

  /** As a server-side view: no requesting user, so no unsigned.membership or transaction_id. */
  private render(room: Room, event: StoredEvent): ClientEvent {
    return toClientEvent(event, room, { now: this.store.now(), withRoomId: true });
  }

  private requireRoom(roomId: string): Room {
    const room = this.store.get(roomId);
    if (!room) throw new MatrixHttpError(404, "M_NOT_FOUND", `Unknown room ${roomId}`);
    return room;
  }
}

function asJsonObject(content: object): JsonObject {
  const copy: unknown = JSON.parse(JSON.stringify(content));
  if (!isJsonObject(copy)) throw new TypeError("event content must be a JSON object");
  return copy;
}
