import Consul from "consul";
import { EventEmitter } from "node:events";
import type { IncomingMessage } from "node:http";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { startConsulDouble, type ConsulDouble } from "../../src/sandbox/consul/index.js";

/** Health, catalog and agent endpoints through the npm client. */

interface Check {
  Node: string;
  CheckID: string;
  Status: string;
  Output: string;
  ServiceID: string;
  ServiceName: string;
}

interface HealthEntry {
  Node: { Node: string; Address: string };
  Service: { ID: string; Service: string; Tags: string[]; Port: number };
  Checks: Check[];
}

let double: ConsulDouble;
let consul: Consul;

beforeEach(async () => {
  double = await startConsulDouble();
  const url = new URL(double.url);
  consul = new Consul({ host: url.hostname, port: Number(url.port) });
  for (const [node, status] of [
    ["garage-1", "passing"],
    ["garage-2", "critical"],
  ] as const) {
    double.registerService({
      node,
      address: node === "garage-1" ? "10.0.0.1" : "10.0.0.2",
      service: "garage",
      id: `garage-${node}`,
      port: 3900,
      tags: ["s3", node],
      checks: [{ checkId: `garage-${node}-http`, name: "Garage HTTP", status }],
    });
  }
});

afterEach(async () => {
  consul.destroy();
  await double.close();
});

/** health.state with ?index=&wait= and the X-Consul-Index of the answer. */
async function checksInState(state: string, since: number, wait: string) {
  const ctx = Object.assign(new EventEmitter(), { includeResponse: true });
  const options = { state, index: String(since), wait, ctx } as unknown as { state: "any" };
  const [res, checks] = (await consul.health.state(options)) as unknown as [IncomingMessage, Check[]];
  return { index: Number(res.headers["x-consul-index"]), checks };
}

describe("health", () => {
  it("returns a blocking /health/state/critical query as soon as a check flips", async () => {
    const before = await checksInState("critical", 0, "1s");
    expect(before.checks.map((c) => c.CheckID)).toEqual(["garage-garage-2-http"]);
    const pending = checksInState("critical", before.index, "10s");
    setTimeout(() => double.setCheck("garage-garage-1-http", "critical", "connection refused"), 50);
    const after = await pending;
    expect(after.index).toBeGreaterThan(before.index);
    expect(after.checks.map((c) => [c.CheckID, c.Output])).toEqual([
      ["garage-garage-1-http", "connection refused"],
      ["garage-garage-2-http", ""],
    ]);
  });

  it("lists instances with node and service checks, and filters ?passing", async () => {
    const all = (await consul.health.service("garage")) as HealthEntry[];
    expect(all.map((e) => [e.Node.Node, e.Node.Address, e.Service.ID])).toEqual([
      ["garage-1", "10.0.0.1", "garage-garage-1"],
      ["garage-2", "10.0.0.2", "garage-garage-2"],
    ]);
    expect(all[0]?.Checks.map((c) => c.CheckID)).toEqual(["serfHealth", "garage-garage-1-http"]);
    const passing = (await consul.health.service({ service: "garage", passing: true })) as HealthEntry[];
    expect(passing.map((e) => e.Node.Node)).toEqual(["garage-1"]);
    const tagged = (await consul.health.service({ service: "garage", tag: "garage-2" })) as HealthEntry[];
    expect(tagged.map((e) => e.Node.Node)).toEqual(["garage-2"]);
    expect(await consul.health.service("nothing")).toEqual([]);
  });

  it("lists a service's checks and a node's", async () => {
    const checks = (await consul.health.checks("garage")) as Check[];
    expect(checks.map((c) => c.Status)).toEqual(["passing", "critical"]);
    const node = (await consul.health.node("garage-2")) as Check[];
    expect(node.map((c) => c.CheckID)).toEqual(["garage-garage-2-http", "serfHealth"]);
  });

  it("needs the node when a check ID is on several nodes", () => {
    expect(() => double.setCheck("serfHealth", "critical")).toThrow(/on nodes .*: say which/);
    double.setCheck("serfHealth", "critical", "Agent not live or unreachable", "garage-1");
  });
});

describe("catalog", () => {
  it("lists services with their tags, instances and nodes", async () => {
    expect(await consul.catalog.services()).toEqual({
      consul: [],
      garage: ["garage-1", "garage-2", "s3"],
    });
    const nodes = (await consul.catalog.service.nodes("garage")) as { Node: string; ServicePort: number }[];
    expect(nodes.map((n) => [n.Node, n.ServicePort])).toEqual([
      ["garage-1", 3900],
      ["garage-2", 3900],
    ]);
    const all = (await consul.catalog.node.list()) as { Node: string }[];
    expect(all.map((n) => n.Node)).toEqual(["consul-server-1", "garage-1", "garage-2"]);
  });

  it("forgets a deregistered service, and a watch on it wakes", async () => {
    const res = await fetch(`${double.url}/v1/catalog/service/garage`);
    const since = Number(res.headers.get("x-consul-index"));
    const pending = fetch(`${double.url}/v1/catalog/service/garage?index=${since}&wait=10s`);
    setTimeout(() => {
      double.deregisterService("garage-garage-1");
      double.deregisterService("garage-garage-2");
    }, 30);
    const after = await pending;
    expect(await after.json()).toEqual([]);
    expect(Number(after.headers.get("x-consul-index"))).toBeGreaterThan(since);
  });
});

describe("agent endpoints", () => {
  it("registers a service with a TTL check, moves the check, and deregisters it", async () => {
    await consul.agent.service.register({
      name: "matrix",
      id: "matrix-1",
      port: 8008,
      check: { name: "Matrix TTL", ttl: "30s", timeout: "" },
    });
    const [entry] = (await consul.health.service("matrix")) as HealthEntry[];
    const check = entry?.Checks.find((c) => c.ServiceID === "matrix-1");
    expect(check).toMatchObject({ CheckID: "service:matrix-1", Status: "critical", ServiceName: "matrix" });

    await consul.agent.check.pass({ id: "service:matrix-1", note: "all good" });
    const passing = (await consul.health.checks("matrix")) as Check[];
    expect(passing[0]).toMatchObject({ Status: "passing", Output: "all good" });
    await consul.agent.check.warn("service:matrix-1");
    expect(((await consul.health.checks("matrix")) as Check[])[0]?.Status).toBe("warning");

    await consul.agent.service.deregister("matrix-1");
    expect(await consul.health.service("matrix")).toEqual([]);
    const unknown = await consul.agent.service.deregister("matrix-1").catch((error: unknown) => error);
    expect(unknown).toMatchObject({ statusCode: 404 });
  });

  it("answers 404 for an unknown check and 405 for a wrong method", async () => {
    const check = await fetch(`${double.url}/v1/agent/check/pass/ghost`, { method: "PUT" });
    expect(check.status).toBe(404);
    expect(await check.text()).toBe(
      'Unknown check ID "ghost". Ensure that the check ID is passed, not the check name.',
    );
    const wrong = await fetch(`${double.url}/v1/agent/check/pass/ghost`);
    expect(wrong.status).toBe(405);
    expect(wrong.headers.get("allow")).toBe("OPTIONS,PUT");
  });

  it("names the leader", async () => {
    expect(await consul.status.leader()).toBe("127.0.0.1:8300");
  });
});
