/**
 * What people do with incidents, end to end: acknowledge and silence by reaction and by command (as
 * the shipped policies allow: administrators act, association members look), reminders that mention
 * the on-call group, suggested actions taken by reaction (through the same authorization and approval
 * as typed), and a restart of majordome with open and silenced incidents. The Stolon cluster is the
 * Stolon double's, shaped after the CONSTRUCTED samples in shared/reference/stolon/ (not a capture).
 */
import { afterEach, describe, expect, it } from "vitest";
import type { ClientEvent } from "../../src/sandbox/homeserver/index.js";
import { body, mentionsOf, startAlertRoom, type AlertRoom } from "./alerts-support.js";

const cleanups: Array<() => Promise<unknown>> = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

const STEP = { stepMs: 1000 };

async function nodeDown(r: AlertRoom, node: string): Promise<ClientEvent> {
  r.nomad.nodeDown(node);
  return r.incident(new RegExp(`node ${node.replace("-", "\\\\-")} is down`), STEP);
}

/** Every message of the bot (edits excluded): what a restart must not repeat. */
const botMessages = (r: AlertRoom) =>
  r.w.hs
    .timeline(r.w.roomId)
    .filter(
      (e) =>
        e.sender === r.w.bot.userId &&
        e.type === "m.room.message" &&
        (e.content["m.relates_to"] as { rel_type?: string } | undefined)?.rel_type !== "m.replace",
    );

describe("acknowledging and silencing", () => {
  it("👀 from an administrator acknowledges; from a member it is explained, not counted", async () => {
    const r = await startAlertRoom(cleanups);
    const message = await nodeDown(r, "node-2");
    await r.react("carol", message.event_id, "👀");
    expect(await r.inThread(message.event_id, /carol/)).toMatch(
      /@carol:deuxfleurs\.fr: your 👀 does not acknowledge: incident ack is for members of admin/,
    );
    expect(r.current(message.event_id)).not.toMatch(/acknowledged/);
    await r.react("alice", message.event_id, "👀");
    await r.until(message.event_id, /👀 acknowledged by @alice:deuxfleurs\.fr at \d\d:\d\d UTC/);
    expect(await r.ask("carol", "!incidents")).toMatch(/`i1` critical · node node\\-2 is down — for .* 👀/);
    // The acknowledgment ends with the incident.
    r.nomad.nodeUp("node-2");
    const resolved = await r.until(message.event_id, /RESOLVED/, STEP);
    expect(resolved).not.toMatch(/acknowledged/);
  });

  it("🔕 silences for the configured time, said in the thread; !silences and !unsilence", async () => {
    const r = await startAlertRoom(cleanups);
    const message = await nodeDown(r, "node-2");
    await r.react("carol", message.event_id, "🔕");
    expect(await r.inThread(message.event_id, /carol/)).toMatch(/your 🔕 does not silence/);
    await r.react("bob", message.event_id, "🔕");
    const said = await r.inThread(message.event_id, /Silenced by/);
    expect(said).toMatch(
      /🔕 Silenced by @bob:deuxfleurs\.fr until \d\d:\d\d UTC \(silence `s2`; `!unsilence s2` ends it\)/,
    );
    await r.until(message.event_id, /🔕 silenced by @bob:deuxfleurs\.fr until .* \(incident=i1\)/);

    expect(await r.ask("carol", "!silences")).toMatch(
      /`s2` `incident=i1` by @bob:deuxfleurs\.fr until \d\d:\d\d UTC — 🔕 on the incident message/,
    );
    expect(await r.ask("carol", "!unsilence s2")).toMatch(/⛔ unsilence is for members of admin/);
    expect(await r.ask("alice", "!unsilence s2")).toMatch(
      /🔔 Silence `s2` \(`incident=i1`\) ended by @alice/,
    );
    await r.until(message.event_id, /^(?![\s\S]*silenced by)/);
    expect(await r.ask("alice", "!silences")).toMatch(/No active silences/);
  });

  it("a silence ends by itself after the reaction's time (an hour by default)", async () => {
    const r = await startAlertRoom(cleanups);
    const message = await nodeDown(r, "node-2");
    await r.react("bob", message.event_id, "🔕");
    await r.until(message.event_id, /silenced by/);
    await r.advance(59 * 60_000, 10_000);
    expect(r.current(message.event_id)).toMatch(/silenced by/);
    await r.advance(2 * 60_000, 10_000);
    await r.until(message.event_id, /^(?![\s\S]*silenced by)/);
    expect(await r.ask("alice", "!silences")).toMatch(/No active silences/);
  });

  it("!silence mutes what a matcher selects before it fires; !unsilence lets it be said", async () => {
    const r = await startAlertRoom(cleanups);
    expect(await r.ask("carol", "!silence node=node-3 2h")).toMatch(/⛔ silence is for members of admin/);
    expect(await r.ask("alice", "!silence node=node-3;rm 2h")).toMatch(/is not a valid value for node/);
    expect(await r.ask("alice", "!silence node=node-3 2h replacing its disks")).toMatch(
      /🔕 Silence `s1`: `node=node-3` until \d\d:\d\d UTC \(2 hours\) — replacing its disks\. `!unsilence s1` ends it/,
    );
    r.nomad.nodeDown("node-3");
    await r.advance(10_000);
    expect(r.incidents()).toHaveLength(0);
    expect(await r.ask("carol", "!incidents")).toMatch(/`i2` critical · node node\\-3 is down — for .* 🔕/);
    expect(await r.ask("carol", "!silences")).toMatch(
      /`s1` `node=node-3` by @alice:deuxfleurs\.fr .* replacing its disks/,
    );

    await r.ask("alice", "!unsilence s1");
    const message = await r.incident(/node node\\-3 is down/, STEP);
    expect(r.current(message.event_id)).not.toMatch(/silenced/);
  });
});

describe("reminders", () => {
  it("an unacknowledged critical incident is repeated with the on-call group mentioned, until acknowledged", async () => {
    const r = await startAlertRoom(cleanups, { alerts: { repeat_interval: "10m" } });
    const message = await nodeDown(r, "node-2");
    await r.app.services.alerts!.remind();
    expect(r.thread(message.event_id)).toHaveLength(0); // not due yet
    await r.advance(10 * 60_000, 5_000);
    await r.app.services.alerts!.remind();
    await r.inThread(message.event_id, /Still firing/);
    const [reminder] = r.thread(message.event_id);
    expect(body(reminder!)).toMatch(
      /🔁 Still firing after \d+ minutes and not acknowledged: node node-2 is down\. @alice:deuxfleurs\.fr @bob:deuxfleurs\.fr/,
    );
    expect(mentionsOf(reminder!).sort()).toEqual(["@alice:deuxfleurs.fr", "@bob:deuxfleurs.fr"]);

    await r.react("alice", message.event_id, "👀");
    await r.advance(10 * 60_000, 5_000);
    await r.app.services.alerts!.remind();
    await r.advance(2_000);
    expect(r.thread(message.event_id).filter((e) => /Still firing/.test(body(e)))).toHaveLength(1);
  });
});

describe("suggested actions by reaction", () => {
  it("🚰 on a node-down incident asks for the drain's approval in the incident's thread; the approval runs it there", async () => {
    const r = await startAlertRoom(cleanups);
    const message = await nodeDown(r, "node-2");
    await r.react("carol", message.event_id, "🚰");
    expect(await r.inThread(message.event_id, /⛔/)).toMatch(/⛔ drain is for members of admin/);

    await r.react("alice", message.event_id, "🚰");
    const request = await r.inThread(message.event_id, /Approval needed/);
    expect(request).toMatch(/@alice:deuxfleurs\.fr asked: `!drain node-2`/);
    expect(request).toMatch(/\*\*Drain `node-2`\*\*/);
    const requestEvent = r.thread(message.event_id).find((e) => /Approval needed/.test(body(e)))!;
    // Nothing is drained before a second administrator approves.
    const nodes = (await r.nomadApi.get<Array<{ Name: string; LastDrain: unknown }>>("/v1/nodes")).body;
    expect(nodes.find((n) => n.Name === "node-2")?.LastDrain).toBeNull();

    await r.react("bob", requestEvent.event_id, "✅");
    await r.until(requestEvent.event_id, /Approved/, STEP);
    // Nothing runs on a node that is down: its drain is over as soon as it is set.
    await r.waitUntil(async () => {
      const nodes = (await r.nomadApi.get<Array<{ Name: string; LastDrain: unknown }>>("/v1/nodes")).body;
      return nodes.find((n) => n.Name === "node-2")?.LastDrain != null;
    }, "node-2 drained");
    // What the drain says goes to the incident's thread too: a thread cannot start inside a thread.
    await r.inThread(message.event_id, /node-2/, STEP);
    expect(r.thread(requestEvent.event_id)).toHaveLength(0);
  });

  it("🔀 on a keeper-gone incident runs the failover's pre-flight into its approval request", async () => {
    const r = await startAlertRoom(cleanups, { stolon: true });
    await r.advance(10_000);
    r.stolon.keeperDown("keeper_c");
    const message = await r.incident(/Stolon keeper keeper\\_c of pg is gone/, STEP);
    await r.react("alice", message.event_id, "🔀", STEP);
    const request = await r.inThread(message.event_id, /Approval needed/);
    expect(request).toMatch(/asked: `!db failover --cluster pg`/);
    expect(request).toMatch(/force-fail master keeper `keeper_a`/);
    expect(request).toMatch(/`keeper_b` \(database `7c1e0a11`\): ✅ healthy and in sync/);
    expect(request).toMatch(/`keeper_c`/);
    expect(r.stolon.master().keeper).toBe("keeper_a");
  });
});

describe("a restart of majordome", () => {
  it("announces nothing again; the open incident resolves in place; the silence holds", async () => {
    const r = await startAlertRoom(cleanups, { alerts: { repeat_interval: "10m" } });
    const open = await nodeDown(r, "node-2");
    const silenced = await nodeDown(r, "node-3");
    await r.react("bob", silenced.event_id, "🔕");
    await r.until(silenced.event_id, /silenced by/);
    await r.advance(5_000);
    const before = botMessages(r).length;

    await r.restart();
    await r.advance(30_000);
    expect(botMessages(r)).toHaveLength(before);
    expect(await r.ask("carol", "!silences")).toMatch(/`s3` `incident=i2` by @bob/);
    const listed = await r.ask("carol", "!incidents");
    expect(listed).toMatch(/`i1` critical · node node\\-2 is down/);
    expect(listed).toMatch(/`i2` critical · node node\\-3 is down — for .* 🔕/);

    r.nomad.nodeUp("node-2");
    await r.until(open.event_id, /RESOLVED/, STEP);
    expect(r.incidents()).toHaveLength(2);
    // Still silenced: no reminder for it, however long it fires.
    await r.advance(15 * 60_000, 5_000);
    await r.app.services.alerts!.remind();
    await r.advance(2_000);
    expect(r.thread(silenced.event_id).filter((e) => /Still firing/.test(body(e)))).toHaveLength(0);
    expect(r.current(silenced.event_id)).toMatch(/silenced by @bob/);
  });
});
