import pino from "pino";
import { Writable } from "node:stream";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { ManualClock } from "../../src/clock.js";
import { ConfigError, parseConfig } from "../../src/config/load.js";
import { startConsulDouble, type ConsulDouble } from "../../src/sandbox/consul/index.js";
import {
  ConsulStateStore,
  NotLeaderError,
  StateValueTooLargeError,
  type ConsulStateStoreOptions,
} from "../../src/state/consul-store.js";

/** What only the Consul backend does: layout under the prefix, size limit, audit pruning, leader-guarded writes. */

const PREFIX = "majordome/state/";
const LOCK = "majordome/leader";
const MINUTE = 60_000;

let clock: ManualClock;
let double: ConsulDouble;
let logLines: Array<Record<string, unknown>>;
const stores: ConsulStateStore[] = [];

beforeEach(async () => {
  clock = new ManualClock();
  double = await startConsulDouble({ now: () => clock.now() });
  logLines = [];
});

afterEach(async () => {
  for (const store of stores.splice(0)) await store.close();
  await double.close();
});

function open(opts: Partial<ConsulStateStoreOptions> = {}): ConsulStateStore {
  const sink = new Writable({
    write(chunk: Buffer, _encoding, done) {
      for (const line of chunk.toString("utf8").split("\n").filter(Boolean)) logLines.push(JSON.parse(line));
      done();
    },
  });
  const store = new ConsulStateStore({
    consul: { address: double.url },
    prefix: PREFIX,
    clock,
    logger: pino({ level: "debug" }, sink),
    ...opts,
  });
  stores.push(store);
  return store;
}

async function http(method: string, route: string, body?: string) {
  const res = await fetch(`${double.url}${route}`, { method, ...(body === undefined ? {} : { body }) });
  return { status: res.status, text: await res.text() };
}

async function newSession(): Promise<string> {
  return (JSON.parse((await http("PUT", "/v1/session/create", "{}")).text) as { ID: string }).ID;
}

async function acquire(session: string): Promise<boolean> {
  return (await http("PUT", `/v1/kv/${LOCK}?acquire=${session}`, "leader")).text === "true";
}

async function auditKeys(): Promise<string[]> {
  const res = await http("GET", `/v1/kv/${PREFIX}audit/?keys`);
  return res.status === 404 ? [] : (JSON.parse(res.text) as string[]);
}

describe("layout", () => {
  it("keeps values as JSON under <prefix>kv/ and audit entries under <prefix>audit/", async () => {
    const store = open();
    await store.set("approvals/r1", { state: "pending" });
    await store.appendAudit({ at: clock.now(), kind: "command", command: "ping" });
    expect(JSON.parse(double.kv(`${PREFIX}kv/approvals/r1`) ?? "")).toEqual({ state: "pending" });
    const [audit] = await auditKeys();
    expect(audit).toMatch(new RegExp(`^${PREFIX}audit/0*${clock.now()}-`));
    expect(JSON.parse(double.kv(audit ?? "") ?? "")).toMatchObject({ kind: "command", command: "ping" });
  });

  it("uses the key's ModifyIndex as its version", async () => {
    const store = open();
    await store.set("k", 1);
    const wire = JSON.parse((await http("GET", `/v1/kv/${PREFIX}kv/k`)).text) as Array<{
      ModifyIndex: number;
    }>;
    expect((await store.get("k"))?.version).toBe(wire[0]?.ModifyIndex);
  });

  it("refuses keys that would not stay where they belong", async () => {
    const store = open();
    for (const key of ["", "/abs", "a//b", "../up", "a/./b", "a/..", "tab\there"]) {
      await expect(store.set(key, 1), key).rejects.toThrow(/cannot be a state key/);
    }
    expect(double.kv(`${PREFIX}up`)).toBeUndefined();
  });

  it("refuses a prefix that does not end with /", () => {
    expect(() => open({ prefix: "majordome/state" })).toThrow(/must end with/);
  });
});

describe("size limit", () => {
  it("refuses a value over the maximum, naming the key and not the value, and writes nothing", async () => {
    const store = open({ maxValueBytes: 1024 });
    const secretish = "v".repeat(1100);
    const failure = await store.set("outbox/big", { body: secretish }).catch((error: Error) => error);
    expect(failure).toBeInstanceOf(StateValueTooLargeError);
    expect((failure as Error).message).toMatch(/outbox\/big/);
    expect((failure as Error).message).toMatch(/1024-byte limit/);
    expect((failure as Error).message).not.toContain("vvvv");
    expect(double.kv(`${PREFIX}kv/outbox/big`)).toBeUndefined();
    await expect(store.cas("outbox/big", { body: secretish }, 0)).rejects.toBeInstanceOf(
      StateValueTooLargeError,
    );
    await expect(store.appendAudit({ at: 0, kind: "k", args: secretish })).rejects.toBeInstanceOf(
      StateValueTooLargeError,
    );
  });

  it("accepts a value of exactly the maximum, counted in UTF-8 bytes", async () => {
    const store = open({ maxValueBytes: 1024 });
    const exact = "é".repeat((1024 - 2) / 2); // JSON quotes + two bytes per é
    await store.set("exact", exact);
    expect((await store.get("exact"))?.value).toBe(exact);
    await expect(store.set("over", exact + "a")).rejects.toBeInstanceOf(StateValueTooLargeError);
  });

  it("defaults to 256 KiB, which a guarded write's transaction still carries", async () => {
    const session = await newSession();
    expect(await acquire(session)).toBe(true);
    const store = open({ guard: { lockKey: LOCK, session: () => session } });
    const nearly = "x".repeat(256 * 1024 - 2);
    await store.set("big", nearly);
    expect((await store.get("big"))?.value).toBe(nearly);
    await expect(store.set("big", nearly + "x")).rejects.toBeInstanceOf(StateValueTooLargeError);
  });

  it("writes many keys in guarded transactions of at most 64 operations and 400 KB", async () => {
    const session = await newSession();
    expect(await acquire(session)).toBe(true);
    const store = open({ guard: { lockKey: LOCK, session: () => session } });
    const big = "y".repeat(150 * 1024);
    await store.setMany([
      ...Array.from({ length: 130 }, (_, n) => [`many/${n}`, n] as const),
      ["many/big1", big],
      ["many/big2", big],
      ["many/big3", big],
    ]);
    expect(await store.list("many/")).toHaveLength(133);
    expect((await store.get("many/big3"))?.value).toBe(big);
  });
});

describe("audit log", () => {
  it("mirrors every entry as a log line", async () => {
    const store = open();
    await store.appendAudit({
      at: clock.now(),
      kind: "command",
      actor: "@alice:x",
      command: "deploy",
      result: "ok",
    });
    const line = logLines.find((l) => l.msg === "audit: command");
    expect(line?.audit).toEqual({
      at: clock.now(),
      kind: "command",
      actor: "@alice:x",
      command: "deploy",
      result: "ok",
    });
  });

  it("prunes entries older than the maximum age on append, at most once per interval", async () => {
    const store = open({ auditMaxAgeMs: 60 * MINUTE, auditPruneIntervalMs: 10 * MINUTE });
    const append = (name: string) => store.appendAudit({ at: clock.now(), kind: "k", name });
    const names = async () => (await store.readAudit(100)).map((e) => e.name);

    await append("a"); // t = 0, prunes (nothing old)
    await clock.advance(55 * MINUTE);
    await append("b"); // t = 55, prunes: a is 55 min old, kept
    expect(await names()).toEqual(["a", "b"]);
    await clock.advance(6 * MINUTE);
    await append("c"); // t = 61: a is past the age, but the last pruning was 6 min ago
    expect(await names()).toEqual(["a", "b", "c"]);
    await clock.advance(5 * MINUTE);
    await append("d"); // t = 66: prunes a; b (11 min) stays
    expect(await names()).toEqual(["b", "c", "d"]);
    expect(await auditKeys()).toHaveLength(3);
  });

  it("prunes more old entries than one transaction holds, under a guard too", async () => {
    const session = await newSession();
    await acquire(session);
    const store = open({
      auditMaxAgeMs: 90 * 24 * 60 * MINUTE,
      guard: { lockKey: LOCK, session: () => session },
    });
    for (let i = 0; i < 130; i++) await store.appendAudit({ at: clock.now(), kind: "k", i });
    await clock.advance(91 * 24 * 60 * MINUTE);
    await store.appendAudit({ at: clock.now(), kind: "k", i: 130 });
    expect((await store.readAudit(1000)).map((e) => e.i)).toEqual([130]);
  });
});

describe("leader-guarded writes", () => {
  async function guardedStore() {
    const session = await newSession();
    expect(await acquire(session)).toBe(true);
    let current: string | undefined = session;
    const store = open({ guard: { lockKey: LOCK, session: () => current } });
    return { store, session, demote: () => (current = undefined) };
  }

  it("write while the session holds the lock; a stale cas is still just false", async () => {
    const { store } = await guardedStore();
    await store.set("a", 1);
    expect(await store.cas("b", 2, 0)).toBe(true);
    expect(await store.cas("b", 3, 0)).toBe(false);
    const b = await store.get<number>("b");
    expect(await store.cas("b", 4, (b?.version ?? 0) + 99)).toBe(false);
    expect(await store.cas("b", 4, b?.version ?? 0)).toBe(true);
    await store.delete("a");
    await store.appendAudit({ at: clock.now(), kind: "k" });
    expect(await store.get("a")).toBeUndefined();
    expect((await store.get("b"))?.value).toBe(4);
    expect(await store.readAudit(5)).toHaveLength(1);
  });

  it("are refused by Consul once the session is destroyed", async () => {
    const { store, session } = await guardedStore();
    await store.set("k", "before");
    await http("PUT", `/v1/session/destroy/${session}`);
    await expect(store.set("k", "after")).rejects.toBeInstanceOf(NotLeaderError);
    await expect(store.setMany([["k", "after"]])).rejects.toBeInstanceOf(NotLeaderError);
    await expect(store.cas("new", 1, 0)).rejects.toBeInstanceOf(NotLeaderError);
    await expect(store.delete("k")).rejects.toBeInstanceOf(NotLeaderError);
    await expect(store.appendAudit({ at: clock.now(), kind: "k" })).rejects.toBeInstanceOf(NotLeaderError);
    expect(JSON.parse(double.kv(`${PREFIX}kv/k`) ?? "")).toBe("before");
    expect(double.kv(`${PREFIX}kv/new`)).toBeUndefined();
    expect(await auditKeys()).toEqual([]);
  });

  it("are refused when another session has taken the lock", async () => {
    const { store, session } = await guardedStore();
    await http("PUT", `/v1/kv/${LOCK}?release=${session}`, "");
    const other = await newSession();
    expect(await acquire(other)).toBe(true);
    const failure = await store.set("k", 1).catch((error: Error) => error);
    expect(failure).toBeInstanceOf(NotLeaderError);
    expect((failure as Error).message).toMatch(/majordome\/leader/);
    expect(double.kv(`${PREFIX}kv/k`)).toBeUndefined();
  });

  it("are refused without asking Consul when the guard says this instance is not the leader", async () => {
    const { store, demote } = await guardedStore();
    demote();
    await expect(store.set("k", 1)).rejects.toThrow(/not the leader/);
    expect(double.kv(`${PREFIX}kv/k`)).toBeUndefined();
  });

  it("never guard reads", async () => {
    const { store, demote } = await guardedStore();
    await store.set("k", 1);
    demote();
    expect((await store.get("k"))?.value).toBe(1);
    expect(await store.list("")).toHaveLength(1);
  });
});

describe("health and failures", () => {
  it("is unhealthy while Consul is unreachable, healthy again after", async () => {
    const store = open();
    expect(await store.healthy()).toBe(true);
    double.unavailable(true);
    expect(await store.healthy()).toBe(false);
    double.unavailable(false);
    expect(await store.healthy()).toBe(true);
  });

  it("says which key failed, and never the token or the value", async () => {
    await double.close();
    double = await startConsulDouble({
      now: () => clock.now(),
      tokens: { "tok-s3cr3t": { policy: "write" } },
    });
    const store = open({ consul: { address: double.url, token: "tok-s3cr3t" } });
    await store.set("ok", 1);
    double.unavailable(true);
    const failure = (await store.set("jobs/web", { password: "hunter2" }).catch((e: Error) => e)) as Error;
    expect(failure.message).toMatch(/jobs\/web/);
    expect(failure.message).not.toMatch(/tok-s3cr3t|hunter2/);
    const wrongToken = open({ consul: { address: double.url, token: "nope" } });
    double.unavailable(false);
    const denied = (await wrongToken.set("jobs/web", 1).catch((e: Error) => e)) as Error;
    expect(denied.message).toMatch(/403/);
  });
});

describe("state configuration", () => {
  const base = `
matrix:
  homeserver_url: https://matrix.example.org
  access_token: t
  user_domain: example.org
  command_rooms: ["!ops:example.org"]
consul:
  address: http://127.0.0.1:8500
`;
  const problems = (text: string): string[] => {
    try {
      parseConfig(text, { env: {} });
      return [];
    } catch (error) {
      if (error instanceof ConfigError) return error.problems;
      throw error;
    }
  };

  it("has production defaults, the leader lock on only with the consul backend", () => {
    const file = parseConfig(base).state;
    expect(file).toMatchObject({
      consul_prefix: "majordome/state/",
      consul_max_value_bytes: 256 * 1024,
      audit_max_age: 90 * 24 * 3600_000,
      leader: { enabled: false, lock_key: "majordome/leader", session_ttl: 15_000, lock_delay: 15_000 },
    });
    expect(parseConfig(base + "state: { backend: consul }").state.leader.enabled).toBe(true);
    const forced = parseConfig(
      base + "state: { backend: consul, leader: { enabled: false, session_ttl: 20s } }",
    );
    expect(forced.state.leader).toMatchObject({ enabled: false, session_ttl: 20_000 });
  });

  it("refuses what Consul would refuse", () => {
    expect(problems(base + "state: { leader: { session_ttl: 5s } }")).toEqual([
      "state.leader.session_ttl: Consul accepts a session TTL from 10s to 24h",
    ]);
    expect(problems(base + "state: { leader: { lock_delay: 2m } }")).toEqual([
      "state.leader.lock_delay: Consul caps the lock delay at 60s",
    ]);
    expect(problems(base + "state: { consul_prefix: majordome/state }")[0]).toMatch(/^state.consul_prefix: /);
    expect(problems(base + "state: { leader: { lock_key: ../leader } }")[0]).toMatch(
      /^state.leader.lock_key: /,
    );
    expect(problems(base + "state: { consul_max_value_bytes: 1000000 }")[0]).toMatch(
      /^state.consul_max_value_bytes: /,
    );
  });
});
