/**
 * The Nomad event stream under strain, end to end: streams cut while things happen (resumed without
 * losing or repeating anything), and an alert storm (a node with 500 allocations going down) that
 * must make a handful of messages, under the homeserver's rate limit, and lose nothing.
 */
import { afterEach, describe, expect, it } from "vitest";
import { startAlertRoom, type AlertRoom } from "./alerts-support.js";

const cleanups: Array<() => Promise<unknown>> = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

const STEP = { stepMs: 1000 };

/** The bot's messages, split into new ones and edits. */
function botEvents(r: AlertRoom): { posts: number; edits: number } {
  const mine = r.w.hs
    .timeline(r.w.roomId)
    .filter((e) => e.sender === r.w.bot.userId && e.type === "m.room.message");
  const edits = mine.filter(
    (e) => (e.content["m.relates_to"] as { rel_type?: string } | undefined)?.rel_type === "m.replace",
  ).length;
  return { posts: mine.length - edits, edits };
}

describe("the event stream cut", () => {
  it("while events happen: resumed, nothing lost, nothing said twice", async () => {
    const r = await startAlertRoom(cleanups);
    await r.runJob("fragile");
    await r.nomad.settle();
    const opened = r.nomad.eventStreamsOpened();

    // Events while no stream is open: the source reconnects (after its backoff, on the clock).
    r.nomad.cutEventStreams();
    r.nomad.nodeDown("node-3");
    r.nomad.failAllocation("fragile");
    await r.nomad.settle();
    const down = await r.incident(/node node\\-3 is down/, STEP);
    const failing = await r.incident(/allocations of fragile › app failing/, STEP);
    await r.incident(/job fragile is dead/, STEP);
    expect(r.nomad.eventStreamsOpened()).toBeGreaterThan(opened);

    // Cut again in the middle of what follows, several times.
    r.nomad.nodeUp("node-3");
    r.nomad.cutEventStreams();
    await r.runJob("fragile", { version: "2" });
    r.nomad.cutEventStreams();
    await r.nomad.settle();
    await r.until(down.event_id, /RESOLVED/, STEP);
    await r.until(failing.event_id, /RESOLVED/, STEP);
    await r.advance(30_000);

    // One message each (a replayed event would have made a second "events" count or a second message).
    expect(r.incidents()).toHaveLength(3);
    expect(r.current(down.event_id)).not.toMatch(/\d+ events\./);
    expect(r.current(failing.event_id)).toMatch(/Affected: 2 \(1 alloc-not-restarting, 1 alloc-failed\)/);
    expect(r.current(failing.event_id)).toMatch(/2 events\./);
    expect(await r.ask("carol", "!incidents")).toMatch(/No open incidents/);
  });

  it("a stream that stalls is given up by the watchdog; the lists read on reconnecting show what it missed", async () => {
    const r = await startAlertRoom(cleanups);
    const opened = r.nomad.eventStreamsOpened();
    // A hung connection: open, but not even a heartbeat comes through (nor does a new stream's).
    r.nomad.setEventStreamFault("stall");
    const stalledAt = r.clock.now();
    r.nomad.nodeDown("node-2");
    await r.advance(60_000);
    expect(r.incidents()).toHaveLength(0); // within the watchdog's 90 s, nothing tells
    const message = await r.incident(/node node\\-2 is down/, STEP);
    expect(r.clock.now() - stalledAt).toBeGreaterThanOrEqual(90_000);
    expect(r.nomad.eventStreamsOpened()).toBeGreaterThan(opened);
    r.nomad.setEventStreamFault("none");
    r.nomad.nodeUp("node-2");
    await r.until(message.event_id, /RESOLVED/, STEP);
    expect(r.incidents()).toHaveLength(1);
  });
});

describe("an alert storm", () => {
  it("a node with 500 allocations goes down: a handful of messages, all 500 counted", async () => {
    const r = await startAlertRoom(cleanups);
    // A tight rate limit (the homeserver double refills in real time): the incident's message and its
    // three offered reactions do not all go through at once; the outbox waits and retries.
    r.w.hs.setRateLimit(r.w.bot.userId, { burst: 2, perSecond: 20 });
    await r.nomad.burst("node-1", 500);
    await r.nomad.settle();
    const lost = (await r.allocations("storm-node-1")).filter((a) => a.ClientStatus === "lost");
    expect(lost).toHaveLength(500);

    const message = await r.incident(/node node\\-1 is down/, STEP);
    await r.waitUntil(
      () => /Affected: 501 /.test(r.current(message.event_id)),
      "the 500 lost allocations counted in the node's incident",
      { stepMs: 1000, timeoutMs: 20_000 },
    );
    await r.advance(30_000);
    const text = r.current(message.event_id);
    expect(text).toMatch(/Affected: 501 \(1 node-down, \d+ alloc-lost, \d+ more not itemized\)/);
    const [, itemized, more] = /(\d+) alloc-lost, (\d+) more/.exec(text)!;
    expect(Number(itemized) + Number(more)).toBe(500);
    expect(text).toMatch(/501 events\./);

    const { posts, edits } = botEvents(r);
    expect(posts).toBe(1);
    expect(posts + edits).toBeLessThanOrEqual(5);
    expect(r.incidents()).toHaveLength(1);
    expect(r.offers(message.event_id)).toEqual(["👀", "🔕", "🚰"]);
    expect(r.w.hs.stats().rateLimited).toBeGreaterThan(0);

    // The node comes back: the same message resolves, and its allocations run again.
    r.nomad.nodeUp("node-1");
    await r.until(message.event_id, /RESOLVED/, STEP);
    await r.nomad.settle();
    await r.advance(10_000);
    const after = botEvents(r);
    expect(after.posts).toBe(1);
    expect(after.posts + after.edits).toBeLessThanOrEqual(5);
    expect(r.app.outbox.depth()).toBe(0);
  }, 40_000);
});
