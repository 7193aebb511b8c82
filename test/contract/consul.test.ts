import Consul from "consul";
import { readdirSync } from "node:fs";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startConsulDouble, type ConsulDouble } from "../../src/sandbox/consul/index.js";
import { readReference, referenceDir, shapeProblems, type ShapeOptions } from "../support/reference.js";

/**
 * Contract tests against ../shared/reference/consul/samples (Consul's API docs and node-consul's
 * README): the double is brought into the state each sample shows, and its raw answer must carry
 * every field of the sample with the same JSON type. Every sample file must be covered here.
 *
 * Known differences, each with its reason in `absentOk`:
 * - `Namespace` is an Enterprise field; the community edition (what the collective runs) leaves it out.
 * - Service tagged addresses: Go's structs.ServiceAddress has no json tags, so Consul sends
 *   `Address`/`Port`; the docs' examples show `address`/`port`.
 */

const dir = referenceDir();
const sample = (name: string): unknown => readReference("consul", "samples", name);

const ENTERPRISE = "Enterprise-only field: Consul CE does not send it";
const GO_CASE = "structs.ServiceAddress has no json tags: Consul sends Address/Port, the docs show lowercase";

let double: ConsulDouble;
let consul: Consul;

interface Answer {
  status: number;
  headers: Headers;
  body: unknown;
}

async function call(method: string, route: string, body?: unknown): Promise<Answer> {
  const res = await fetch(`${double.url}${route}`, {
    method,
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  const text = await res.text();
  return {
    status: res.status,
    headers: res.headers,
    body: text === "" ? undefined : (JSON.parse(text) as unknown),
  };
}

/** Reads carry Consul's query metadata. */
function expectQueryMeta(answer: Answer): void {
  expect(Number(answer.headers.get("x-consul-index"))).toBeGreaterThan(0);
  expect(answer.headers.get("x-consul-knownleader")).toBe("true");
  expect(answer.headers.get("x-consul-lastcontact")).toBe("0");
}

const taggedAddressPaths = (base: string): Record<string, string> =>
  Object.fromEntries(
    ["lan", "wan"].flatMap((tag) => ["address", "port"].map((key) => [`${base}.${tag}.${key}`, GO_CASE])),
  );

/** How to bring the double to each sample's state and fetch the answer to compare, by file name. */
const cases: Record<string, { answer: () => Promise<Answer>; opts?: ShapeOptions; read?: boolean }> = {
  "kv-get.response.json": {
    read: true,
    answer: async () => {
      const { ID } = await consul.session.create({ name: "zip-lock" });
      await consul.kv.set({ key: "zip", value: "test", acquire: ID });
      return call("GET", "/v1/kv/zip");
    },
  },
  "kv-get-keys.response.json": {
    read: true,
    answer: async () => {
      for (const key of ["web/bar", "web/foo", "web/subdir/a"]) await consul.kv.set(key, "x");
      return call("GET", "/v1/kv/web/?keys&separator=/");
    },
  },
  "session-create.response.json": {
    answer: () => call("PUT", "/v1/session/create", sample("session-create.request.json")),
  },
  "session-info.response.json": {
    read: true,
    answer: async () => {
      const { ID } = await consul.session.create({ name: "test-session", ttl: "30s" });
      return call("GET", `/v1/session/info/${ID}`);
    },
  },
  "health-state.response.json": {
    read: true,
    opts: { absentOk: { "[].Namespace": ENTERPRISE } },
    answer: () => call("GET", "/v1/health/state/passing"),
  },
  "health-service.response.json": {
    read: true,
    opts: {
      maps: ["[].Node.Meta", "[].Service.Meta"],
      absentOk: {
        "[].Service.Namespace": ENTERPRISE,
        "[].Checks[].Namespace": ENTERPRISE,
        // Consul lists the node's checks (serfHealth, no tags) before the service's; the docs show
        // the service check first. The service check is compared on its own below.
        "[].Checks[].ServiceTags": "first check is the node's serfHealth",
        ...taggedAddressPaths("[].Service.TaggedAddresses"),
      },
    },
    answer: () => call("GET", "/v1/health/service/redis"),
  },
  "catalog-services.response.json": {
    read: true,
    answer: () => call("GET", "/v1/catalog/services"),
  },
  "catalog-service.response.json": {
    read: true,
    opts: {
      maps: ["[].NodeMeta", "[].ServiceMeta"],
      absentOk: { "[].Namespace": ENTERPRISE, ...taggedAddressPaths("[].ServiceTaggedAddresses") },
    },
    answer: () => call("GET", "/v1/catalog/service/web"),
  },
};

/** The catalog the health and catalog samples show. */
function seedCatalog(): void {
  double.registerService({
    node: "foobar",
    address: "10.1.10.12",
    service: "redis",
    id: "redis",
    serviceAddress: "10.1.10.12",
    port: 8000,
    tags: ["primary"],
    meta: { redis_version: "4.0" },
    taggedAddresses: { lan: { address: "10.1.10.12", port: 8000 }, wan: { address: "198.18.1.2", port: 80 } },
    weights: { passing: 10, warning: 1 },
    checks: [{ checkId: "service:redis", name: "Service 'redis' check", status: "passing" }],
  });
  // The session-create sample names checks a, b and c on node foobar.
  double.registerService({
    node: "foobar",
    service: "cache",
    checks: ["a", "b", "c"].map((id) => ({ checkId: id, name: `check ${id}`, status: "passing" as const })),
  });
  for (const [id, tags] of [
    ["pg-1", ["primary"]],
    ["pg-2", ["secondary"]],
  ] as const) {
    double.registerService({ node: "foobar", service: "postgresql", id, port: 5432, tags: [...tags] });
  }
  double.registerService({
    node: "t2.320",
    address: "192.168.10.10",
    service: "web",
    id: "32a2a47f7992:nodea:5000",
    serviceAddress: "172.17.0.3",
    port: 5000,
    tags: ["prod"],
    meta: { web_meta_value: "baz" },
    taggedAddresses: {
      lan: { address: "172.17.0.3", port: 5000 },
      wan: { address: "198.18.0.1", port: 512 },
    },
  });
}

describe.skipIf(dir === undefined)("Consul API samples", () => {
  beforeAll(async () => {
    double = await startConsulDouble();
    const url = new URL(double.url);
    consul = new Consul({ host: url.hostname, port: Number(url.port) });
    seedCatalog();
  });

  afterAll(async () => {
    consul?.destroy();
    await double?.close();
  });

  it("covers every sample file", () => {
    const files = readdirSync(path.join(dir ?? "", "consul", "samples"));
    const covered = [...Object.keys(cases), "session-create.request.json", "node-consul-kv-get.result.json"];
    expect(files.filter((file) => !covered.includes(file))).toEqual([]);
  });

  it.each(Object.keys(cases))("%s: every field, with its JSON type", async (name) => {
    const test = cases[name];
    if (!test) throw new Error(name);
    const answer = await test.answer();
    expect(answer.status).toBe(200);
    if (test.read) expectQueryMeta(answer);
    expect(shapeProblems(sample(name), answer.body, test.opts)).toEqual([]);
  });

  it("health-service.response.json: the service check, compared on its own", async () => {
    const entries = (await call("GET", "/v1/health/service/redis")).body as {
      Checks: { CheckID: string }[];
    }[];
    const expected = (sample("health-service.response.json") as { Checks: unknown[] }[])[0]?.Checks[0];
    const actual = entries[0]?.Checks.find((check) => check.CheckID === "service:redis");
    expect(shapeProblems(expected, actual, { absentOk: { Namespace: ENTERPRISE } })).toEqual([]);
  });

  it("session-create.request.json is accepted as Consul would take it", async () => {
    const created = await call("PUT", "/v1/session/create", sample("session-create.request.json"));
    expect(created.status).toBe(200);
    const { ID } = created.body as { ID: string };
    const info = await consul.session.info(ID);
    expect(info).toMatchObject({
      Name: "my-service-lock",
      Node: "foobar",
      LockDelay: 15e9,
      Behavior: "release",
      TTL: "30s",
      NodeChecks: ["serfHealth"],
    });
    expect((info as unknown as { Checks: string[] }).Checks).toEqual(["a", "b", "c"]);
  });

  it("node-consul-kv-get.result.json is what the npm client resolves for kv.get", async () => {
    const expected = sample("node-consul-kv-get.result.json") as Record<string, unknown>;
    await consul.kv.set("hello", "world");
    const actual = await consul.kv.get("hello");
    expect(shapeProblems(expected, actual)).toEqual([]);
    expect(actual).toEqual({
      ...expected,
      CreateIndex: expect.any(Number) as number,
      ModifyIndex: expect.any(Number) as number,
    });
  });
});
