import { mkdtemp } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import pino from "pino";
import { describe, expect, it } from "vitest";
import { ManualClock } from "../../src/clock.js";
import { message } from "../../src/chat/message.js";
import { Outbox, transactionId } from "../../src/chat/outbox.js";
import { DeliveryError } from "../../src/chat/transport.js";
import { RecordingTransport } from "../support/recording-transport.js";
import { FileStateStore } from "../../src/state/file-store.js";

const timings = { outbox_retry_min: 100, outbox_retry_max: 1000, rate_limit_wait_max: 5000 };
const log = pino({ level: "silent" });

async function setup() {
  const dir = await mkdtemp(join(tmpdir(), "outbox-"));
  const clock = new ManualClock();
  const transport = new RecordingTransport();
  const store = await FileStateStore.open(dir, { fsync: false });
  const waits: number[] = [];
  const outbox = new Outbox(store, transport, clock, timings, log, { rateLimited: (ms) => waits.push(ms) });
  await outbox.load();
  return { dir, clock, transport, store, outbox, waits };
}

describe("outbox", () => {
  it("sends in order, as m.notice with HTML, replies without the legacy fallback", async () => {
    const { outbox, transport } = await setup();
    outbox.start();
    await outbox.send("!r", message("**first**"), { replyTo: "$cmd" });
    await outbox.send("!r", message("second", ["@alice:x"]));
    await outbox.drained();
    const [first, second] = transport.events;
    expect(first!.content).toMatchObject({
      msgtype: "m.notice",
      body: "**first**",
      formatted_body: "<p><strong>first</strong></p>",
      "m.relates_to": { "m.in_reply_to": { event_id: "$cmd" } },
    });
    expect(String(first!.content.body)).not.toMatch(/^>/);
    expect(second!.content["m.mentions"]).toEqual({ user_ids: ["@alice:x"] });
  });

  it("waits out a rate limit (retry_after_ms) and loses nothing", async () => {
    const { outbox, transport, clock, waits } = await setup();
    transport.failures = [new DeliveryError("slow down", "rate-limited", 2000)];
    outbox.start();
    await outbox.send("!r", message("one"));
    await outbox.send("!r", message("two"));
    await clock.advance(1000);
    expect(transport.events).toHaveLength(0);
    await clock.advance(1300); // 2000 ms + up to 10 % jitter
    await outbox.drained();
    expect(transport.events.map((e) => e.content.body)).toEqual(["one", "two"]);
    expect(waits[0]).toBeGreaterThanOrEqual(2000);
    expect(waits[0]).toBeLessThanOrEqual(2200);
  });

  it("caps the wait asked by the homeserver", async () => {
    const { outbox, transport, clock, waits } = await setup();
    transport.failures = [new DeliveryError("slow down", "rate-limited", 3_600_000)];
    outbox.start();
    await outbox.send("!r", message("one"));
    await clock.advance(5500);
    await outbox.drained();
    expect(waits[0]).toBeLessThanOrEqual(5500);
    expect(transport.events).toHaveLength(1);
  });

  it("drops what the homeserver refuses for good, and goes on", async () => {
    const { outbox, transport } = await setup();
    transport.failures = [new DeliveryError("M_FORBIDDEN", "permanent")];
    outbox.start();
    const refused = await outbox.send("!r", message("refused"));
    await outbox.send("!r", message("next"));
    await outbox.drained();
    expect(await outbox.eventIdOf(refused)).toBeNull();
    expect(transport.events.map((e) => e.content.body)).toEqual(["next"]);
  });

  it("coalesces pending edits into the message, or into one edit", async () => {
    const { outbox, transport } = await setup();
    const id = await outbox.send("!r", message("progress 0%"));
    await outbox.edit("!r", id, message("progress 50%"));
    outbox.start();
    await outbox.drained();
    await outbox.stop();
    expect(transport.events.map((e) => e.content.body)).toEqual(["progress 50%"]);

    await outbox.edit("!r", id, message("progress 75%"));
    await outbox.edit("!r", id, message("progress 100%"));
    outbox.start();
    await outbox.drained();
    expect(transport.events).toHaveLength(2);
    expect(transport.events[1]!.content).toMatchObject({
      body: "* progress 100%",
      "m.new_content": { body: "progress 100%" },
      "m.relates_to": { rel_type: "m.replace", event_id: transport.events[0]!.eventId },
    });
  });

  it("after a crash, resends what was queued with the same transaction ID: one event, not two", async () => {
    const { dir, outbox, transport, clock } = await setup();
    await outbox.send("!r", message("queued before the crash"), { id: "$cmd#0" });
    // The "crash": the first process sent it, but died before recording that it did.
    await transport.sendEvent(
      "!r",
      "m.room.message",
      { body: "queued before the crash" },
      transactionId("$cmd#0"),
    );
    const store = await FileStateStore.open(dir, { fsync: false });
    const restarted = new Outbox(store, transport, clock, timings, log);
    await restarted.load();
    restarted.start();
    await restarted.drained();
    expect(transport.events).toHaveLength(1);
    // A replayed command queues the same reply ID: nothing new is sent.
    await restarted.send("!r", message("queued before the crash"), { id: "$cmd#0" });
    await restarted.drained();
    expect(transport.events).toHaveLength(1);
  });

  it("remembers named reactions and edits once sent: asking again after a restart does nothing", async () => {
    const { dir, outbox, transport, clock } = await setup();
    outbox.start();
    const ask = async (o: Outbox) => {
      await o.send("!r", message("incident"), { id: "alert:i1" });
      await o.react("!r", "alert:i1", "👀", { id: "alert:i1:offer0" });
      await o.edit("!r", "alert:i1", message("incident, decided"), { id: "alert:i1:outcome" });
      await o.react("!r", "alert:i1", "🔕");
      await o.drained();
    };
    await ask(outbox);
    // (The edit has a lane of its own: the order between lanes is not fixed.)
    expect(transport.events.map((e) => e.type).sort()).toEqual([
      "m.reaction",
      "m.reaction",
      "m.room.message",
      "m.room.message",
    ]);
    await outbox.stop();
    // Hours later: the homeserver no longer recognizes the transaction IDs.
    const later = new RecordingTransport();
    const restarted = new Outbox(
      await FileStateStore.open(dir, { fsync: false }),
      later,
      clock,
      timings,
      log,
    );
    await restarted.load();
    restarted.start();
    await ask(restarted);
    // Only the unnamed reaction is new.
    expect(later.events.map((e) => [e.type, e.content["m.relates_to"]])).toEqual([
      ["m.reaction", { rel_type: "m.annotation", event_id: "$ev0", key: "🔕" }],
    ]);
  });
});
