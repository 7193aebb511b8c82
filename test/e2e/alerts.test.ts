/**
 * Alerts end to end, rule by rule: each problem in the doubles becomes one incident message in the
 * room, edited in place as it evolves and when it resolves. Timing (group wait, flap hold, watchdog,
 * edit interval) runs on the ManualClock the tests advance. The Stolon cluster data comes from the
 * Stolon double, shaped after the CONSTRUCTED samples in shared/reference/stolon/ (not a capture).
 */
import { afterEach, describe, expect, it } from "vitest";
import type { ClientEvent } from "../../src/sandbox/homeserver/index.js";
import { body, startAlertRoom, type AlertRoom } from "./alerts-support.js";

const cleanups: Array<() => Promise<unknown>> = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

/** The clock moves by a second per look while waiting (signals are taken at the stream's checkpoints). */
const STEP = { stepMs: 1000 };

/** Incident messages whose first text matches (however they read now). */
function posted(r: AlertRoom, pattern: RegExp): ClientEvent[] {
  return r.incidents().filter((e) => pattern.test(body(e)));
}

/** Asserts the incident was announced once, and reads resolved now, in the same message. */
async function resolvesInPlace(r: AlertRoom, message: ClientEvent, title: RegExp): Promise<string> {
  const resolved = await r.until(message.event_id, /✅ \*\*RESOLVED\*\*/, STEP);
  expect(resolved).toMatch(title);
  expect(resolved).toMatch(/lasted /);
  expect(posted(r, title)).toHaveLength(1);
  return resolved;
}

describe("each rule fires and resolves in place", () => {
  it("node down, and back", async () => {
    const r = await startAlertRoom(cleanups);
    r.nomad.nodeDown("node-2");
    const message = await r.incident(/🔴 \*\*CRITICAL\*\* · node node\\-2 is down/, STEP);
    expect(r.current(message.event_id)).toMatch(/Node heartbeat missed/);
    expect(r.current(message.event_id)).toMatch(/🚰 drain the node — incident `i\d+`/);
    expect(r.offers(message.event_id)).toEqual(["👀", "🔕", "🚰"]);
    r.nomad.nodeUp("node-2");
    const resolved = await resolvesInPlace(r, message, /node node\\-2 is down/);
    expect(resolved).toMatch(/Recovered: node node\\-2 is ready again/);
  });

  it("a failed allocation (its restarts exhausted) and the job dead, until a new version runs", async () => {
    const r = await startAlertRoom(cleanups);
    await r.runJob("fragile");
    await r.nomad.settle();
    r.nomad.failAllocation("fragile", 3);
    await r.nomad.settle();
    const failing = await r.incident(/CRITICAL\*\* · allocations of fragile › app failing/, STEP);
    expect(r.current(failing.event_id)).toMatch(/exit code 3/);
    expect(r.current(failing.event_id)).toMatch(/Exceeded allowed attempts 0/);
    expect(r.current(failing.event_id)).toMatch(/Affected: 2 \(1 alloc-not-restarting, 1 alloc-failed\)/);
    const dead = await r.incident(/CRITICAL\*\* · job fragile is dead/, STEP);
    expect(r.current(dead.event_id)).toMatch(/nobody stopped it/);

    await r.runJob("fragile", { version: "2" });
    await r.nomad.settle();
    expect(await resolvesInPlace(r, failing, /allocations of fragile › app failing/)).toMatch(
      /Recovered: a later allocation of fragile\/app .* is running and healthy/,
    );
    expect(await resolvesInPlace(r, dead, /job fragile is dead/)).toMatch(/job fragile is running again/);
  });

  it("an OOM kill", async () => {
    const r = await startAlertRoom(cleanups);
    await r.runJob("fragile");
    await r.nomad.settle();
    r.nomad.oomKill("fragile");
    await r.nomad.settle();
    const message = await r.incident(/allocations of fragile › app failing/, STEP);
    expect(r.current(message.event_id)).toMatch(/OOM\\-killed \\\(exit code 137\\\)/);
    expect(r.current(message.event_id)).toMatch(/1 alloc-oom/);
    await r.runJob("fragile", { version: "2" });
    await r.nomad.settle();
    await resolvesInPlace(r, message, /allocations of fragile › app failing/);
  });

  it("a restart loop, resolved once the window passes without a restart", async () => {
    const r = await startAlertRoom(cleanups);
    await r.runJob("flaky");
    await r.nomad.settle();
    r.nomad.restartLoop("flaky", 5);
    await r.nomad.settle();
    // A warning: said after the group wait, not before.
    await r.advance(20_000);
    expect(r.incidents()).toHaveLength(0);
    const message = await r.incident(/🟠 \*\*WARNING\*\* · allocations of flaky › app failing/, STEP);
    expect(r.current(message.event_id)).toMatch(/task "app" restarted 4 times within 10 min/);
    await r.advance(9 * 60_000);
    expect(r.current(message.event_id)).not.toMatch(/RESOLVED/);
    expect(await resolvesInPlace(r, message, /allocations of flaky › app failing/)).toMatch(
      /no restart within the window/,
    );
  });

  it("a deployment majordome did not start fails, until a later one succeeds", async () => {
    const r = await startAlertRoom(cleanups);
    await r.runJob("web");
    await r.nomad.settle();
    expect(r.nomad.failDeployment("web")).toBe(1);
    await r.nomad.settle();
    const message = await r.incident(/WARNING\*\* · deployment of web failed/, STEP);
    expect(r.current(message.event_id)).toMatch(/version 1 failed: Failed due to unhealthy allocations/);
    const allocations = await r.incident(/allocations of web › web failing/, STEP);
    expect(r.current(allocations.event_id)).toMatch(/does\\-not\\-exist/);

    await r.runJob("web");
    await r.nomad.settle();
    expect(await resolvesInPlace(r, message, /deployment of web failed/)).toMatch(
      /deployment of web version 2 succeeded/,
    );
    await resolvesInPlace(r, allocations, /allocations of web › web failing/);
  });

  it("a node drained, then ineligible, then eligible again", async () => {
    const r = await startAlertRoom(cleanups);
    // A batch allocation is left to finish: the drain goes on while it runs.
    await r.runJob("batchy");
    await r.nomad.settle();
    const [allocation] = await r.allocations("batchy");
    const node = allocation!.NodeName;
    r.nomad.drainNode(node);
    const draining = await r.incident(/🔵 \*\*INFO\*\* · node .* is draining/, STEP);
    expect(r.current(draining.event_id)).toContain(`node ${node.replace("-", "\\-")} is being drained`);
    r.nomad.cancelDrain(node);
    expect(await resolvesInPlace(r, draining, /is draining/)).toMatch(/was canceled/);
    // The drain set the node ineligible, and cancelling it does not undo that.
    const ineligible = await r.incident(/INFO\*\* · node .* is ineligible for placements/, STEP);
    r.nomad.setEligibility(node, true);
    expect(await resolvesInPlace(r, ineligible, /is ineligible/)).toMatch(/is eligible again/);
  });

  it("a health check critical for longer than its hold, and passing again", async () => {
    const r = await startAlertRoom(cleanups, { consul: true });
    r.consul.registerService({
      node: "node-1",
      service: "web",
      checks: [{ checkId: "service:web", name: "web http", status: "passing" }],
    });
    await r.advance(2_000);
    r.consul.setCheck("service:web", "critical", "HTTP GET http://10.0.0.11/: 502 Bad Gateway");
    await r.advance(50_000);
    expect(r.incidents()).toHaveLength(0); // not yet: the hold is 60 s
    const message = await r.incident(
      /CRITICAL\*\* · check service:web \\\(web\\\) on node\\-1 is critical/,
      STEP,
    );
    expect(r.current(message.event_id)).toMatch(/web http is critical: HTTP GET .*502 Bad Gateway/);
    r.consul.setCheck("service:web", "passing");
    await r.advance(50_000);
    expect(r.current(message.event_id)).not.toMatch(/RESOLVED/); // the recovery must hold too
    expect(await resolvesInPlace(r, message, /check service:web/)).toMatch(/web http is passing again/);
  });

  it("the Stolon master changes when its keeper stops, and the keeper is gone until it is back", async () => {
    const r = await startAlertRoom(cleanups, { stolon: true });
    await r.advance(10_000);
    expect(r.incidents()).toHaveLength(0);
    r.stolon.keeperDown("keeper_a");
    const changed = await r.incident(/PostgreSQL master changed in pg/, STEP);
    expect(body(changed)).toMatch(/CRITICAL/);
    expect(body(changed)).toMatch(
      /master changed from keeper keeper\\_a \\\(database 5a363897\\\) to keeper keeper\\_[bc]/,
    );
    expect(await resolvesInPlace(r, changed, /PostgreSQL master changed/)).toMatch(/is healthy/);
    const gone = await r.incident(/CRITICAL\*\* · Stolon keeper keeper\\_a of pg is gone/, STEP);
    expect(r.current(gone.event_id)).toMatch(/🔀 fail over the database/);
    r.stolon.keeperUp("keeper_a");
    expect(await resolvesInPlace(r, gone, /keeper keeper\\_a of pg is gone/)).toMatch(
      /its info key is updated again/,
    );
  });

  it("a backend majordome cannot reach for longer than the threshold, and back", async () => {
    const r = await startAlertRoom(cleanups, { consul: true });
    await r.advance(5_000);
    r.consul.unavailable(true);
    await r.advance(40_000);
    expect(r.incidents()).toHaveLength(0); // a blip is not an incident
    const message = await r.incident(/CRITICAL\*\* · majordome cannot reach consul/, STEP);
    expect(r.current(message.event_id)).toMatch(/Consul has not answered for 1 minute: .*ECONNRESET/);
    r.consul.unavailable(false);
    expect(await resolvesInPlace(r, message, /cannot reach consul/)).toMatch(/Consul answers again after/);
  });
});

describe("majordome's own blind spots", () => {
  it("after Consul was unreachable, the Stolon keepers it could not see are not taken for gone", async () => {
    const r = await startAlertRoom(cleanups, { stolon: true });
    await r.advance(10_000);
    r.consul.unavailable(true);
    // Long enough for the keepers' info sessions to expire in Consul meanwhile.
    const message = await r.incident(/majordome cannot reach consul/, STEP);
    await r.advance(30_000);
    r.consul.unavailable(false);
    await r.until(message.event_id, /RESOLVED/, STEP);
    await r.advance(60_000);
    expect(r.incidents()).toHaveLength(1);
    expect(await r.ask("carol", "!incidents")).toMatch(/No open incidents/);
  });
});

describe("from signals to messages", () => {
  it("groups the allocations of one group into one message with counts", async () => {
    const r = await startAlertRoom(cleanups);
    await r.runJob("fragile", { count: 3 });
    await r.nomad.settle();
    const allocations = await r.allocations("fragile");
    expect(allocations).toHaveLength(3);
    for (const allocation of allocations) r.nomad.failAllocation(allocation.ID);
    await r.nomad.settle();
    const message = await r.incident(/allocations of fragile › app failing/, STEP);
    await r.advance(10_000);
    expect(posted(r, /allocations of fragile/)).toHaveLength(1);
    const text = r.current(message.event_id);
    expect(text).toMatch(/Affected: 6 \(3 alloc-not-restarting, 3 alloc-failed\) · 6 still failing/);
    for (const allocation of allocations) expect(text).toContain(allocation.ID.slice(0, 8));
  });

  it("damps a check flapping faster than its hold: nobody is told", async () => {
    const r = await startAlertRoom(cleanups, { consul: true });
    r.consul.registerService({
      node: "node-1",
      service: "web",
      checks: [{ checkId: "service:web", name: "web http", status: "passing" }],
    });
    await r.advance(2_000);
    for (let flap = 0; flap < 4; flap++) {
      r.consul.setCheck("service:web", "critical", "connection refused");
      await r.advance(20_000);
      r.consul.setCheck("service:web", "passing");
      await r.advance(20_000);
    }
    await r.advance(120_000);
    expect(r.incidents()).toHaveLength(0);
    expect(await r.ask("carol", "!incidents --all")).toMatch(/No open incidents/);
  });

  it("a node down holds its allocations' and checks' alerts: one message, resolved when the node is back", async () => {
    const r = await startAlertRoom(cleanups, { consul: true });
    await r.runJob("fragile", { count: 3 });
    await r.nomad.settle();
    const node = (await r.allocations("fragile"))[0]!.NodeName;
    const onNode = (await r.allocations("fragile")).filter((a) => a.NodeName === node).length;
    r.consul.registerService({
      node,
      service: "fragile",
      checks: [{ checkId: "service:fragile", name: "fragile http", status: "passing" }],
    });
    await r.advance(2_000);

    r.nomad.nodeDown(node);
    // As Consul sees it: the node's agent is gone, its checks turn critical.
    r.consul.setCheck("service:fragile", "critical", "agent unreachable");
    await r.nomad.settle();
    const message = await r.incident(new RegExp(`node ${node.replace("-", "\\\\-")} is down`), STEP);
    await r.advance(90_000); // past the check's hold
    const text = r.current(message.event_id);
    expect(text).toMatch(
      new RegExp(`Affected: ${onNode + 2} \\(1 node-down, ${onNode} alloc-lost, 1 check-critical\\)`),
    );
    expect(r.incidents()).toHaveLength(1);

    r.nomad.nodeUp(node);
    await resolvesInPlace(r, message, /is down/);
    expect(r.incidents()).toHaveLength(1);
  });

  it("allocation failures of a deployment majordome started go to its thread, not to the room", async () => {
    const r = await startAlertRoom(cleanups);
    const { replies } = await r.command("alice", "!deploy broken");
    const progress = replies.find((e) => /Deploying `broken`/.test(body(e)))!;
    expect(progress).toBeDefined();
    await r.until(progress.event_id, /❌ \*\*Deploying `broken`\*\* version 0: failed/, STEP);
    const thread = await r.inThread(progress.event_id, /⚠️ allocations of broken › app failing/, STEP);
    expect(thread).toMatch(/Failed to pull|will not be restarted/);
    await r.inThread(progress.event_id, /⚠️ job broken is dead/, STEP);
    await r.advance(60_000);
    expect(r.incidents()).toHaveLength(0);
    expect(await r.ask("carol", "!incidents")).toMatch(/No open incidents/);
  });
});
