import {
  AutojoinRoomsMixin,
  LogLevel,
  LogService,
  MatrixClient,
  MatrixError,
  MemoryStorageProvider,
} from "matrix-bot-sdk";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { startHomeserver, type ClientEvent, type Homeserver } from "../../src/sandbox/homeserver/index.js";

// Expected 4xx answers are logged as errors by the SDK's HTTP layer, and stopping a client mid-poll
// makes its sync loop log one too.
LogService.setLevel(LogLevel.ERROR);
LogService.muteModule("MatrixHttpClient");
LogService.muteModule("MatrixClientLite");

const SERVER = "hs.test";

interface User {
  userId: string;
  accessToken: string;
}

interface SyncBody {
  next_batch: string;
  account_data: { events: unknown[] };
  rooms: {
    join: Record<
      string,
      {
        timeline: { events: ClientEvent[]; limited: boolean; prev_batch: string };
        state: { events: ClientEvent[] };
      }
    >;
    invite: Record<string, { invite_state: { events: ClientEvent[] } }>;
    leave: Record<string, { timeline: { events: ClientEvent[] } }>;
  };
}

interface Answer {
  status: number;
  headers: Headers;
  body: Record<string, unknown>;
}

let hs: Homeserver;
let clockMs: number;
let clients: MatrixClient[];

beforeEach(async () => {
  clockMs = Date.UTC(2026, 0, 1);
  clients = [];
  hs = await startHomeserver({ serverName: SERVER, now: () => clockMs });
});

afterEach(async () => {
  clients.forEach((client) => client.stop());
  await hs.close();
});

function sdk(user: User): MatrixClient {
  const client = new MatrixClient(hs.url, user.accessToken, new MemoryStorageProvider());
  clients.push(client);
  return client;
}

async function call(
  method: string,
  path: string,
  opts: { token?: string; body?: unknown; query?: Record<string, string> } = {},
): Promise<Answer> {
  const query = opts.query ? `?${new URLSearchParams(opts.query).toString()}` : "";
  const response = await fetch(`${hs.url}${path}${query}`, {
    method,
    headers: {
      ...(opts.token ? { Authorization: `Bearer ${opts.token}` } : {}),
      ...(opts.body === undefined ? {} : { "Content-Type": "application/json" }),
    },
    ...(opts.body === undefined ? {} : { body: JSON.stringify(opts.body) }),
  });
  return {
    status: response.status,
    headers: response.headers,
    body: (await response.json()) as Record<string, unknown>,
  };
}

const v3 = (path: string): string => `/_matrix/client/v3${path}`;
const enc = encodeURIComponent;

async function sync(user: User, since?: string, timeout = 0, filter?: string): Promise<SyncBody> {
  const query: Record<string, string> = { timeout: String(timeout) };
  if (since !== undefined) query.since = since;
  if (filter !== undefined) query.filter = filter;
  const answer = await call("GET", v3("/sync"), { token: user.accessToken, query });
  expect(answer.status).toBe(200);
  return answer.body as unknown as SyncBody;
}

function timelineIds(body: SyncBody, roomId: string, type = "m.room.message"): string[] {
  const events = body.rooms.join[roomId]?.timeline.events ?? [];
  return events.filter((event) => event.type === type).map((event) => event.event_id);
}

/** alice created the room and invited bot, who joined. */
function world(): { alice: User; bot: User; carol: User; roomId: string } {
  const alice = hs.registerUser("alice");
  const bot = hs.registerUser("bot");
  const carol = hs.registerUser("carol");
  const roomId = hs.createRoom(alice.userId, { name: "Ops" });
  hs.invite(roomId, alice.userId, bot.userId);
  hs.join(roomId, bot.userId);
  return { alice, bot, carol, roomId };
}

/** The next SDK event `name` (room.message, room.join...) that `accept` accepts. */
function nextEvent(
  client: MatrixClient,
  name: string,
  accept: (roomId: string, event: ClientEvent) => boolean,
): Promise<[string, ClientEvent]> {
  return new Promise((resolve) => {
    const listener = (roomId: string, event: ClientEvent): void => {
      if (!accept(roomId, event)) return;
      client.off(name, listener);
      resolve([roomId, event]);
    };
    client.on(name, listener);
  });
}

async function matrixError(promise: Promise<unknown>): Promise<MatrixError> {
  const error: unknown = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(MatrixError);
  return error as MatrixError;
}

describe("rooms as created", () => {
  it("start with the state a homeserver creates, in order", () => {
    const { roomId, alice } = world();
    const types = hs.timeline(roomId).map((event) => event.type);
    expect(types.slice(0, 7)).toEqual([
      "m.room.create",
      "m.room.member",
      "m.room.power_levels",
      "m.room.join_rules",
      "m.room.history_visibility",
      "m.room.guest_access",
      "m.room.name",
    ]);
    const [create, member] = hs.timeline(roomId);
    expect(create).toMatchObject({ state_key: "", sender: alice.userId, content: { room_version: "11" } });
    expect(member).toMatchObject({
      state_key: alice.userId,
      content: { membership: "join", displayname: "alice" },
    });
    expect(roomId).toMatch(new RegExp(`^![A-Za-z]+:${SERVER}$`));
    expect(create?.event_id).toMatch(/^\$[A-Za-z0-9_-]{43}$/);
  });

  it("registerUser is idempotent", () => {
    const first = hs.registerUser("dave");
    expect(hs.registerUser(`@dave:${SERVER}`)).toEqual(first);
    expect(hs.registerUser("dave", "second-device").accessToken).toBe("second-device");
    expect(() => hs.registerUser("@:elsewhere.test")).toThrow();
    expect(() => hs.registerUser("@dave")).toThrow();
  });

  it("registers users of other servers too (the double stands in for the federation)", () => {
    const remote = hs.registerUser("@dave:elsewhere.test");
    expect(remote.userId).toBe("@dave:elsewhere.test");
  });
});

describe("sync", () => {
  it("a long-poll returns as soon as another user sends", async () => {
    const { alice, bot, roomId } = world();
    const { next_batch } = await sync(bot);
    const started = Date.now();
    const polling = sync(bot, next_batch, 10_000);
    setTimeout(() => hs.sendText(roomId, alice.userId, "ping"), 50);
    const body = await polling;
    expect(Date.now() - started).toBeLessThan(5_000);
    const [event] = body.rooms.join[roomId]?.timeline.events ?? [];
    expect(event).toMatchObject({ type: "m.room.message", sender: alice.userId, content: { body: "ping" } });
    expect(event).not.toHaveProperty("room_id");
  });

  it("a long-poll with nothing new ends at its timeout with an empty, valid response", async () => {
    const { bot } = world();
    const { next_batch } = await sync(bot);
    const started = Date.now();
    const body = await sync(bot, next_batch, 200);
    expect(Date.now() - started).toBeGreaterThanOrEqual(190);
    expect(body.next_batch).toEqual(expect.any(String));
    expect(body.rooms).toEqual({ join: {}, invite: {}, leave: {}, knock: {} });
    expect(body.account_data).toEqual({ events: [] });
  });

  it("wakes the SDK's sync loop when another user sends", async () => {
    const { alice, bot, roomId } = world();
    const client = sdk(bot);
    await client.start();
    const received = nextEvent(
      client,
      "room.message",
      (_room: string, event: ClientEvent) => event.content.body === "hello",
    );
    hs.sendText(roomId, alice.userId, "hello");
    const [room, event] = await received;
    expect(room).toBe(roomId);
    expect(event).toMatchObject({ sender: alice.userId, unsigned: { membership: "join" } });
  });

  it("never returns an event twice and never skips one, whether or not a sync is in flight", async () => {
    const { alice, bot, roomId } = world();
    const sent: string[] = [];
    const seen: string[] = [];
    let since = (await sync(bot)).next_batch;
    for (let round = 0; round < 6; round++) {
      for (let i = 0; i < round; i++) sent.push(hs.sendText(roomId, alice.userId, `before ${round}.${i}`));
      const polling = sync(bot, since, 300);
      if (round % 2 === 1) sent.push(hs.sendText(roomId, alice.userId, `during ${round}`));
      const body = await polling;
      seen.push(...timelineIds(body, roomId));
      since = body.next_batch;
    }
    const last = await sync(bot, since, 0);
    seen.push(...timelineIds(last, roomId));
    expect(seen).toEqual(sent);
  });

  it("delivers every message exactly once, in order, to the SDK under concurrent senders", async () => {
    const { alice, carol, bot, roomId } = world();
    hs.invite(roomId, alice.userId, carol.userId);
    hs.join(roomId, carol.userId);
    const client = sdk(bot);
    const received: string[] = [];
    client.on("room.message", (_room: string, event: ClientEvent) => received.push(event.event_id));
    await client.start();
    const sends = Array.from({ length: 20 }, (_, i) =>
      i % 2 === 0
        ? Promise.resolve(hs.sendText(roomId, alice.userId, `in-process ${i}`))
        : sdk(carol).sendText(roomId, `over http ${i}`),
    );
    await Promise.all(sends);
    const expected = hs
      .timeline(roomId)
      .filter((event) => event.type === "m.room.message")
      .map((event) => event.event_id);
    await expect.poll(() => received.length, { timeout: 5_000 }).toBe(expected.length);
    expect(received).toEqual(expected);
  });

  it("truncates the timeline to the filter's limit and puts the skipped state in `state`", async () => {
    const { alice, bot, roomId } = world();
    const { next_batch } = await sync(bot);
    hs.sendState(roomId, alice.userId, "m.room.topic", "", { topic: "changed in the gap" });
    for (let i = 0; i < 4; i++) hs.sendText(roomId, alice.userId, `msg ${i}`);
    const body = await sync(bot, next_batch, 0, JSON.stringify({ room: { timeline: { limit: 2 } } }));
    const room = body.rooms.join[roomId];
    expect(room?.timeline.limited).toBe(true);
    expect(room?.timeline.events.map((event) => event.content.body)).toEqual(["msg 2", "msg 3"]);
    expect(room?.state.events.map((event) => event.type)).toEqual(["m.room.topic"]);
  });
});

describe("history", () => {
  it("GET /messages pages back from a limited sync's prev_batch", async () => {
    const { alice, bot, roomId } = world();
    const sent = Array.from({ length: 6 }, (_, i) => hs.sendText(roomId, alice.userId, `m${i}`));
    const body = await sync(bot, undefined, 0, JSON.stringify({ room: { timeline: { limit: 2 } } }));
    const timeline = body.rooms.join[roomId]?.timeline;
    expect(timeline?.events.map((event) => event.event_id)).toEqual(sent.slice(4));
    const page = await call("GET", v3(`/rooms/${enc(roomId)}/messages`), {
      token: bot.accessToken,
      query: { dir: "b", from: timeline?.prev_batch ?? "", limit: "3" },
    });
    expect((page.body.chunk as ClientEvent[]).map((event) => event.event_id)).toEqual(
      sent.slice(1, 4).reverse(),
    );
    expect(page.body).toMatchObject({ start: timeline?.prev_batch, end: expect.any(String) });
  });
});

describe("transactions", () => {
  it("the same txnId on the same endpoint gives the same event id and one event, even with another body", async () => {
    const { bot, roomId } = world();
    const path = v3(`/rooms/${enc(roomId)}/send/m.room.message/txn-1`);
    const first = await call("PUT", path, {
      token: bot.accessToken,
      body: { msgtype: "m.text", body: "one" },
    });
    const again = await call("PUT", path, {
      token: bot.accessToken,
      body: { msgtype: "m.text", body: "two" },
    });
    expect(first.status).toBe(200);
    expect(again.body).toEqual(first.body);
    const messages = hs.timeline(roomId).filter((event) => event.type === "m.room.message");
    expect(messages.map((event) => event.content.body)).toEqual(["one"]);
    expect(hs.stats().sends).toBe(1);
    expect(hs.requests.filter((r) => r.txnId === "txn-1").map((r) => r.status)).toEqual([200, 200]);
  });

  it("is scoped to the access token and the endpoint, and echoed only to the sending device", async () => {
    const { bot, roomId } = world();
    const otherDevice = hs.registerUser(bot.userId, "bot-second-device");
    const send = (token: string, type: string) =>
      call("PUT", v3(`/rooms/${enc(roomId)}/send/${type}/same`), {
        token,
        body: { body: "x", msgtype: "m.text" },
      });
    const ids = new Set<unknown>();
    ids.add((await send(bot.accessToken, "m.room.message")).body.event_id);
    ids.add((await send(otherDevice.accessToken, "m.room.message")).body.event_id);
    ids.add((await send(bot.accessToken, "org.example.other")).body.event_id);
    expect(ids.size).toBe(3);
    const mine = (await sync(bot)).rooms.join[roomId]?.timeline.events ?? [];
    const theirs = (await sync(otherDevice)).rooms.join[roomId]?.timeline.events ?? [];
    const firstId = [...ids][0];
    expect(mine.find((e) => e.event_id === firstId)?.unsigned?.transaction_id).toBe("same");
    expect(theirs.find((e) => e.event_id === firstId)?.unsigned).not.toHaveProperty("transaction_id");
  });

  it("does not remember failed attempts, so a retry goes through", async () => {
    const { bot, roomId } = world();
    hs.failNext({ method: "PUT", path: /\/send\// }, 1, 502, "M_UNKNOWN", "Bad gateway");
    const path = v3(`/rooms/${enc(roomId)}/send/m.room.message/retry-me`);
    const body = { msgtype: "m.text", body: "retried" };
    expect((await call("PUT", path, { token: bot.accessToken, body })).status).toBe(502);
    expect((await call("PUT", path, { token: bot.accessToken, body })).status).toBe(200);
    expect(hs.timeline(roomId).filter((event) => event.content.body === "retried")).toHaveLength(1);
  });
});

describe("invites and joins", () => {
  it("an invite reaches the SDK, which joins and then sees the room", async () => {
    const alice = hs.registerUser("alice");
    const bot = hs.registerUser("bot");
    const roomId = hs.createRoom(alice.userId, { name: "Ops" });
    hs.sendText(roomId, alice.userId, "said before the bot came");
    const client = sdk(bot);
    AutojoinRoomsMixin.setupOnClient(client);
    const invited = nextEvent(client, "room.invite", (room: string) => room === roomId);
    const joined = nextEvent(client, "room.join", (room: string) => room === roomId);
    const history = nextEvent(client, "room.message", (room: string) => room === roomId);
    await client.start();
    hs.invite(roomId, alice.userId, bot.userId);
    const [, inviteEvent] = await invited;
    expect(inviteEvent).toMatchObject({
      sender: alice.userId,
      state_key: bot.userId,
      content: { membership: "invite" },
    });
    await joined;
    // History visibility "shared": a newly joined member gets recent history, as from Synapse.
    const [, old] = await history;
    expect(old).toMatchObject({ content: { body: "said before the bot came" } });
    expect(await client.getJoinedRooms()).toEqual([roomId]);
  });

  it("POST /createRoom through the SDK applies the preset, name and invites", async () => {
    const alice = hs.registerUser("alice");
    const bot = hs.registerUser("bot");
    const roomId = await sdk(alice).createRoom({ name: "Created", invite: [bot.userId], is_direct: true });
    const types = hs.timeline(roomId).map((event) => event.type);
    expect(types).toEqual([
      "m.room.create",
      "m.room.member",
      "m.room.power_levels",
      "m.room.join_rules",
      "m.room.history_visibility",
      "m.room.guest_access",
      "m.room.name",
      "m.room.member",
    ]);
    const invite = (await sync(bot)).rooms.invite[roomId]?.invite_state.events.at(-1);
    expect(invite).toMatchObject({
      sender: alice.userId,
      content: { membership: "invite", is_direct: true },
    });
  });

  it("lists the invite with stripped state in the invitee's sync", async () => {
    const alice = hs.registerUser("alice");
    const bot = hs.registerUser("bot");
    const roomId = hs.createRoom(alice.userId, { name: "Ops" });
    const inviteId = hs.invite(roomId, alice.userId, bot.userId);
    const events = (await sync(bot)).rooms.invite[roomId]?.invite_state.events ?? [];
    expect(events.find((event) => event.type === "m.room.name")).toEqual({
      type: "m.room.name",
      state_key: "",
      sender: alice.userId,
      content: { name: "Ops" },
    });
    expect(events.find((event) => event.type === "m.room.member")).toMatchObject({
      event_id: inviteId,
      state_key: bot.userId,
      content: { membership: "invite" },
    });
  });

  it("refuses to join a room one is not invited to, unless it is public", async () => {
    const alice = hs.registerUser("alice");
    const bot = hs.registerUser("bot");
    const privateRoom = hs.createRoom(alice.userId);
    const publicRoom = hs.createRoom(alice.userId, { preset: "public_chat", alias: "lobby" });
    const error = await matrixError(sdk(bot).joinRoom(privateRoom));
    expect(error.statusCode).toBe(403);
    expect(error.body).toEqual({ errcode: "M_FORBIDDEN", error: "You are not invited to this room." });
    expect(await sdk(bot).resolveRoom(`#lobby:${SERVER}`)).toBe(publicRoom);
    expect(await sdk(bot).joinRoom(`#lobby:${SERVER}`)).toBe(publicRoom);
    expect((await matrixError(sdk(bot).resolveRoom(`#nowhere:${SERVER}`))).statusCode).toBe(404);
  });

  it("after leaving, the room is in `leave` once and later events are not visible", async () => {
    const { alice, bot, roomId } = world();
    const { next_batch } = await sync(bot);
    await sdk(bot).leaveRoom(roomId);
    const after = hs.sendText(roomId, alice.userId, "after the bot left");
    const body = await sync(bot, next_batch);
    const left = body.rooms.leave[roomId]?.timeline.events ?? [];
    expect(left.map((event) => [event.type, event.content.membership])).toEqual([["m.room.member", "leave"]]);
    expect(body.rooms.join).toEqual({});
    expect((await sync(bot, body.next_batch)).rooms.leave).toEqual({});
    const error = await matrixError(sdk(bot).getEvent(roomId, after));
    expect(error.statusCode).toBe(403);
  });
});

describe("redaction", () => {
  it("strips the content, keeps the event and links the redaction", async () => {
    const { alice, bot, roomId } = world();
    const target = hs.sendEvent(roomId, alice.userId, "m.room.message", {
      msgtype: "m.text",
      body: "secret",
      format: "org.matrix.custom.html",
      formatted_body: "<b>secret</b>",
    });
    const redactionId = hs.redact(roomId, alice.userId, target, "oops");
    const fetched = await sdk(bot).getEvent(roomId, target);
    expect(fetched.content).toEqual({});
    expect(fetched.unsigned.redacted_because).toMatchObject({
      event_id: redactionId,
      type: "m.room.redaction",
      redacts: target,
      content: { redacts: target, reason: "oops" },
    });
    expect(hs.getEvent(roomId, redactionId)).toMatchObject({ redacts: target, content: { redacts: target } });
  });

  it("goes through the SDK, keeps what the algorithm keeps, and needs power for others' events", async () => {
    const { alice, bot, roomId } = world();
    const client = sdk(bot);
    const own = await client.sendText(roomId, "mine");
    const redactionId = await client.redactEvent(roomId, own, "typo");
    expect(hs.getEvent(roomId, own)?.content).toEqual({});
    expect(hs.timeline(roomId).at(-1)).toMatchObject({ event_id: redactionId, redacts: own });
    const theirs = hs.sendText(roomId, alice.userId, "not yours");
    expect((await matrixError(client.redactEvent(roomId, theirs))).statusCode).toBe(403);
    const botJoin = hs
      .timeline(roomId)
      .find(
        (e) => e.type === "m.room.member" && e.state_key === bot.userId && e.content.membership === "join",
      );
    hs.redact(roomId, alice.userId, botJoin?.event_id ?? "");
    expect(hs.getEvent(roomId, botJoin?.event_id ?? "")?.content).toEqual({ membership: "join" });
  });
});

describe("relations", () => {
  it("lists reactions, newest first, and stops listing a redacted one", async () => {
    const { alice, bot, carol, roomId } = world();
    hs.invite(roomId, alice.userId, carol.userId);
    hs.join(roomId, carol.userId);
    const client = sdk(bot);
    const message = hs.sendText(roomId, alice.userId, "deploy?");
    const fromAlice = hs.react(roomId, alice.userId, message, "👍");
    const fromBot = await client.unstableApis.addReactionToEvent(roomId, message, "✅");
    const fromCarol = hs.react(roomId, carol.userId, message, "👍");
    hs.sendText(roomId, alice.userId, "unrelated");
    const listed = await client.getRelationsForEvent(roomId, message, "m.annotation", "m.reaction");
    expect(listed.chunk.map((event: ClientEvent) => event.event_id)).toEqual([fromCarol, fromBot, fromAlice]);
    expect(listed.chunk[0]).toMatchObject({ room_id: roomId, content: { "m.relates_to": { key: "👍" } } });
    hs.redact(roomId, carol.userId, fromCarol);
    const after = await client.getRelationsForEvent(roomId, message, "m.annotation");
    expect(after.chunk.map((event: ClientEvent) => event.event_id)).toEqual([fromBot, fromAlice]);
  });

  it("pages 5 at a time by default, with next_batch and prev_batch", async () => {
    const { alice, bot, roomId } = world();
    const message = hs.sendText(roomId, alice.userId, "vote");
    const reactions = Array.from({ length: 7 }, (_, i) => hs.react(roomId, alice.userId, message, `${i}`));
    const path = `/_matrix/client/v1/rooms/${enc(roomId)}/relations/${enc(message)}`;
    const first = await call("GET", path, { token: bot.accessToken });
    expect((first.body.chunk as ClientEvent[]).map((e) => e.event_id)).toEqual(reactions.slice(2).reverse());
    const from = String(first.body.next_batch);
    const second = await call("GET", path, { token: bot.accessToken, query: { from } });
    expect((second.body.chunk as ClientEvent[]).map((e) => e.event_id)).toEqual(
      reactions.slice(0, 2).reverse(),
    );
    expect(second.body.prev_batch).toBe(from);
    expect(second.body).not.toHaveProperty("next_batch");
  });
});

describe("rate limiting and fault injection", () => {
  it("refuses sends beyond the burst with a 429 the SDK surfaces with retryAfterMs", async () => {
    const { bot, roomId } = world();
    hs.setRateLimit(bot.userId, { burst: 2, perSecond: 0.5 });
    const client = sdk(bot);
    await client.sendText(roomId, "one");
    await client.sendText(roomId, "two");
    const error = await matrixError(client.sendText(roomId, "three"));
    expect(error).toMatchObject({ statusCode: 429, errcode: "M_LIMIT_EXCEEDED", retryAfterMs: 2000 });
    const raw = await call("PUT", v3(`/rooms/${enc(roomId)}/send/m.room.message/raw`), {
      token: bot.accessToken,
      body: { msgtype: "m.text", body: "raw" },
    });
    expect(raw.status).toBe(429);
    expect(raw.headers.get("retry-after")).toBe("2");
    expect(raw.body).toEqual({
      errcode: "M_LIMIT_EXCEEDED",
      error: "Too many requests",
      retry_after_ms: 2000,
    });
    clockMs += 2_000;
    await client.sendText(roomId, "three, later");
    expect(hs.stats()).toEqual({ rateLimited: 2, sends: 3 });
    hs.setRateLimit(bot.userId, null);
    await client.sendText(roomId, "unlimited");
  });

  it("failNext fails the next matching requests only", async () => {
    const { bot, roomId } = world();
    const client = sdk(bot);
    hs.failNext({ method: "PUT", path: /\/send\/m\.room\.message\// }, 2, 502, "M_UNKNOWN", "Bad gateway");
    for (let i = 0; i < 2; i++) {
      const error = await matrixError(client.sendText(roomId, "try"));
      expect(error).toMatchObject({ statusCode: 502, errcode: "M_UNKNOWN", error: "Bad gateway" });
    }
    expect(await client.getJoinedRooms()).toEqual([roomId]);
    await client.sendText(roomId, "try");
    const sends = hs.requests.filter((r) => r.method === "PUT");
    expect(sends.map((r) => r.status)).toEqual([502, 502, 200]);
    expect(sends[0]).toMatchObject({
      userId: bot.userId,
      path: expect.stringContaining(`/rooms/${roomId}/send/`),
    });
  });

  it("an injected 429 carries retry hints like a real one", async () => {
    const { bot } = world();
    hs.failNext({ path: /whoami/ }, 1, 429, "M_LIMIT_EXCEEDED");
    const error = await matrixError(sdk(bot).getWhoAmI());
    expect(error.retryAfterMs).toBeGreaterThan(0);
  });
});

describe("access control and errors", () => {
  it("gives 403 M_FORBIDDEN to someone who is not in the room", async () => {
    const { alice, roomId } = world();
    const eve = hs.registerUser("eve");
    const message = hs.sendText(roomId, alice.userId, "members only");
    const client = sdk(eve);
    const attempts: (() => Promise<unknown>)[] = [
      () => client.sendText(roomId, "let me in"),
      () => client.getEvent(roomId, message),
      () => client.getRoomState(roomId),
      () => client.getRoomStateEvent(roomId, "m.room.name", ""),
      () => client.getAllRoomMembers(roomId),
      () => client.getJoinedRoomMembers(roomId),
      () => client.getRelationsForEvent(roomId, message),
      () => client.sendReadReceipt(roomId, message),
      () => client.redactEvent(roomId, message),
    ];
    for (const attempt of attempts) {
      const error = await matrixError(attempt());
      expect([error.statusCode, error.errcode]).toEqual([403, "M_FORBIDDEN"]);
    }
    expect(hs.timeline(roomId).filter((event) => event.sender === eve.userId)).toEqual([]);
  });

  it("enforces power levels", async () => {
    const { bot, roomId } = world();
    const error = await matrixError(sdk(bot).sendStateEvent(roomId, "m.room.name", "", { name: "mine now" }));
    expect(error.statusCode).toBe(403);
  });

  it("answers every error as JSON {errcode, error}", async () => {
    const { bot } = world();
    const cases: [() => Promise<Answer>, number, string][] = [
      [() => call("GET", v3("/account/whoami"), { token: "nope" }), 401, "M_UNKNOWN_TOKEN"],
      [() => call("GET", v3("/account/whoami")), 401, "M_MISSING_TOKEN"],
      [() => call("GET", v3("/no/such/endpoint"), { token: bot.accessToken }), 404, "M_UNRECOGNIZED"],
      [() => call("DELETE", v3("/account/whoami"), { token: bot.accessToken }), 405, "M_UNRECOGNIZED"],
      [
        () => call("GET", v3(`/user/${enc(bot.userId)}/account_data/m.direct`), { token: bot.accessToken }),
        404,
        "M_NOT_FOUND",
      ],
    ];
    for (const [answer, status, errcode] of cases) {
      const { status: got, headers, body } = await answer();
      expect([got, body.errcode, typeof body.error]).toEqual([status, errcode, "string"]);
      expect(headers.get("content-type")).toBe("application/json");
    }
  });

  it("rejects content that is not canonical JSON", async () => {
    const { bot, roomId } = world();
    const error = await matrixError(sdk(bot).sendEvent(roomId, "org.example.float", { ratio: 0.5 }));
    expect([error.statusCode, error.errcode]).toEqual([400, "M_BAD_JSON"]);
  });
});

describe("in-process listeners", () => {
  it("onEvent sees events from HTTP and in-process senders, synchronously after storage", async () => {
    const { alice, bot, roomId } = world();
    const seen: [string, string | undefined][] = [];
    const stop = hs.onEvent((room, event) => {
      seen.push([event.type, event.content.body as string | undefined]);
      expect(hs.getEvent(room, event.event_id)).toBeDefined();
    });
    hs.sendText(roomId, alice.userId, "local");
    await sdk(bot).sendNotice(roomId, "remote");
    stop();
    hs.sendText(roomId, alice.userId, "unheard");
    expect(seen).toEqual([
      ["m.room.message", "local"],
      ["m.room.message", "remote"],
    ]);
  });
});
