import { mkdtemp } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import pino from "pino";
import { describe, expect, it } from "vitest";
import { AlertEngine, type AlertEngineDeps } from "../../src/alerts/engine.js";
import { DEFAULT_RULES } from "../../src/alerts/rules.js";
import type { Signal } from "../../src/alerts/signal.js";
import type { RoomEvent } from "../../src/chat/events.js";
import { ManualClock } from "../../src/clock.js";
import { Outbox } from "../../src/chat/outbox.js";
import { FileStateStore } from "../../src/state/file-store.js";
import { RecordingTransport } from "../support/recording-transport.js";

const ROOM = "!alerts:test";
const log = pino({ level: "silent" });
const timings = {
  groupWaitMs: 30_000,
  groupIntervalMs: 300_000,
  repeatIntervalMs: 4 * 3600_000,
  editIntervalMs: 2_000,
  reactionSilenceMs: 3600_000,
  historyMs: 7 * 24 * 3600_000,
};

async function world(dir?: string, clock = new ManualClock(Date.parse("2026-11-24T10:00:00Z"))) {
  const stateDir = dir ?? (await mkdtemp(join(tmpdir(), "alerts-")));
  const store = await FileStateStore.open(stateDir, { fsync: false });
  const transport = new RecordingTransport();
  const outbox = new Outbox(
    store,
    transport,
    clock,
    { outbox_retry_min: 10, outbox_retry_max: 100, rate_limit_wait_max: 1000 },
    log,
  );
  await outbox.load();
  outbox.start();
  const commands: Array<{ sender: string; line: string; threadRoot: string }> = [];
  const allowed = new Set(["@alice:test"]);
  const deps: AlertEngineDeps = {
    store,
    outbox,
    clock,
    log,
    roomId: ROOM,
    rules: structuredClone(DEFAULT_RULES),
    timings,
    mayAct: async (sender) =>
      allowed.has(sender) ? { allowed: true } : { allowed: false, reason: "you are not in group admin" },
    onCall: async () => ["@alice:test", "@bob:test"],
    runCommand: async (_room, sender, line, _cause, threadRoot) => {
      commands.push({ sender, line, threadRoot });
    },
  };
  const engine = new AlertEngine(deps);
  await engine.load();
  const settle = async () => {
    await engine.flush();
    await outbox.drained();
  };
  /** Top-level messages (not edits, reactions or thread replies). */
  const posts = () =>
    transport.events.filter(
      (e) => e.type === "m.room.message" && !(e.content["m.relates_to"] as object | undefined),
    );
  const threadReplies = () =>
    transport.events.filter(
      (e) => (e.content["m.relates_to"] as { rel_type?: string } | undefined)?.rel_type === "m.thread",
    );
  /** The message as it reads now: the latest edit of `eventId`, or the message itself. */
  const current = (eventId: string): string => {
    const edits = transport.events.filter(
      (e) =>
        (e.content["m.relates_to"] as { rel_type?: string; event_id?: string } | undefined)?.event_id ===
          eventId && (e.content["m.relates_to"] as { rel_type?: string }).rel_type === "m.replace",
    );
    const latest = edits.at(-1);
    const content = latest
      ? (latest.content["m.new_content"] as { body: string })
      : transport.events.find((e) => e.eventId === eventId)!.content;
    return String((content as { body: string }).body);
  };
  const react = (eventId: string, sender: string, key: string): RoomEvent => ({
    roomId: ROOM,
    eventId: `$react-${Math.random()}`,
    sender,
    type: "m.reaction",
    content: { "m.relates_to": { rel_type: "m.annotation", event_id: eventId, key } },
    originServerTs: clock.now(),
  });
  const close = async () => {
    engine.stop();
    await outbox.stop();
    await store.close();
  };
  return {
    dir: stateDir,
    clock,
    store,
    transport,
    outbox,
    engine,
    settle,
    posts,
    threadReplies,
    current,
    react,
    commands,
    allowed,
    close,
  };
}

let n = 0;
function signal(partial: Partial<Signal> & Pick<Signal, "kind">, clock: ManualClock): Signal {
  return {
    status: "firing",
    subject: {},
    reason: "something happened",
    at: clock.now(),
    id: `sig-${++n}`,
    ...partial,
  };
}

const allocFailed = (clock: ManualClock, alloc: string, extra: Partial<Signal> = {}) =>
  signal(
    {
      kind: "alloc-failed",
      subject: { job: "web", group: "app", alloc, node: "n1" },
      reason: `exit code 1 (${alloc})`,
      ...extra,
    },
    clock,
  );

describe("alert engine", () => {
  it("posts a critical incident at once, with the reactions it offers", async () => {
    const w = await world();
    await w.engine.ingest(
      signal({ kind: "node-down", subject: { node: "n2" }, reason: "node stopped heartbeating" }, w.clock),
    );
    await w.settle();
    const [post] = w.posts();
    expect(String(post!.content.body)).toMatch(/CRITICAL.*node n2 is down/);
    const offered = w.transport.events
      .filter((e) => e.type === "m.reaction")
      .map((e) => (e.content["m.relates_to"] as { key: string }).key);
    expect(offered).toEqual(["👀", "🔕", "🚰"]);
    await w.close();
  });

  it("groups a warning's signals during the group wait into one message, then edits it as it evolves", async () => {
    const w = await world();
    await w.engine.ingest(allocFailed(w.clock, "aaaaaaaa1"));
    await w.clock.advance(10_000);
    await w.engine.ingest(allocFailed(w.clock, "bbbbbbbb2"));
    await w.settle();
    expect(w.posts()).toHaveLength(0);
    await w.clock.advance(20_000);
    await w.settle();
    expect(w.posts()).toHaveLength(1);
    const eventId = w.posts()[0]!.eventId;
    expect(w.current(eventId)).toMatch(/Affected: 2/);
    await w.engine.ingest(allocFailed(w.clock, "cccccccc3"));
    await w.settle();
    expect(w.posts()).toHaveLength(1);
    expect(w.current(eventId)).toMatch(/Affected: 3/);
    expect(w.current(eventId)).toMatch(/cccccccc3/);
    await w.close();
  });

  it("never posts an incident that resolved during its group wait", async () => {
    const w = await world();
    await w.engine.ingest(allocFailed(w.clock, "a1"));
    await w.clock.advance(5_000);
    await w.engine.ingest(allocFailed(w.clock, "a1", { status: "resolved", reason: "running again" }));
    await w.clock.advance(60_000);
    await w.settle();
    expect(w.posts()).toHaveLength(0);
    await w.close();
  });

  it("resolves in place with the duration, and reopens the same message when it fires again within the group interval", async () => {
    const w = await world();
    const down = (status: "firing" | "resolved") =>
      signal(
        {
          kind: "node-down",
          status,
          subject: { node: "n2" },
          reason: status === "firing" ? "down" : "ready",
        },
        w.clock,
      );
    await w.engine.ingest(down("firing"));
    await w.clock.advance(120_000);
    await w.engine.ingest(down("resolved"));
    await w.settle();
    const eventId = w.posts()[0]!.eventId;
    expect(w.current(eventId)).toMatch(/RESOLVED.*lasted 2 minutes/);
    await w.clock.advance(60_000);
    await w.engine.ingest(down("firing"));
    await w.settle();
    expect(w.posts()).toHaveLength(1);
    expect(w.current(eventId)).toMatch(/CRITICAL.*reopened 1×/);
    await w.engine.ingest(down("resolved"));
    await w.clock.advance(timings.groupIntervalMs + 1);
    await w.engine.ingest(down("firing"));
    await w.settle();
    expect(w.posts()).toHaveLength(2);
    await w.close();
  });

  it("damps flapping checks: a state must hold for the rule's hold time before anyone is told", async () => {
    const w = await world();
    const check = (status: "firing" | "resolved") =>
      signal(
        {
          kind: "check-critical",
          status,
          subject: { check: "service:web", service: "web", node: "n1" },
          reason: status,
        },
        w.clock,
      );
    await w.engine.ingest(check("firing"));
    await w.clock.advance(30_000);
    await w.engine.ingest(check("resolved"));
    await w.clock.advance(60_000);
    await w.settle();
    expect(w.posts()).toHaveLength(0);
    await w.engine.ingest(check("firing"));
    await w.clock.advance(59_000);
    await w.settle();
    expect(w.posts()).toHaveLength(0);
    await w.clock.advance(1_000);
    await w.settle();
    expect(w.posts()).toHaveLength(1);
    // Recovery is damped too: a short pass does not resolve it.
    await w.engine.ingest(check("resolved"));
    await w.clock.advance(10_000);
    await w.engine.ingest(check("firing"));
    await w.clock.advance(60_000);
    await w.settle();
    expect(w.current(w.posts()[0]!.eventId)).toMatch(/CRITICAL/);
    await w.close();
  });

  it("mutes the allocations and checks of a node that is down: they appear inside the node's incident", async () => {
    const w = await world();
    await w.engine.ingest(signal({ kind: "node-down", subject: { node: "n1" }, reason: "down" }, w.clock));
    for (let i = 0; i < 40; i++)
      await w.engine.ingest(
        signal(
          {
            kind: "alloc-lost",
            subject: { job: "web", group: "app", alloc: `alloc${i}`, node: "n1" },
            reason: "node down",
          },
          w.clock,
        ),
      );
    await w.engine.ingest(
      signal(
        { kind: "check-critical", subject: { check: "service:web", node: "n1" }, reason: "critical" },
        w.clock,
      ),
    );
    await w.clock.advance(120_000);
    await w.settle();
    expect(w.posts()).toHaveLength(1);
    expect(w.current(w.posts()[0]!.eventId)).toMatch(
      /Affected: 42 \(1 node-down, 40 alloc-lost, 1 check-critical\)/,
    );
    await w.close();
  });

  it("edits a storm's counts at most once per edit interval, and shows the final count", async () => {
    const w = await world();
    await w.engine.ingest(signal({ kind: "node-down", subject: { node: "n1" }, reason: "down" }, w.clock));
    await w.settle();
    for (let i = 0; i < 300; i++)
      await w.engine.ingest(
        signal(
          {
            kind: "alloc-lost",
            subject: { job: "web", group: "app", alloc: `alloc${i}`, node: "n1" },
            reason: "node down",
          },
          w.clock,
        ),
      );
    await w.settle();
    const edits = () =>
      w.transport.events.filter(
        (e) => (e.content["m.relates_to"] as { rel_type?: string } | undefined)?.rel_type === "m.replace",
      );
    expect(edits().length).toBeLessThanOrEqual(1);
    await w.clock.advance(timings.editIntervalMs);
    await w.settle();
    expect(edits().length).toBeLessThanOrEqual(2);
    expect(w.current(w.posts()[0]!.eventId)).toMatch(
      /Affected: 301 \(1 node-down, 49 alloc-lost, 251 more not itemized\)/,
    );
    await w.close();
  });

  it("sends allocation failures of a deployment majordome follows to its progress thread instead of paging", async () => {
    const w = await world();
    const unfollow = w.engine.followDeployment("dep-1", "!ops:test", "$progress");
    await w.engine.ingest(
      allocFailed(w.clock, "a1", { subject: { job: "web", group: "app", alloc: "a1", deployment: "dep-1" } }),
    );
    await w.clock.advance(60_000);
    await w.settle();
    expect(w.posts()).toHaveLength(0);
    const [reply] = w.threadReplies();
    expect(reply!.roomId).toBe("!ops:test");
    expect(reply!.content["m.relates_to"]).toMatchObject({ rel_type: "m.thread", event_id: "$progress" });
    unfollow();
    await w.clock.advance(200_000);
    await w.engine.ingest(
      allocFailed(w.clock, "a2", { subject: { job: "web", group: "app", alloc: "a2", deployment: "dep-1" } }),
    );
    await w.clock.advance(60_000);
    await w.settle();
    expect(w.posts()).toHaveLength(1);
    await w.close();
  });

  it("acknowledges by 👀 from someone allowed, and explains a refused one in the thread", async () => {
    const w = await world();
    await w.engine.ingest(signal({ kind: "node-down", subject: { node: "n2" }, reason: "down" }, w.clock));
    await w.settle();
    const eventId = w.posts()[0]!.eventId;
    expect(await w.engine.onReaction(w.react(eventId, "@mallory:test", "👀"))).toBe(true);
    await w.settle();
    expect(String(w.threadReplies()[0]!.content.body)).toMatch(/@mallory:test.*not in group admin/);
    expect(w.current(eventId)).not.toMatch(/acknowledged/);
    await w.engine.onReaction(w.react(eventId, "@alice:test", "👀"));
    await w.settle();
    expect(w.current(eventId)).toMatch(/acknowledged by @alice:test/);
    // Reminders skip acknowledged incidents.
    await w.clock.advance(timings.repeatIntervalMs);
    await w.engine.remind();
    await w.settle();
    expect(w.threadReplies()).toHaveLength(1);
    await w.close();
  });

  it("repeats an unacknowledged critical incident, mentioning the on-call group", async () => {
    const w = await world();
    await w.engine.ingest(signal({ kind: "node-down", subject: { node: "n2" }, reason: "down" }, w.clock));
    await w.settle();
    await w.clock.advance(timings.repeatIntervalMs - 1);
    await w.engine.remind();
    await w.settle();
    expect(w.threadReplies()).toHaveLength(0);
    await w.clock.advance(1);
    await w.engine.remind();
    await w.settle();
    const [reminder] = w.threadReplies();
    expect(String(reminder!.content.body)).toMatch(/Still firing after 4 hours/);
    expect(reminder!.content["m.mentions"]).toEqual({ user_ids: ["@alice:test", "@bob:test"] });
    await w.close();
  });

  it("silences by 🔕 for the configured time, announced in the thread, and posts nothing for a silenced new incident", async () => {
    const w = await world();
    await w.engine.ingest(signal({ kind: "node-down", subject: { node: "n2" }, reason: "down" }, w.clock));
    await w.settle();
    const eventId = w.posts()[0]!.eventId;
    await w.engine.onReaction(w.react(eventId, "@alice:test", "🔕"));
    await w.settle();
    expect(String(w.threadReplies()[0]!.content.body)).toMatch(/Silenced by @alice:test until 11:00 UTC/);
    expect(w.current(eventId)).toMatch(/silenced by @alice:test/);
    expect(w.engine.activeSilences()).toHaveLength(1);

    const silence = await w.engine.silence({ job: "api" }, 600_000, "@alice:test", "maintenance");
    await w.engine.ingest(signal({ kind: "job-dead", subject: { job: "api" }, reason: "dead" }, w.clock));
    await w.settle();
    expect(w.posts()).toHaveLength(1);
    await w.clock.advance(600_000);
    await w.settle();
    expect(w.engine.activeSilences().map((s) => s.id)).not.toContain(silence.id);
    expect(w.posts()).toHaveLength(2);
    await w.close();
  });

  it("runs a suggested action as the person who reacted, answering in the incident's thread", async () => {
    const w = await world();
    await w.engine.ingest(signal({ kind: "node-down", subject: { node: "n2" }, reason: "down" }, w.clock));
    await w.settle();
    const eventId = w.posts()[0]!.eventId;
    await w.engine.onReaction(w.react(eventId, "@bob:test", "🚰"));
    expect(w.commands).toEqual([{ sender: "@bob:test", line: "drain n2", threadRoot: "alert:i1" }]);
    await w.close();
  });

  it("resolves what a source no longer holds open after it re-read its backend, and only its own kinds", async () => {
    const w = await world();
    await w.engine.ingest(signal({ kind: "node-down", subject: { node: "n1" }, reason: "down" }, w.clock));
    await w.engine.ingest(signal({ kind: "node-down", subject: { node: "n2" }, reason: "down" }, w.clock));
    await w.engine.ingest(
      signal({ kind: "keeper-gone", subject: { cluster: "pg", keeper: "k1" }, reason: "gone" }, w.clock),
    );
    await w.settle();
    await w.engine.reconcile(
      new Set(["node-down"]),
      [{ kind: "node-down", subject: { node: "n2" } }],
      "recovered meanwhile",
    );
    await w.settle();
    expect(
      w.engine
        .openIncidents()
        .map((i) => i.title)
        .sort(),
    ).toEqual(["Stolon keeper k1 of pg is gone", "node n2 is down"]);
    await w.close();
  });

  it("drops a signal it has already seen (a replayed event)", async () => {
    const w = await world();
    const s = signal({ kind: "node-down", subject: { node: "n2" }, reason: "down" }, w.clock);
    await w.engine.ingest(s);
    await w.engine.ingest({ ...s });
    await w.settle();
    expect(w.engine.openIncidents()[0]!.events).toBe(1);
    await w.close();
  });

  it("stores an incident member by member; after a restart it has the same members in order and still drops a replay", async () => {
    const first = await world();
    const signals = ["zeta", "alpha", "mid"].map((alloc) => allocFailed(first.clock, alloc));
    for (const s of signals) await first.engine.ingest(s);
    await first.settle();
    const id = first.engine.openIncidents()[0]!.id;
    const stored = async (w: { store: FileStateStore }) =>
      (await w.store.list("alerts/incidents/")).map((e) => e.key);
    expect(await stored(first)).toEqual([
      `alerts/incidents/${id}`,
      `alerts/incidents/${id}/000`,
      `alerts/incidents/${id}/001`,
      `alerts/incidents/${id}/002`,
    ]);
    // A change to one member writes that member and the incident's record, not the others.
    const written: string[] = [];
    const setMany = first.store.setMany.bind(first.store);
    first.store.setMany = (entries) => {
      written.push(...entries.map(([key]) => key));
      return setMany(entries);
    };
    await first.engine.ingest(allocFailed(first.clock, "alpha", { status: "resolved", reason: "back" }));
    await first.settle();
    expect(written).toEqual([`alerts/incidents/${id}/001`, `alerts/incidents/${id}`]);
    const before = first.engine.incident(id)!;
    // A member whose incident record is gone (a crash while it was deleted) is cleaned up.
    await first.store.set("alerts/incidents/i999/000", { key: "alloc-failed:x", member: {} });
    await first.close();

    const second = await world(first.dir, first.clock);
    const after = second.engine.incident(id)!;
    expect(Object.keys(after.members)).toEqual([
      "alloc-failed:zeta",
      "alloc-failed:alpha",
      "alloc-failed:mid",
    ]);
    expect(after).toEqual(before);
    expect(await stored(second)).not.toContain("alerts/incidents/i999/000");
    // Replayed after the restart (the engine's memory of recent signals is gone; the record's is not).
    await second.engine.ingest({ ...signals[2]! });
    await second.settle();
    expect(second.engine.incident(id)!.events).toBe(before.events);
    await second.close();
  });

  it("keeps open incidents, silences and pending holds across a restart, without announcing anything again", async () => {
    const first = await world();
    await first.engine.ingest(
      signal({ kind: "node-down", subject: { node: "n2" }, reason: "down" }, first.clock),
    );
    await first.engine.silence({ job: "api" }, 3600_000, "@alice:test", "");
    await first.engine.ingest(
      signal(
        { kind: "check-critical", subject: { check: "c1", node: "n3" }, reason: "critical" },
        first.clock,
      ),
    );
    await first.settle();
    expect(first.posts()).toHaveLength(1);
    await first.close();

    const second = await world(first.dir, first.clock);
    await second.settle();
    expect(second.posts()).toHaveLength(0);
    expect(second.transport.events.filter((e) => e.type === "m.reaction")).toEqual([]);
    expect(second.engine.openIncidents().map((i) => i.title)).toEqual(["node n2 is down"]);
    expect(second.engine.activeSilences()).toHaveLength(1);
    await second.clock.advance(60_000);
    await second.settle();
    expect(second.posts()).toHaveLength(1);
    expect(String(second.posts()[0]!.content.body)).toMatch(/check c1 on n3 is critical/);
    // The node incident's message is still the one it edits.
    await second.engine.ingest(
      signal(
        { kind: "node-down", status: "resolved", subject: { node: "n2" }, reason: "ready" },
        second.clock,
      ),
    );
    await second.settle();
    const edit = second.transport.events.find(
      (e) => (e.content["m.relates_to"] as { rel_type?: string } | undefined)?.rel_type === "m.replace",
    );
    expect((edit!.content["m.relates_to"] as { event_id: string }).event_id).toBe(first.posts()[0]!.eventId);
    await second.close();
  });
});
