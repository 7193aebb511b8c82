import Consul from "consul";
import { setTimeout as sleep } from "node:timers/promises";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { startConsulDouble, type ConsulDouble } from "../../src/sandbox/consul/index.js";

/**
 * Sessions and locks through the npm client. timeScale 0.04 turns Consul's seconds into tens of
 * milliseconds: a "10s" TTL session is invalidated after 2 × 400 ms, a "15s" lock-delay lasts 600 ms.
 */

const SCALE = 0.04;
const AGENT_NODE = "consul-server-1";

interface KvItem {
  Key: string;
  Value: string | null;
  LockIndex: number;
  Session?: string;
}

let double: ConsulDouble;
let consul: Consul;

beforeEach(async () => {
  double = await startConsulDouble({ timeScale: SCALE });
  const url = new URL(double.url);
  consul = new Consul({ host: url.hostname, port: Number(url.port) });
});

afterEach(async () => {
  consul.destroy();
  await double.close();
});

const get = async (key: string) => (await consul.kv.get(key)) as KvItem | undefined;
const acquire = (key: string, session: string, value = session) =>
  consul.kv.set({ key, value, acquire: session });
const release = (key: string, session: string, value = "") => consul.kv.set({ key, value, release: session });
const newSession = async (opts: Parameters<Consul["session"]["create"]>[0] = {}) =>
  (await consul.session.create(opts)).ID;

async function http(method: string, route: string, body?: string) {
  const res = await fetch(`${double.url}${route}`, { method, ...(body === undefined ? {} : { body }) });
  return { status: res.status, text: await res.text() };
}

describe("locks", () => {
  it("acquire and release: Session and LockIndex follow the holder", async () => {
    const a = await newSession({ name: "a" });
    const b = await newSession({ name: "b" });
    expect(await acquire("service/leader", a)).toBe(true);
    expect(await get("service/leader")).toMatchObject({ Session: a, LockIndex: 1, Value: a });
    // Refused acquisitions and releases are 200 false on the wire, undefined through the client.
    expect(await acquire("service/leader", b)).toBeUndefined();
    expect((await http("PUT", `/v1/kv/service/leader?acquire=${b}`, "b")).text).toBe("false");
    expect(await release("service/leader", b)).toBeUndefined();
    expect(await acquire("service/leader", a)).toBe(true);
    expect((await get("service/leader"))?.LockIndex).toBe(1);

    expect(await release("service/leader", a, "released")).toBe(true);
    const freed = await get("service/leader");
    expect(freed).toMatchObject({ LockIndex: 1, Value: "released" });
    expect(freed?.Session).toBeUndefined();
    // A release applies no lock-delay.
    expect(await acquire("service/leader", b)).toBe(true);
    expect((await get("service/leader"))?.LockIndex).toBe(2);
  });

  it("answers 500 for an unknown session", async () => {
    const wire = await http("PUT", "/v1/kv/k?acquire=nope", "v");
    expect(wire).toMatchObject({ status: 500, text: 'invalid session "nope"' });
  });

  it("keeps a lock for the lock-delay after its session is destroyed", async () => {
    const a = await newSession({ lockdelay: "15s" });
    const b = await newSession();
    await acquire("l", a);
    // The wire says `true`; the client's destroy resolves undefined whatever the body (utils.empty).
    expect(await consul.session.destroy(a)).toBeUndefined();
    expect((await get("l"))?.Session).toBeUndefined();
    expect(await acquire("l", b)).toBeUndefined();
    await sleep(15_000 * SCALE + 50);
    expect(await acquire("l", b)).toBe(true);
  });

  it("takes a numeric LockDelay below 1000 as seconds, and 0 as none", async () => {
    const small = await http("PUT", "/v1/session/create", JSON.stringify({ LockDelay: 5 }));
    const { ID } = JSON.parse(small.text) as { ID: string };
    expect((await consul.session.info(ID)).LockDelay).toBe(5e9);
    const none = await newSession({ lockdelay: "0s" });
    const b = await newSession();
    await acquire("l", none);
    await consul.session.destroy(none);
    expect(await acquire("l", b)).toBe(true);
  });
});

describe("TTL and invalidation", () => {
  it("invalidates a TTL session after twice its TTL, releasing its locks", async () => {
    const id = await newSession({ ttl: "10s", lockdelay: "0s" });
    await acquire("ttl/lock", id, "held");
    await sleep(10_000 * SCALE * 1.5);
    expect((await get("ttl/lock"))?.Session).toBe(id);
    await sleep(10_000 * SCALE + 150);
    expect(await consul.session.info(id)).toBeUndefined();
    expect(await get("ttl/lock")).toMatchObject({ Value: "held", LockIndex: 1 });
    expect((await get("ttl/lock"))?.Session).toBeUndefined();
  });

  it("deletes the locked keys of a Behavior=delete session", async () => {
    const id = await newSession({ ttl: "10s", behavior: "delete" });
    await acquire("ephemeral/info", id);
    await sleep(10_000 * SCALE * 2 + 150);
    expect(await get("ephemeral/info")).toBeUndefined();
  });

  it("renews until destroyed, then answers renew with 404", async () => {
    const id = await newSession({ ttl: "10s" });
    for (let i = 0; i < 3; i++) {
      await sleep(10_000 * SCALE);
      const [renewed] = await consul.session.renew(id);
      expect(renewed?.ID).toBe(id);
    }
    expect((await consul.session.info(id)).ID).toBe(id);
    await consul.session.destroy(id);
    const refused = await consul.session.renew(id).catch((error: unknown) => error);
    expect(refused).toMatchObject({ statusCode: 404 });
    expect(await http("PUT", `/v1/session/renew/${id}`)).toEqual({
      status: 404,
      text: `Session id '${id}' not found`,
    });
    expect(await http("GET", `/v1/session/info/${id}`)).toMatchObject({ status: 200, text: "[]" });
  });

  it("invalidates sessions whose node check goes critical, and refuses new ones meanwhile", async () => {
    const id = await newSession();
    await acquire("node/lock", id);
    double.setCheck("serfHealth", "critical", "Agent not live or unreachable", AGENT_NODE);
    expect(await consul.session.list()).toEqual([]);
    expect((await get("node/lock"))?.Session).toBeUndefined();
    const refused = await http("PUT", "/v1/session/create", "{}");
    expect(refused).toEqual({ status: 500, text: "Check 'serfHealth' is in critical state" });
  });

  it("validates TTL, behavior, node and checks with Consul's messages", async () => {
    const create = (body: object) => http("PUT", "/v1/session/create", JSON.stringify(body));
    expect(await create({ TTL: "5s" })).toEqual({
      status: 500,
      text: "Invalid Session TTL '5000000000', must be between [10s=24h0m0s]",
    });
    expect((await create({ TTL: "soon" })).text).toBe(
      `Session TTL 'soon' invalid: time: invalid duration "soon"`,
    );
    expect((await create({ Behavior: "explode" })).text).toBe("Invalid Behavior setting 'explode'");
    expect((await create({ Node: "ghost" })).text).toBe("Missing node registration");
    expect((await create({ Checks: ["nope"] })).text).toBe("Missing check 'nope' registration");
  });
});

describe("session documents", () => {
  it("lists sessions with Consul's fields and units", async () => {
    const id = await newSession({ name: "lock", ttl: "30s", lockdelay: "10s", behavior: "delete" });
    const [session] = await consul.session.list();
    expect(session).toEqual({
      ID: id,
      Name: "lock",
      Node: AGENT_NODE,
      LockDelay: 10e9,
      Behavior: "delete",
      TTL: "30s",
      NodeChecks: ["serfHealth"],
      ServiceChecks: null,
      CreateIndex: expect.any(Number) as number,
      ModifyIndex: expect.any(Number) as number,
    });
    expect(await consul.session.node(AGENT_NODE)).toHaveLength(1);
  });
});

describe("an injected clock (the sandbox's simulated time)", () => {
  it("expires TTLs and lock-delays by that clock, on the next request", async () => {
    let now = Date.UTC(2026, 0, 1);
    const simulated = await startConsulDouble({ now: () => now });
    const url = new URL(simulated.url);
    const client = new Consul({ host: url.hostname, port: Number(url.port) });
    try {
      const holder = (await client.session.create({ ttl: "10s" })).ID;
      const waiter = (await client.session.create({})).ID;
      await client.kv.set({ key: "sim", value: "x", acquire: holder });
      now += 19_000;
      expect((await client.session.info(holder)).ID).toBe(holder);
      now += 2_000;
      expect(await client.session.info(holder)).toBeUndefined();
      expect(await client.kv.set({ key: "sim", value: "y", acquire: waiter })).toBeUndefined();
      now += 15_000;
      expect(await client.kv.set({ key: "sim", value: "y", acquire: waiter })).toBe(true);
    } finally {
      client.destroy();
      await simulated.close();
    }
  });
});
