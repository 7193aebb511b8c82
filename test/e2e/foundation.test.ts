import { mkdtemp } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import pino from "pino";
import { afterEach, describe, expect, it } from "vitest";
import { startMajordome, type Majordome } from "../../src/app.js";
import { YamlDirectory } from "../../src/auth/yaml-directory.js";
import { SystemClock } from "../../src/clock.js";
import { configSchema } from "../../src/config/schema.js";
import { loadPolicies } from "../../src/auth/policy.js";
import { startHomeserver, type ClientEvent } from "../../src/sandbox/homeserver/index.js";
import { FileStateStore } from "../../src/state/file-store.js";
import { ActionJournal } from "../../src/state/journal.js";
import type { StateStore } from "../../src/state/store.js";
import { spawnMajordome, waitHealthy } from "../support/process.js";
import { DOMAIN, startWorld, writeWorldConfig, type World, handledBy } from "../support/world.js";

const body = (event: ClientEvent) => String((event.content as { body?: unknown }).body ?? "");
const cleanups: Array<() => Promise<unknown>> = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

async function inProcess(
  world: World,
  overrides: Record<string, unknown> = {},
  store?: StateStore,
): Promise<Majordome> {
  const config = configSchema.parse({
    matrix: {
      homeserver_url: world.hs.url,
      access_token: world.bot.accessToken,
      user_domain: DOMAIN,
      command_rooms: [world.roomId],
    },
    state: { path: await mkdtemp(join(tmpdir(), "majordome-e2e-")), fsync: false },
    timings: { sync_timeout: "2s", outbox_retry_min: "20ms", outbox_retry_max: "500ms" },
    ...overrides,
  });
  const app = await startMajordome({
    config,
    clock: new SystemClock(),
    log: pino({ level: "silent" }),
    directory: new YamlDirectory(),
    policies: await loadPolicies("policies"),
    http: false,
    ...(store ? { store } : {}),
  });
  cleanups.push(() => app.stop());
  await app.synced();
  return app;
}

async function world(): Promise<World> {
  const w = await startWorld();
  cleanups.push(() => w.close());
  return w;
}

const replyTo = (w: World, eventId: string) =>
  w.waitFor((e) => e.sender === w.bot.userId && w.repliesTo(eventId).some((r) => r.event_id === e.event_id));

describe("majordome through the homeserver double", () => {
  it("answers !help with the command list, as a reply, and marks the command 👀", async () => {
    const w = await world();
    await inProcess(w);
    const command = w.say("alice", "!help");
    const reply = await replyTo(w, command);
    expect(body(reply)).toContain("`!ping`");
    expect(body(reply)).toContain("`!whoami`");
    expect(reply.content).toMatchObject({ msgtype: "m.notice", format: "org.matrix.custom.html" });
    expect(String((reply.content as { formatted_body: string }).formatted_body)).toContain("<table>");
    expect(
      w
        .botReactionsTo(command)
        .map((r) => (r.content as { "m.relates_to": { key: string } })["m.relates_to"].key),
    ).toEqual(["👀"]);
  });

  it("on its very first start, does not run commands from the room's history", async () => {
    const w = await world();
    const old = w.say("alice", "!ping");
    await inProcess(w);
    const fresh = w.say("alice", "!ping");
    await replyTo(w, fresh);
    expect(w.repliesTo(old)).toHaveLength(0);
  });

  it("answers a mention as it answers the prefix, and explains one command", async () => {
    const w = await world();
    await inProcess(w);
    const command = w.say("bob", "majordome: help ping");
    expect(body(await replyTo(w, command))).toContain("Usage: `!ping`");
  });

  it("says what is wrong with a bad command, and suggests the closest one", async () => {
    const w = await world();
    await inProcess(w);
    expect(body(await replyTo(w, w.say("alice", "!pnig")))).toMatch(
      /Unknown command `pnig`\. Did you mean `!ping`\?/,
    );
  });

  it("tells who you are: directory identity and groups; someone from another server is nobody", async () => {
    const w = await world();
    await inProcess(w);
    const alice = body(await replyTo(w, w.say("alice", "!whoami")));
    expect(alice).toContain("`@alice:deuxfleurs.fr`");
    expect(alice).toContain("`admin`");
    const mallory = body(await replyTo(w, w.say("@alice:evil.example", "!whoami")));
    expect(mallory).toMatch(/not a user of deuxfleurs\.fr/);
    expect(mallory).not.toContain("`admin`");
  });

  it("ignores its own messages, edits of commands, notices and other rooms", async () => {
    const w = await world();
    const app = await inProcess(w);
    const other = w.hs.createRoom("@alice:deuxfleurs.fr", { name: "elsewhere" });
    w.hs.invite(other, "@alice:deuxfleurs.fr", w.bot.userId);
    const elsewhere = w.hs.sendText(other, "@alice:deuxfleurs.fr", "!ping");
    const original = w.say("alice", "!ping");
    await replyTo(w, original);
    const edit = w.hs.sendEvent(w.roomId, "@alice:deuxfleurs.fr", "m.room.message", {
      msgtype: "m.text",
      body: "* !help",
      "m.new_content": { msgtype: "m.text", body: "!help" },
      "m.relates_to": { rel_type: "m.replace", event_id: original },
    });
    const notice = w.hs.sendEvent(w.roomId, "@alice:deuxfleurs.fr", "m.room.message", {
      msgtype: "m.notice",
      body: "!help",
    });
    const marker = w.say("alice", "!ping");
    await replyTo(w, marker);
    expect(app.handled(edit)).toBe(true);
    expect(w.repliesTo(edit)).toHaveLength(0);
    expect(w.repliesTo(notice)).toHaveLength(0);
    expect(
      w.hs.timeline(other).filter((e) => e.sender === w.bot.userId && e.type === "m.room.message"),
    ).toHaveLength(0);
    expect(app.handled(elsewhere)).toBe(false);
  });

  it("a rate-limited burst loses nothing: every command gets exactly one answer", async () => {
    const w = await world();
    await inProcess(w);
    w.hs.setRateLimit(w.bot.userId, { burst: 5, perSecond: 50 });
    const commands = Array.from({ length: 40 }, () => w.say("alice", "!ping"));
    for (const command of commands) await replyTo(w, command);
    expect(w.hs.stats().rateLimited).toBeGreaterThan(0);
    for (const command of commands) expect(w.repliesTo(command)).toHaveLength(1);
  });

  it("serves /health and /metrics", async () => {
    const w = await world();
    const { path, healthUrl } = await writeWorldConfig(w);
    const bot = spawnMajordome(path);
    cleanups.push(() => bot.kill());
    await waitHealthy(healthUrl);
    const health = await (await fetch(healthUrl)).json();
    expect(health).toEqual({ healthy: true, role: "leader", reasons: [] });
    await replyTo(w, w.say("alice", "!ping"));
    // The counter moves once the command's audit entry is written, just after its answer goes out.
    let metrics = "";
    for (let i = 0; i < 100 && !/command="ping",outcome="ok"/.test(metrics); i++) {
      metrics = await (await fetch(healthUrl.replace("/health", "/metrics"))).text();
    }
    expect(metrics).toMatch(/majordome_commands_total\{command="ping",outcome="ok"\} 1/);
    expect(metrics).toMatch(/majordome_outbox_depth \d+/);
    expect(metrics).toContain("majordome_matrix_rate_limited_total");
    expect(metrics).toContain("majordome_sync_age_seconds");
  });
});

describe("rooms and interrupted actions", () => {
  it("joins a served room on an invite from its homeserver's users, and ignores other invites", async () => {
    const hs = await startHomeserver({ serverName: DOMAIN });
    cleanups.push(() => hs.close());
    const bot = hs.registerUser("majordome");
    const alice = hs.registerUser("alice").userId;
    const mallory = hs.registerUser("@mallory:evil.example").userId;
    const served = hs.createRoom(alice, { name: "ops" });
    const elsewhere = hs.createRoom(alice, { name: "elsewhere" });
    const trap = hs.createRoom(mallory, { name: "trap" });
    const stateDir = await mkdtemp(join(tmpdir(), "majordome-e2e-"));
    const app = await startMajordome({
      config: configSchema.parse({
        matrix: {
          homeserver_url: hs.url,
          access_token: bot.accessToken,
          user_domain: DOMAIN,
          command_rooms: [served, trap],
        },
        state: { path: stateDir, fsync: false },
        timings: { sync_timeout: "1s" },
      }),
      clock: new SystemClock(),
      log: pino({ level: "silent" }),
      directory: new YamlDirectory(),
      policies: await loadPolicies("policies"),
      http: false,
    });
    cleanups.push(() => app.stop());
    await app.synced();
    hs.invite(trap, mallory, bot.userId); // a served room, but an inviter from elsewhere
    hs.invite(elsewhere, alice, bot.userId); // a trusted inviter, but not a served room
    hs.invite(served, alice, bot.userId);
    const isMember = (roomId: string) =>
      hs
        .timeline(roomId)
        .some(
          (e) =>
            e.type === "m.room.member" &&
            e.state_key === bot.userId &&
            (e.content as { membership?: string }).membership === "join",
        );
    for (let i = 0; i < 500 && !isMember(served); i++) await new Promise((r) => setTimeout(r, 10));
    expect(isMember(served)).toBe(true);
    const command = hs.sendText(served, alice, "!ping");
    await handledBy(app, command);
    expect(isMember(trap)).toBe(false);
    expect(isMember(elsewhere)).toBe(false);
  });

  it("reports an action a previous run left unfinished, with what was done, once", async () => {
    const w = await world();
    const stateDir = await mkdtemp(join(tmpdir(), "majordome-e2e-"));
    const store = await FileStateStore.open(stateDir, { fsync: false });
    const journal = new ActionJournal(store, new SystemClock());
    await journal.begin({
      id: "act-7",
      kind: "drain",
      args: { name: "shop" },
      requester: "@alice:deuxfleurs.fr",
      roomId: w.roomId,
    });
    await journal.step("act-7", "role", async () => ({ role: "shop" }));
    const app = await inProcess(w, { state: { path: stateDir, fsync: false } }, store);
    const report = await w.waitFor(
      (e) => e.sender === w.bot.userId && /interrupted by a restart/.test(body(e)),
    );
    expect(body(report)).toMatch(
      /`drain` \(action `act-7`, asked by @alice:deuxfleurs\.fr\) was interrupted by a restart\. Steps done: `role`\. It was not resumed/,
    );
    expect((await journal.get("act-7"))?.status).toBe("interrupted");
    await app.stop();
  });
});

describe("crash safety (a real process, killed with SIGKILL)", () => {
  for (const point of ["event-accepted", "message-sent"] as const) {
    it(`killed at ${point}, restarted: the command is answered exactly once`, async () => {
      const w = await world();
      const { path, healthUrl } = await writeWorldConfig(w);
      const first = spawnMajordome(path, { MAJORDOME_CRASH_AT: point });
      cleanups.push(() => first.kill());
      await waitHealthy(healthUrl);
      const command = w.say("alice", "!ping");
      expect(await first.exited).toBeNull(); // died by signal
      expect(first.child.signalCode).toBe("SIGKILL");

      const second = spawnMajordome(path);
      cleanups.push(() => second.kill());
      await replyTo(w, command);
      const marker = w.say("alice", "!ping");
      await replyTo(w, marker);
      expect(w.repliesTo(command)).toHaveLength(1);
      expect(w.botReactionsTo(command)).toHaveLength(1);
    });
  }

  it("stops gracefully on SIGTERM", async () => {
    const w = await world();
    const { path, healthUrl } = await writeWorldConfig(w);
    const bot = spawnMajordome(path);
    cleanups.push(() => bot.kill());
    await waitHealthy(healthUrl);
    expect(await bot.kill("SIGTERM")).toBe(0);
  });
});
