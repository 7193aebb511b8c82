import Consul from "consul";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { startConsulDouble, type ConsulDouble } from "../../src/sandbox/consul/index.js";

/** "Consul unreachable" and shutting the double down with requests and timers in flight. */

let double: ConsulDouble;
let consul: Consul;

beforeEach(async () => {
  double = await startConsulDouble({ timeScale: 0.01 });
  const url = new URL(double.url);
  consul = new Consul({ host: url.hostname, port: Number(url.port) });
});

afterEach(async () => {
  consul.destroy();
  await double.close();
});

const rejection = (promise: Promise<unknown>): Promise<unknown> =>
  promise.then(
    () => "resolved",
    (error: unknown) => error,
  );

describe("unavailable", () => {
  it("resets every connection while down, then serves again", async () => {
    await consul.kv.set("k", "v");
    double.unavailable(true);
    const error = await rejection(consul.kv.get("k"));
    expect(error).toBeInstanceOf(Error);
    expect((error as NodeJS.ErrnoException).code).toBe("ECONNRESET");
    expect(await rejection(fetch(`${double.url}/v1/kv/k`))).toBeInstanceOf(TypeError);

    double.unavailable(false);
    expect(await consul.kv.get("k")).toMatchObject({ Value: "v" });
  });

  it("cuts blocking queries in flight", async () => {
    const res = await fetch(`${double.url}/v1/kv/k`);
    const since = res.headers.get("x-consul-index") ?? "1";
    const pending = rejection(fetch(`${double.url}/v1/kv/k?index=${since}&wait=30s`));
    setTimeout(() => double.unavailable(true), 30);
    expect(await pending).toBeInstanceOf(TypeError);
  });
});

describe("close", () => {
  it("ends blocking queries and session timers", async () => {
    await consul.session.create({ ttl: "60s" });
    const res = await fetch(`${double.url}/v1/kv/k`);
    const since = res.headers.get("x-consul-index") ?? "1";
    const pending = rejection(fetch(`${double.url}/v1/kv/k?index=${since}&wait=5m`));
    const other = await startConsulDouble();
    await other.close();
    await double.close();
    expect(await pending).not.toBe("resolved");
    // afterEach closes it again: close is idempotent.
  });
});
