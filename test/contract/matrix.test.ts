import {
  LogLevel,
  LogService,
  MatrixAuth,
  MatrixClient,
  MatrixError,
  MemoryStorageProvider,
} from "matrix-bot-sdk";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startHomeserver, type Homeserver } from "../../src/sandbox/homeserver/index.js";
import {
  matrixSample,
  matrixSpecExample,
  readReference,
  referenceDir,
  shapeProblems,
  type ShapeOptions,
} from "../support/reference.js";

/**
 * Contract tests: each request matrix-bot-sdk 0.8.0 makes (as listed in the reference's
 * botsdk-0.8.0-requests.json) is made through the real MatrixClient against the double, and the raw
 * response must carry every field of the spec v1.19 sample for it, with the same JSON types.
 *
 * Samples are spec examples, so they show optional fields too. Where the fixture can make the double
 * produce them (a reason on a join, an avatar, custom profile fields, typing, receipts), it does;
 * the few it cannot are listed in `absentOk` with the reason. Client-supplied content is sent as in
 * the sample, which also checks that the double returns it untouched.
 */

LogService.setLevel(LogLevel.ERROR);
LogService.muteModule("MatrixHttpClient");
LogService.muteModule("MatrixClientLite");

const SERVER = "contract.test";
const V3 = "/_matrix/client/v3";

interface RecordedCall {
  method: string;
  endpoint: string;
  response: unknown;
}

/** The real client, keeping the raw body of every response it gets (its methods mostly return a field). */
class RecordingClient extends MatrixClient {
  readonly calls: RecordedCall[] = [];

  override async doRequest(...args: Parameters<MatrixClient["doRequest"]>): Promise<unknown> {
    const response: unknown = await super.doRequest(...args);
    this.calls.push({ method: String(args[0]), endpoint: String(args[1]), response });
    return response;
  }

  lastResponse(method: string, endpointPart: string): unknown {
    const call = this.calls.findLast((c) => c.method === method && c.endpoint.includes(endpointPart));
    if (!call) throw new Error(`no ${method} ${endpointPart} recorded`);
    return call.response;
  }
}

interface ReferenceRequest {
  method: string;
  path: string;
  api?: string;
  why?: string;
  optional?: boolean;
}

function referenceRequests(): { startup: ReferenceRequest[]; all: ReferenceRequest[] } {
  const file = readReference("matrix", "botsdk-0.8.0-requests.json") as Record<string, ReferenceRequest[]>;
  const startup = file.startup_sequence_client_start ?? [];
  return {
    startup,
    all: [...startup, ...(file.not_called_at_startup ?? []), ...(file.calls_during_a_run ?? [])],
  };
}

function expectShape(actual: unknown, sampleName: string, opts?: ShapeOptions): void {
  expect(shapeProblems(matrixSample(sampleName), actual, opts)).toEqual([]);
}

async function rejection(promise: Promise<unknown>): Promise<MatrixError> {
  const error: unknown = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(MatrixError);
  return error as MatrixError;
}

/** An error body must match its sample's shape and errcode (the one value that is contract). */
function expectErrorLike(error: MatrixError, status: number, sampleName: string): void {
  const sample = matrixSample(sampleName) as { errcode: string };
  expect(error.statusCode).toBe(status);
  expect(error.body).toMatchObject({ errcode: sample.errcode });
  expect(shapeProblems(sample, error.body)).toEqual([]);
}

const sampleContent = (name: string): Record<string, unknown> =>
  (matrixSample(name) as { content: Record<string, unknown> }).content;

describe.skipIf(referenceDir() === undefined)(
  "Matrix homeserver double vs spec v1.19 and matrix-bot-sdk 0.8.0",
  () => {
    let hs: Homeserver;
    const clients: MatrixClient[] = [];
    const ids = {
      bot: "",
      alice: "",
      carol: "",
      /** Read-only room: unnamed, with the history the sync sample shows. */
      showcase: "",
      /** Room the write cases use. */
      work: "",
      message: "",
    };
    let bot: RecordingClient;
    let alice: RecordingClient;
    let carol: RecordingClient;

    function client(accessToken: string): RecordingClient {
      const created = new RecordingClient(hs.url, accessToken, new MemoryStorageProvider());
      clients.push(created);
      return created;
    }

    function user(localpart: string): { id: string; client: RecordingClient } {
      const { userId, accessToken } = hs.registerUser(localpart);
      return { id: userId, client: client(accessToken) };
    }

    beforeAll(async () => {
      hs = await startHomeserver({ serverName: SERVER });
      ({ id: ids.bot, client: bot } = user("bot"));
      ({ id: ids.alice, client: alice } = user("alice"));
      ({ id: ids.carol, client: carol } = user("carol"));
      for (const [who, name] of [
        [alice, "Alice Margatroid"],
        [carol, "Carol"],
      ] as const) {
        await who.setDisplayName(name);
        await who.setAvatarUrl(`mxc://${SERVER}/avatar-of-${name.split(" ")[0]?.toLowerCase()}`);
      }
      await buildShowcaseRoom();
      ids.work = hs.createRoom(ids.alice, { name: "Work" });
      hs.invite(ids.work, ids.alice, ids.bot);
      hs.join(ids.work, ids.bot);
    });

    /** The sync sample's room: a member who joined with a reason, the sample message, typing, receipts. */
    async function buildShowcaseRoom(): Promise<void> {
      ids.showcase = hs.createRoom(ids.alice);
      hs.invite(ids.showcase, ids.alice, ids.bot);
      await bot.joinRoom(ids.showcase);
      hs.invite(ids.showcase, ids.alice, ids.carol);
      await carol.doRequest("POST", `${V3}/rooms/${encodeURIComponent(ids.showcase)}/join`, null, {
        reason: "Looking for support",
      });
      ids.message = await alice.sendMessage(ids.showcase, sampleContent("event.m.room.message.text.json"));
      await alice.setTyping(ids.showcase, true, 60_000);
      await alice.sendReadReceipt(ids.showcase, ids.message);
      const privateReceipt = `${V3}/rooms/${encodeURIComponent(ids.showcase)}/receipt/m.read.private/`;
      await bot.doRequest("POST", privateReceipt + encodeURIComponent(ids.message), null, {});
      await bot.setAccountData("org.example.custom.config", { custom_config_key: "custom_config_value" });
      await bot.setRoomAccountData("m.tag", ids.showcase, { tags: { "u.work": { order: 0.9 } } });
      await bot.setRoomAccountData("org.example.custom.room.config", ids.showcase, {
        custom_config_key: "custom_config_value",
      });
      const invitedTo = hs.createRoom(ids.alice, { name: "My Room Name" });
      hs.invite(invitedTo, ids.alice, ids.bot);
    }

    afterAll(async () => {
      clients.forEach((c) => c.stop());
      await hs?.close();
    });

    /** One entry per `METHOD path` of botsdk-0.8.0-requests.json. */
    const cases: Record<string, () => Promise<void>> = {
      [`GET ${V3}/account/whoami`]: async () => {
        const whoami = await bot.getWhoAmI();
        expectShape(whoami, "whoami.response.json");
        expect(whoami.user_id).toBe(ids.bot);
      },

      [`GET ${V3}/user/{userId}/account_data/m.direct`]: async () => {
        const fresh = user("fresh-dm-user").client;
        expectErrorLike(
          await rejection(fresh.getAccountData("m.direct")),
          404,
          "error.404.M_NOT_FOUND.account-data.json",
        );
        await fresh.setAccountData("m.direct", sampleContent("event.m.direct.json"));
        expect(
          shapeProblems(sampleContent("event.m.direct.json"), await fresh.getAccountData("m.direct")),
        ).toEqual([]);
      },

      [`GET ${V3}/joined_rooms`]: async () => {
        await bot.getJoinedRooms();
        expectShape(bot.lastResponse("GET", "/joined_rooms"), "joined-rooms.response.json");
      },

      [`POST ${V3}/user/{userId}/filter`]: async () => {
        const filter = matrixSample("filter.request.json");
        const path = `${V3}/user/${encodeURIComponent(ids.bot)}/filter`;
        const created = (await bot.doRequest("POST", path, null, filter)) as { filter_id: string };
        expectShape(created, "filter.response.json");
        const stored: unknown = await bot.doRequest("GET", `${path}/${created.filter_id}`);
        const getExample = matrixSpecExample(
          "cs-filter.json",
          "GET",
          "/user/{userId}/filter/{filterId}",
          "200",
        );
        expect(shapeProblems(getExample, stored)).toEqual([]);
      },

      [`GET ${V3}/sync`]: async () => {
        // The query matrix-bot-sdk's doSync sends, plus a filter so the timeline is `limited` as in the sample.
        const query = {
          full_state: false,
          timeout: 0,
          filter: JSON.stringify({ room: { timeline: { limit: 2 } } }),
        };
        const body = (await bot.doRequest("GET", `${V3}/sync`, query)) as {
          rooms: { join: Record<string, { timeline: { events: Record<string, unknown>[] } }> };
        };
        expectShape(body, "sync.response.json", {
          absentOk: {
            "presence.events": "the double has no presence",
            "rooms.knock": "the double has no knocking",
            "rooms.join{}.unread_thread_notifications":
              "only with the unread_thread_notifications filter flag",
          },
        });
        for (const event of body.rooms.join[ids.showcase]?.timeline.events ?? [])
          expect(event).not.toHaveProperty("room_id");
      },

      ["GET /_matrix/client/versions"]: async () => {
        await bot.getServerVersions();
        expectShape(bot.lastResponse("GET", "/versions"), "versions.response.json", {
          maps: ["unstable_features"],
          absentOk: { unstable_features: "the double advertises no unstable feature" },
        });
      },

      [`PUT ${V3}/rooms/{roomId}/send/{eventType}/{txnId}`]: async () => {
        await bot.sendMessage(ids.work, matrixSample("send.request.json") as Record<string, unknown>);
        expectShape(bot.lastResponse("PUT", "/send/m.room.message/"), "send.response.json");
      },

      [`PUT ${V3}/rooms/{roomId}/send/m.reaction/{txnId}`]: async () => {
        const target = await alice.sendText(ids.work, "react to me");
        const reactionId = await bot.unstableApis.addReactionToEvent(ids.work, target, "👍");
        expectShape(bot.lastResponse("PUT", "/send/m.reaction/"), "send.response.json");
        expectShape(await bot.getEvent(ids.work, reactionId), "event.m.reaction.json");
      },

      [`PUT ${V3}/rooms/{roomId}/redact/{eventId}/{txnId}`]: async () => {
        const target = await bot.sendText(ids.work, "to be redacted");
        const redactionId = await bot.redactEvent(ids.work, target, "Indecent material");
        expectShape(bot.lastResponse("PUT", "/redact/"), "redact.response.json");
        expectShape(await bot.getEvent(ids.work, redactionId), "event.m.room.redaction.json");
        const redacted = await bot.getEvent(ids.work, target);
        expect(redacted.content).toEqual({});
        expect(redacted.unsigned.redacted_because).toMatchObject({ event_id: redactionId, redacts: target });
      },

      [`POST ${V3}/join/{roomIdOrAlias}`]: async () => {
        const open = hs.createRoom(ids.alice, { preset: "public_chat", alias: "open" });
        expect(await bot.joinRoom(`#open:${SERVER}`)).toBe(open);
        expectShape(bot.lastResponse("POST", "/join/"), "join.response.json");
        const closed = hs.createRoom(ids.alice);
        expectErrorLike(await rejection(bot.joinRoom(closed)), 403, "error.403.M_FORBIDDEN.join.json");
      },

      [`GET ${V3}/rooms/{roomId}/state`]: async () => {
        await bot.getRoomState(ids.showcase);
        expectShape(bot.lastResponse("GET", "/state"), "room-state.response.json", {
          absentOk: {
            "[].content.m.federate": "optional (defaults to true); Synapse only sets it when asked",
            "[].content.predecessor": "only in upgraded rooms",
            "[].content.notifications": "optional; Synapse's default power levels leave it out",
          },
        });
      },

      [`GET ${V3}/rooms/{roomId}/state/{type}/{stateKey}`]: async () => {
        const powerLevels = await bot.getRoomStateEvent(ids.showcase, "m.room.power_levels", "");
        expect(hs.requests.at(-1)?.path).toMatch(/\/state\/m\.room\.power_levels\/$/);
        expect(
          shapeProblems(sampleContent("event.m.room.power_levels.json"), powerLevels, {
            absentOk: { notifications: "optional; Synapse's default power levels leave it out" },
          }),
        ).toEqual([]);
        const create = await bot.getRoomStateEvent(ids.showcase, "m.room.create", "");
        expect(
          shapeProblems(sampleContent("event.m.room.create.json"), create, {
            absentOk: { "m.federate": "optional, defaults to true", predecessor: "only in upgraded rooms" },
          }),
        ).toEqual([]);
      },

      [`PUT ${V3}/rooms/{roomId}/state/{type}/{stateKey}`]: async () => {
        const content = matrixSample("state-put.request.json") as Record<string, unknown>;
        await bot.sendStateEvent(ids.work, "m.room.member", ids.bot, content);
        expectShape(bot.lastResponse("PUT", "/state/m.room.member/"), "state-put.response.json");
      },

      [`GET ${V3}/profile/{userId}`]: async () => {
        const profilePath = `${V3}/profile/${encodeURIComponent(ids.alice)}`;
        await alice.doRequest("PUT", `${profilePath}/m.tz`, null, { "m.tz": "Europe/London" });
        await alice.doRequest("PUT", `${profilePath}/m.example_field`, null, {
          "m.example_field": "custom_value",
        });
        expectShape(await bot.getUserProfile(ids.alice), "profile.response.json");
      },

      [`PUT ${V3}/profile/{userId}/displayname`]: async () => {
        await bot.setDisplayName("Majordome");
        const example = matrixSpecExample("cs-profile.json", "PUT", "/profile/{userId}/{keyName}", "200");
        expect(bot.lastResponse("PUT", "/displayname")).toEqual(example);
        expect(hs.timeline(ids.work).at(-1)).toMatchObject({
          type: "m.room.member",
          state_key: ids.bot,
          content: { displayname: "Majordome" },
        });
      },

      [`POST ${V3}/rooms/{roomId}/receipt/m.read/{eventId}`]: async () => {
        await bot.sendReadReceipt(ids.showcase, ids.message);
        expect(bot.lastResponse("POST", "/receipt/m.read/")).toEqual(matrixSample("receipt.response.json"));
      },

      [`PUT ${V3}/rooms/{roomId}/typing/{userId}`]: async () => {
        await bot.setTyping(ids.work, true, 30_000);
        expect(bot.lastResponse("PUT", "/typing/")).toEqual(matrixSample("typing.response.json"));
      },

      [`GET ${V3}/rooms/{roomId}/event/{eventId}`]: async () => {
        await bot.getEvent(ids.showcase, ids.message);
        expectShape(bot.lastResponse("GET", "/event/"), "room-event.response.json");
        expectErrorLike(
          await rejection(bot.getEvent(ids.showcase, "$missing")),
          404,
          "error.404.M_NOT_FOUND.event.json",
        );
      },

      ["GET /_matrix/client/v1/rooms/{roomId}/relations/{eventId}[/{relType}[/{eventType}]]"]: async () => {
        const parent = await alice.sendText(ids.work, "parent");
        for (let i = 0; i < 11; i++) {
          await alice.sendMessage(ids.work, {
            "m.relates_to": { rel_type: "org.example.my_relation", event_id: parent },
          });
        }
        const first = await bot.getRelationsForEvent(
          ids.work,
          parent,
          "org.example.my_relation",
          "m.room.message",
        );
        expect(first.chunk).toHaveLength(5);
        const path = `/_matrix/client/v1/rooms/${encodeURIComponent(ids.work)}/relations/${encodeURIComponent(parent)}`;
        const from = (first as { next_batch?: string }).next_batch;
        const second: unknown = await bot.doRequest("GET", path, { from });
        expectShape(second, "relations.response.json");
      },

      [`GET ${V3}/rooms/{roomId}/joined_members`]: async () => {
        await bot.getJoinedRoomMembersWithProfiles(ids.showcase);
        expectShape(bot.lastResponse("GET", "/joined_members"), "joined-members.response.json");
      },

      [`GET ${V3}/rooms/{roomId}/members`]: async () => {
        await bot.getAllRoomMembers(ids.showcase);
        expectShape(bot.lastResponse("GET", "/members"), "members.response.json");
      },

      [`POST ${V3}/rooms/{roomId}/leave`]: async () => {
        const room = hs.createRoom(ids.alice, { preset: "public_chat" });
        await bot.joinRoom(room);
        await bot.leaveRoom(room);
        const example = matrixSpecExample("cs-leaving.json", "POST", "/rooms/{roomId}/leave", "200");
        expect(bot.lastResponse("POST", "/leave")).toEqual(example);
      },

      [`POST ${V3}/login`]: async () => {
        const loggedIn = await new MatrixAuth(hs.url).passwordLogin("bot", "any password", "Contract test");
        clients.push(loggedIn);
        expect(await loggedIn.getUserId()).toBe(ids.bot);
        const request = {
          ...(matrixSample("login-password.request.json") as object),
          identifier: { type: "m.id.user", user: "bot" },
        };
        const response: unknown = await client("").doRequest("POST", `${V3}/login`, null, request);
        expectShape(response, "login.response.json", {
          absentOk: {
            refresh_token: "only for clients that ask for refresh tokens",
            expires_in_ms: "only with refresh tokens",
            "well_known.m.identity_server": "the double has no identity server",
          },
        });
      },
    };

    const { startup, all } = referenceDir() === undefined ? { startup: [], all: [] } : referenceRequests();

    it.each(all.map((request) => [`${request.method} ${request.path}`, request.api ?? request.why ?? ""]))(
      "%s (%s)",
      async (key) => {
        const run = cases[key];
        expect(run, `no contract case for ${key}`).toBeDefined();
        await run?.();
      },
    );

    it("client.start() makes the documented start-up requests, in order", async () => {
      const starter = user("starter");
      await starter.client.start(matrixSample("filter.request.json") as object);
      await expect
        .poll(() => hs.requests.some((r) => r.userId === starter.id && r.path.endsWith("/sync")))
        .toBe(true);
      starter.client.stop();
      const made = hs.requests.filter((r) => r.userId === starter.id).map((r) => `${r.method} ${r.path}`);
      // Step 4 only happens with a crypto store; step 5 because start() was given a filter.
      const expected = startup.filter((step) => !step.optional || step.path.endsWith("/filter"));
      expect(made).toHaveLength(expected.length);
      expected.forEach((step, i) => expect(made[i]).toMatch(templateRegex(step)));
      expect(
        hs.requests.find((r) => r.userId === starter.id && r.path.endsWith("/sync"))?.query,
      ).toMatchObject({
        full_state: "false",
        timeout: "30000",
        filter: expect.any(String),
      });
    });

    it("answers 401 and 429 like the samples, with both Retry-After and retry_after_ms on 429", async () => {
      expectErrorLike(
        await rejection(client("not-a-token").getWhoAmI()),
        401,
        "error.401.M_UNKNOWN_TOKEN.json",
      );
      const limited = user("limited");
      hs.setRateLimit(limited.id, { burst: 1, perSecond: 0.25 });
      hs.invite(ids.work, ids.alice, limited.id);
      hs.join(ids.work, limited.id);
      await limited.client.sendText(ids.work, "first");
      const error = await rejection(limited.client.sendText(ids.work, "second"));
      expectErrorLike(error, 429, "error.429.M_LIMIT_EXCEEDED.json");
      expect(error.retryAfterMs).toBeGreaterThan(3_000);
      const raw = await fetch(
        `${hs.url}${V3}/rooms/${encodeURIComponent(ids.work)}/send/m.room.message/raw`,
        {
          method: "PUT",
          headers: { Authorization: `Bearer ${hs.registerUser("limited").accessToken}` },
          body: JSON.stringify({ msgtype: "m.text", body: "third" }),
        },
      );
      const body = (await raw.json()) as { retry_after_ms: number };
      expect(raw.status).toBe(429);
      expect(raw.headers.get("content-type")).toBe("application/json");
      expect(Number(raw.headers.get("retry-after"))).toBe(Math.ceil(body.retry_after_ms / 1000));
    });
  },
);

function templateRegex(step: ReferenceRequest): RegExp {
  const escaped = `${step.method} ${step.path}`.replace(/[.*+?^$()|[\]\\]/g, "\\$&");
  return new RegExp(`^${escaped.replace(/\{[^}]+\}/g, "[^/]+")}$`);
}
