import Consul from "consul";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { startConsulDouble, type ConsulDouble } from "../../src/sandbox/consul/index.js";

/** ACLs: tokens from X-Consul-Token (what the client sends) or ?token=, refusals as 403 text. */

let double: ConsulDouble;
const clients: Consul[] = [];

beforeEach(async () => {
  double = await startConsulDouble({
    tokens: {
      "admin-secret": { policy: "write" },
      "reader-secret": { policy: "read" },
      "stolon-secret": { policy: "write", prefixes: ["stolon/"] },
    },
  });
  double.putKv("stolon/cluster/pg/clusterdata", "{}");
  double.putKv("majordome/state", "{}");
});

afterEach(async () => {
  clients.splice(0).forEach((client) => client.destroy());
  await double.close();
});

function client(token?: string): Consul {
  const url = new URL(double.url);
  const consul = new Consul({
    host: url.hostname,
    port: Number(url.port),
    ...(token ? { defaults: { token } } : {}),
  });
  clients.push(consul);
  return consul;
}

async function http(method: string, route: string, init: { token?: string; body?: string } = {}) {
  const headers: Record<string, string> = init.token ? { "X-Consul-Token": init.token } : {};
  const res = await fetch(`${double.url}${route}`, {
    method,
    headers,
    ...(init.body === undefined ? {} : { body: init.body }),
  });
  return { status: res.status, headers: res.headers, text: await res.text() };
}

const rejection = (promise: Promise<unknown>): Promise<unknown> =>
  promise.then(
    () => "resolved",
    (error: unknown) => error,
  );

describe("ACLs", () => {
  it("refuses a request without a token (anonymous) and an unknown token", async () => {
    expect(await rejection(client().kv.get("majordome/state"))).toMatchObject({ statusCode: 403 });
    const anonymous = await http("GET", "/v1/kv/majordome/state");
    expect(anonymous.status).toBe(403);
    expect(anonymous.text).toBe(
      `Permission denied: anonymous token lacks permission 'key:read' on "majordome/state". ` +
        "The anonymous token is used implicitly when a request does not specify a token.",
    );
    // Consul would filter lists and transactions down to nothing for the anonymous token; the
    // double refuses them, so that a forgotten token fails loudly.
    expect((await http("GET", "/v1/kv/?recurse")).status).toBe(403);
    expect((await http("GET", "/v1/kv/?keys")).status).toBe(403);
    expect((await http("PUT", "/v1/txn", { body: '[{"KV":{"Verb":"get","Key":"x"}}]' })).status).toBe(403);
    expect(await http("GET", "/v1/kv/majordome/state", { token: "guess" })).toMatchObject({
      status: 403,
      text: "ACL not found",
    });
    expect(await rejection(client("guess").catalog.services())).toMatchObject({
      statusCode: 403,
      message: "ACL not found",
    });
  });

  it("lets a read token read but not write", async () => {
    const reader = client("reader-secret");
    expect(await reader.kv.get("majordome/state")).toMatchObject({ Value: "{}" });
    expect(await rejection(reader.kv.set("majordome/state", "x"))).toMatchObject({ statusCode: 403 });
    const write = await http("PUT", "/v1/kv/majordome/state", { token: "reader-secret", body: "x" });
    expect(write.text).toMatch(
      /^Permission denied: token with AccessorID '[0-9a-f-]{36}' lacks permission 'key:write' on "majordome\/state"$/,
    );
    expect(await rejection(reader.session.create({}))).toMatchObject({ statusCode: 403 });
    expect(double.kv("majordome/state")).toBe("{}");
  });

  it("takes the token from ?token= too, and lets a write token do everything", async () => {
    expect((await http("PUT", "/v1/kv/anything?token=admin-secret", { body: "1" })).text).toBe("true");
    const admin = client("admin-secret");
    const { ID } = await admin.session.create({});
    expect(await admin.kv.set({ key: "anything", value: "2", acquire: ID })).toBe(true);
  });

  it("keeps a prefix token within its prefix: refused outside, filtered on lists", async () => {
    const stolon = client("stolon-secret");
    expect(await stolon.kv.set("stolon/cluster/pg/clusterdata", "{}")).toBe(true);
    expect(await rejection(stolon.kv.set("majordome/state", "x"))).toMatchObject({ statusCode: 403 });
    expect(await rejection(stolon.kv.get("majordome/state"))).toMatchObject({ statusCode: 403 });

    const all = await http("GET", "/v1/kv/?recurse", { token: "stolon-secret" });
    expect((JSON.parse(all.text) as { Key: string }[]).map((e) => e.Key)).toEqual([
      "stolon/cluster/pg/clusterdata",
    ]);
    expect(all.headers.get("x-consul-results-filtered-by-acls")).toBe("true");
    expect(await stolon.kv.keys("")).toEqual(["stolon/cluster/pg/clusterdata"]);
    expect(await rejection(stolon.kv.del({ key: "", recurse: true }))).toMatchObject({ statusCode: 403 });

    const txn = await http("PUT", "/v1/txn", {
      token: "stolon-secret",
      body: JSON.stringify([
        { KV: { Verb: "set", Key: "stolon/x", Value: null } },
        { KV: { Verb: "delete", Key: "majordome/state" } },
      ]),
    });
    expect(txn.status).toBe(409);
    const body = JSON.parse(txn.text) as { Errors: { OpIndex: number; What: string }[] };
    expect(body.Errors).toHaveLength(1);
    expect(body.Errors[0]?.OpIndex).toBe(1);
    expect(body.Errors[0]?.What).toMatch(/^Permission denied: .* 'key:write' on "majordome\/state"$/);
    expect(double.kv("stolon/x")).toBeUndefined();
  });

  it("serves /v1/status/leader without a token", async () => {
    expect(await client().status.leader()).toBe("127.0.0.1:8300");
  });
});
