/**
 * `!db cluster` and `!db failover` end to end: majordome in process, the homeserver double for the
 * room, the Consul double holding a Stolon cluster that the sentinel double keeps alive (its cluster
 * data is shaped after the CONSTRUCTED samples in shared/reference/stolon/, which come from Stolon's Go
 * struct tags, not from a capture).
 */
import { mkdtemp } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import pino from "pino";
import { afterEach, describe, expect, it } from "vitest";
import { startMajordome, type Majordome } from "../../src/app.js";
import { loadPolicies } from "../../src/auth/policy.js";
import { YamlDirectory } from "../../src/auth/yaml-directory.js";
import { SystemClock } from "../../src/clock.js";
import { configSchema } from "../../src/config/schema.js";
import { startConsulDouble, type ConsulDouble } from "../../src/sandbox/consul/index.js";
import type { ClientEvent } from "../../src/sandbox/homeserver/index.js";
import { startStolonDouble, type StolonDouble } from "../../src/sandbox/stolon.js";
import { DOMAIN, handledBy, startWorld, type World } from "../support/world.js";

const cleanups: Array<() => Promise<unknown>> = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

const text = (e: ClientEvent) => String((e.content as { body?: string }).body ?? "");
const rel = (e: ClientEvent) =>
  (e.content as { "m.relates_to"?: { rel_type?: string; event_id?: string } })["m.relates_to"];
/** What a bot message shows: its own text, or an edit's new text. */
const shown = (e: ClientEvent) =>
  rel(e)?.rel_type === "m.replace"
    ? String((e.content as { "m.new_content": { body: string } })["m.new_content"].body)
    : text(e);

interface Setup {
  w: World;
  app: Majordome;
  consul: ConsulDouble;
  stolon: StolonDouble;
  ask(user: string, line: string): Promise<string>;
  waitText(pattern: RegExp, timeoutMs?: number): Promise<ClientEvent>;
}

async function setup(): Promise<Setup> {
  const w = await startWorld();
  cleanups.push(() => w.close());
  const clock = new SystemClock();
  const consul = await startConsulDouble({ now: () => clock.now() });
  cleanups.push(() => consul.close());
  // The sentinel's rounds every 200 ms instead of 5 s, so a failover takes well under a second.
  const stolon = await startStolonDouble({ consulUrl: consul.url, clock, sleepIntervalMs: 200 });
  cleanups.push(() => stolon.close());
  const config = configSchema.parse({
    matrix: {
      homeserver_url: w.hs.url,
      access_token: w.bot.accessToken,
      user_domain: DOMAIN,
      command_rooms: [w.roomId],
    },
    consul: { address: consul.url },
    stolon: { clusters: ["pg"], rewrite_window: "2s", failover_timeout: "20s" },
    state: { path: await mkdtemp(join(tmpdir(), "majordome-stolon-")), fsync: false },
    timings: { sync_timeout: "2s" },
  });
  const app = await startMajordome({
    config,
    clock,
    log: pino({ level: "silent" }),
    directory: new YamlDirectory(),
    policies: await loadPolicies("policies"),
    http: false,
  });
  cleanups.push(() => app.stop());
  await app.synced();
  return {
    w,
    app,
    consul,
    stolon,
    async ask(user, line) {
      const command = w.say(user, line);
      await handledBy(app, command);
      return w.repliesTo(command).map(text).join("\n---\n");
    },
    waitText: (pattern, timeoutMs = 15_000) =>
      w.waitFor(
        (e) => e.sender === w.bot.userId && e.type === "m.room.message" && pattern.test(shown(e)),
        timeoutMs,
      ),
  };
}

describe("Stolon from chat", () => {
  it("!db cluster shows the master, the standbys, the live components and the sentinel at work", async () => {
    const s = await setup();
    const reply = await s.ask("carol", "!db cluster");
    expect(reply).toMatch(/\*\*Stolon cluster `pg`\*\*: phase normal, asynchronous replication/);
    expect(reply).toMatch(/Master: keeper `keeper_a`, database `5a363897` at `10\.0\.0\.1:5432` ✅ healthy/);
    expect(reply).toMatch(/\| `keeper_b` \| `7c1e0a11` \| ✅ \| ✅ \| 0 B \| ✅ \|/);
    expect(reply).toMatch(/Live keepers: `keeper_a`, `keeper_b`, `keeper_c`/);
    expect(reply).toMatch(/Sentinels: `c1d2e3f4`; ✅ the cluster data is being rewritten/);
    expect(reply).toMatch(/Proxies: `1a2b3c4d`, `5e6f7a8b`/);
    expect(await s.ask("carol", "!db cluster --cluster other")).toMatch(
      /`other` is not a Stolon cluster majordome knows \(it knows `pg`\)/,
    );
    expect(await s.ask("carol", "!db cluster --cluster ../../secrets")).toMatch(/a Stolon cluster name/);
  });

  it("an approved !db failover force-fails the master and reports the new one", async () => {
    const s = await setup();
    expect(await s.ask("carol", "!db failover")).toMatch(/⛔/);
    const request = await s.ask("alice", "!db failover");
    expect(request).toMatch(/Approval needed/);
    expect(request).toMatch(/Fail over Stolon cluster `pg`\*\*: force-fail master keeper `keeper_a`/);
    expect(request).toMatch(/`keeper_b` \(database `7c1e0a11`\): ✅ healthy and in sync/);
    expect(request).toMatch(/Proxies: 2 \(`1a2b3c4d`, `5e6f7a8b`\): they drop their client connections/);
    const requestEvent = s.w.hs.timeline(s.w.roomId).find((e) => /Approval needed/.test(text(e)))!;
    s.w.react("alice", requestEvent.event_id, "✅"); // her own approval does not count
    s.w.react("bob", requestEvent.event_id, "✅");
    const done = await s.waitText(/✅ \*\*Failover of `pg`\*\*: master `keeper_a` → `keeper_[bc]`/);
    expect(shown(done)).toMatch(/\(database `5a363897` → `(7c1e0a11|9d2f3b22)`\) in \d/);
    const elected = s.stolon.master().keeper;
    expect(shown(done)).toContain(`→ \`${elected}\``);
    expect(await s.ask("carol", "!db cluster")).toContain(`Master: keeper \`${elected}\``);
  });

  it("a failover with no eligible standby is refused at pre-flight: no approval is asked", async () => {
    const s = await setup();
    s.stolon.noSyncStandby(true);
    await s.stolon.tick();
    await s.stolon.tick();
    const reply = await s.ask("alice", "!db failover");
    expect(reply).toMatch(/⛔ Failover of `pg` refused at pre-flight: no standby is eligible/);
    expect(reply).toMatch(/keeper_b: \d+ bytes behind the master/);
    expect(s.w.hs.timeline(s.w.roomId).some((e) => /Approval needed/.test(text(e)))).toBe(false);
    expect(s.stolon.master().keeper).toBe("keeper_a");
  });

  it("an unreadable cluster data is reported, and never written", async () => {
    const s = await setup();
    await s.stolon.corrupt();
    const corrupt = s.consul.kv(s.stolon.clusterDataKey);
    expect(await s.ask("carol", "!db cluster")).toMatch(/⚠️ `pg`: the cluster data is not JSON/);
    expect(await s.ask("alice", "!db failover")).toMatch(
      /refused at pre-flight: the cluster data is not JSON/,
    );
    expect(s.consul.kv(s.stolon.clusterDataKey)).toBe(corrupt);
  });
});
