import pino from "pino";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { ManualClock } from "../../src/clock.js";
import { startConsulDouble, type ConsulDouble } from "../../src/sandbox/consul/index.js";
import { ConsulStateStore, NotLeaderError } from "../../src/state/consul-store.js";
import { Leadership, type LeadershipOptions, type Role } from "../../src/state/leadership.js";

/**
 * Leader election against the Consul double, both on one ManualClock: the double's TTLs and lock-delays
 * run on it, so time only moves when a test advances it. Network round trips are real (loopback).
 */

const LOCK = "majordome/leader";
const TTL = 10_000; // Consul's minimum
const LOCK_DELAY = 15_000;
const STEP = 250;

let clock: ManualClock;
let double: ConsulDouble;
const started: Leadership[] = [];
const stores: ConsulStateStore[] = [];
const silent = pino({ level: "silent" });

beforeEach(async () => {
  clock = new ManualClock();
  double = await startConsulDouble({ now: () => clock.now() });
});

afterEach(async () => {
  for (const store of stores.splice(0)) await store.close();
  for (const leadership of started.splice(0)) await leadership.stop();
  await double.close();
});

function instance(name: string, opts: Partial<LeadershipOptions> = {}): Leadership & { roles: Role[] } {
  const leadership = new Leadership({
    consul: { address: double.url },
    clock,
    logger: silent,
    lockKey: LOCK,
    instanceId: name,
    sessionTtlMs: TTL,
    lockDelayMs: LOCK_DELAY,
    retryMs: 500,
    minLoopMs: 200,
    watchWaitMs: 30_000,
    ...opts,
  });
  const roles: Role[] = [];
  leadership.onChange((role) => roles.push(role));
  started.push(leadership);
  leadership.start();
  return Object.assign(leadership, { roles });
}

const realPause = () => new Promise((resolve) => setTimeout(resolve, 3));

/** Advances the clock in small steps, letting real I/O run between them, until `done()`; returns the clock time it took. */
async function until(
  done: () => boolean,
  what: string,
  maxMs = 120_000,
  check?: () => void,
): Promise<number> {
  const from = clock.now();
  for (;;) {
    await realPause();
    check?.();
    if (done()) return clock.now() - from;
    if (clock.now() - from > maxMs) throw new Error(`not within ${maxMs} ms of clock time: ${what}`);
    await clock.advance(STEP);
  }
}

/** Waits in real time (a few ms at a time) without moving the clock: for what must happen "at once". */
async function atOnce(done: () => boolean, what: string): Promise<void> {
  for (let waited = 0; !done(); waited += 3) {
    if (waited > 5_000) throw new Error(`not without the clock moving: ${what}`);
    await realPause();
  }
}

/** Lets `ms` of clock time pass, step by step. */
async function pass(ms: number, check?: () => void): Promise<void> {
  const end = clock.now() + ms;
  while (clock.now() < end) {
    await clock.advance(STEP);
    await realPause();
    check?.();
  }
}

async function http(method: string, route: string, body?: string) {
  const res = await fetch(`${double.url}${route}`, { method, ...(body === undefined ? {} : { body }) });
  return { status: res.status, text: await res.text() };
}

async function lockEntry(): Promise<{ Session?: string; Value: string | null } | undefined> {
  const res = await http("GET", `/v1/kv/${LOCK}`);
  return res.status === 404
    ? undefined
    : (JSON.parse(res.text) as Array<{ Session?: string; Value: string }>)[0];
}

async function sessionNames(): Promise<string[]> {
  return (JSON.parse((await http("GET", "/v1/session/list")).text) as Array<{ Name: string }>).map(
    (s) => s.Name,
  );
}

function guardedStore(guard: { lockKey: string; session: () => string | undefined }): ConsulStateStore {
  const store = new ConsulStateStore({
    consul: { address: double.url },
    prefix: "majordome/state/",
    clock,
    logger: silent,
    guard,
  });
  stores.push(store);
  return store;
}

const neverTwoLeaders = (a: Leadership, b: Leadership) => () => {
  if (a.isLeader() && b.isLeader()) throw new Error("two leaders at once");
};

/** Starts a and b and waits until one leads; answers [leader, standby]. */
async function elect(): Promise<[Leadership & { roles: Role[] }, Leadership & { roles: Role[] }]> {
  const a = instance("a");
  const b = instance("b");
  await until(() => a.isLeader() || b.isLeader(), "someone leads", 10_000, neverTwoLeaders(a, b));
  // Let the standby settle into its blocking query and the leader into its watch.
  await pass(1_000, neverTwoLeaders(a, b));
  return a.isLeader() ? [a, b] : [b, a];
}

describe("election", () => {
  it("makes exactly one of two instances the leader, and keeps it through renewals", async () => {
    const [leader, standby] = await elect();
    await pass(4 * TTL, neverTwoLeaders(leader, standby));
    expect(leader.isLeader()).toBe(true);
    expect(standby.isLeader()).toBe(false);
    expect(leader.roles).toEqual(["leader"]);
    expect(standby.roles).toEqual([]);
    expect(standby.sessionId()).toBeUndefined();
    const entry = await lockEntry();
    expect(entry?.Session).toBe(leader.sessionId());
    const value = JSON.parse(Buffer.from(entry?.Value ?? "", "base64").toString("utf8")) as Record<
      string,
      string
    >;
    expect(value).toMatchObject({ instance: leader === started[0] ? "a" : "b" });
    expect(new Date(value.since ?? "").getTime()).toBeLessThanOrEqual(clock.now());
    expect((await sessionNames()).sort()).toEqual(["majordome a", "majordome b"]);
  });

  it("hands over on release without waiting for the lock-delay, and destroys the session", async () => {
    const [leader, standby] = await elect();
    const session = leader.sessionId();
    await leader.release();
    expect(leader.roles).toEqual(["leader", "standby"]);
    const took = await until(() => standby.isLeader(), "the standby takes over", LOCK_DELAY);
    expect(took).toBeLessThan(LOCK_DELAY);
    expect((await lockEntry())?.Session).toBe(standby.sessionId());
    expect(JSON.parse((await http("GET", `/v1/session/info/${session}`)).text)).toEqual([]);
  });
});

describe("losing the session", () => {
  it("steps down at once when the session is destroyed; the other takes over after the lock-delay", async () => {
    const [leader, standby] = await elect();
    await http("PUT", `/v1/session/destroy/${leader.sessionId()}`);
    await atOnce(() => !leader.isLeader(), "the leader steps down");
    expect(leader.roles).toEqual(["leader", "standby"]);
    const took = await until(
      () => leader.isLeader() || standby.isLeader(),
      "a new leader",
      4 * LOCK_DELAY,
      neverTwoLeaders(leader, standby),
    );
    expect(took).toBeGreaterThanOrEqual(LOCK_DELAY - 2 * STEP);
    const next = leader.isLeader() ? leader : standby;
    expect((await lockEntry())?.Session).toBe(next.sessionId());
  });

  it("steps down on a renew answering 404 even when nothing watches the lock key", async () => {
    // A long pause between blocking queries: after taking the lock, the leader does not watch it.
    const leader = instance("solo", { minLoopMs: 3600_000 });
    await until(() => leader.isLeader(), "leader", 5_000);
    await pass(STEP);
    await http("PUT", `/v1/session/destroy/${leader.sessionId()}`);
    await pass(TTL / 2 - 4 * STEP);
    expect(leader.isLeader()).toBe(true);
    const noticed = await until(() => !leader.isLeader(), "the renew finds the session gone", TTL);
    // Without the 404, only the deadline (a TTL after the last renew, about TTL - STEP from here) would.
    expect(noticed).toBeLessThan(TTL / 2);
    expect(leader.roles).toEqual(["leader", "standby"]);
  });

  it("a standby whose session vanished opens a new one", async () => {
    const [, standby] = await elect();
    const sessions = JSON.parse((await http("GET", "/v1/session/list")).text) as Array<{
      ID: string;
      Name: string;
    }>;
    const standbyName = `majordome ${standby === started[0] ? "a" : "b"}`;
    const old = sessions.find((s) => s.Name === standbyName)?.ID;
    await http("PUT", `/v1/session/destroy/${old}`);
    await pass(TTL);
    const after = JSON.parse((await http("GET", "/v1/session/list")).text) as Array<{
      ID: string;
      Name: string;
    }>;
    const renewed = after.filter((s) => s.Name === standbyName);
    expect(renewed).toHaveLength(1);
    expect(renewed[0]?.ID).not.toBe(old);
  });

  it("steps down after the TTL when Consul stops answering, and competes again once it is back", async () => {
    const [leader, standby] = await elect();
    const port = Number(new URL(double.url).port);
    await double.close();
    expect(leader.isLeader()).toBe(true);
    const noticed = await until(() => !leader.isLeader(), "the leader steps down", 2 * TTL);
    // The last successful renew was at most TTL/2 before Consul went away.
    expect(noticed).toBeGreaterThanOrEqual(TTL / 2 - STEP);
    expect(noticed).toBeLessThanOrEqual(TTL + STEP);
    expect(leader.roles).toEqual(["leader", "standby"]);
    await expect(leader.confirm()).rejects.toBeInstanceOf(NotLeaderError);

    // Consul comes back (empty: a fresh double on the same port); one of the two leads again.
    double = await startConsulDouble({ port, now: () => clock.now() });
    await until(
      () => leader.isLeader() || standby.isLeader(),
      "a leader again",
      60_000,
      neverTwoLeaders(leader, standby),
    );
    const next = leader.isLeader() ? leader : standby;
    expect((await lockEntry())?.Session).toBe(next.sessionId());
  });

  it("steps down after the TTL while Consul resets every connection", async () => {
    const [leader] = await elect();
    double.unavailable(true);
    const noticed = await until(() => !leader.isLeader(), "the leader steps down", 2 * TTL);
    expect(noticed).toBeLessThanOrEqual(TTL + STEP);
    double.unavailable(false);
  });

  it("a stopped leader (as after a crash) keeps the lock until Consul invalidates its session", async () => {
    const [leader, standby] = await elect();
    await leader.stop();
    expect(leader.roles).toEqual(["leader", "standby"]);
    const took = await until(() => standby.isLeader(), "the standby takes over", 2 * TTL + 3 * LOCK_DELAY);
    // Consul waits 2 × TTL after the last renew (at most TTL/2 before the stop), then the lock-delay.
    expect(took).toBeGreaterThanOrEqual(1.5 * TTL + LOCK_DELAY - STEP);
  });
});

describe("confirm and guarded writes", () => {
  it("confirms the leader, refuses the standby, and refuses once the lock is lost", async () => {
    const [leader, standby] = await elect();
    await leader.confirm();
    await expect(standby.confirm()).rejects.toBeInstanceOf(NotLeaderError);
    await http("PUT", `/v1/session/destroy/${leader.sessionId()}`);
    await expect(leader.confirm()).rejects.toBeInstanceOf(NotLeaderError);
    expect(leader.isLeader()).toBe(false);
  });

  it("refuses a deposed leader's writes, including one that has not noticed yet", async () => {
    const [leader, standby] = await elect();
    const leaderStore = guardedStore(leader.guard());
    const oldSession = leader.sessionId();
    // A leader cut off from the news: its guard still answers the old session.
    const unaware = guardedStore({ lockKey: LOCK, session: () => oldSession });
    await leaderStore.set("actions/1", "step 1");
    await unaware.set("actions/1", "step 1 again");

    await http("PUT", `/v1/session/destroy/${oldSession}`);
    await until(() => !leader.isLeader(), "the leader steps down", TTL);
    await expect(leaderStore.set("actions/1", "step 2")).rejects.toBeInstanceOf(NotLeaderError);
    await expect(unaware.set("actions/1", "step 2")).rejects.toBeInstanceOf(NotLeaderError);

    await until(() => leader.isLeader() || standby.isLeader(), "a new leader", 4 * LOCK_DELAY);
    const next = leader.isLeader() ? leader : standby;
    const nextStore = guardedStore(next.guard());
    await expect(unaware.set("actions/1", "step 2")).rejects.toBeInstanceOf(NotLeaderError);
    await expect(unaware.appendAudit({ at: clock.now(), kind: "k" })).rejects.toBeInstanceOf(NotLeaderError);
    expect((await nextStore.get("actions/1"))?.value).toBe("step 1 again");
    await nextStore.set("actions/1", "step 2 by the new leader");
    expect((await nextStore.get("actions/1"))?.value).toBe("step 2 by the new leader");
  });
});
