import Consul from "consul";
import { EventEmitter } from "node:events";
import { readFileSync } from "node:fs";
import type { IncomingMessage } from "node:http";
import path from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { startConsulDouble, type ConsulDouble } from "../../src/sandbox/consul/index.js";
import { referenceDir } from "../support/reference.js";

/** The KV store through the real npm `consul` client (and fetch where the raw wire matters). */

interface KvItem {
  CreateIndex: number;
  ModifyIndex: number;
  LockIndex: number;
  Key: string;
  Flags: number;
  Value: string | null;
  Session?: string;
}

let double: ConsulDouble;
let consul: Consul;

beforeEach(async () => {
  double = await startConsulDouble();
  const url = new URL(double.url);
  consul = new Consul({ host: url.hostname, port: Number(url.port) });
});

afterEach(async () => {
  consul.destroy();
  await double.close();
});

async function http(method: string, route: string, body?: string | Buffer) {
  const payload = typeof body === "string" || body === undefined ? body : new Uint8Array(body);
  const res = await fetch(`${double.url}${route}`, {
    method,
    ...(payload === undefined ? {} : { body: payload }),
  });
  return { status: res.status, headers: res.headers, text: await res.text() };
}

const index = (headers: Headers): number => Number(headers.get("x-consul-index"));

async function get(key: string): Promise<KvItem | undefined> {
  return (await consul.kv.get(key)) as KvItem | undefined;
}

/** kv.get with ?index=&wait= (the client's types leave them out) and the response, for its headers. */
async function blockingGet(key: string, since: number, wait: string) {
  const ctx = Object.assign(new EventEmitter(), { includeResponse: true });
  const options = { key, index: String(since), wait, ctx } as unknown as { key: string };
  const [res, item] = (await consul.kv.get(options)) as unknown as [IncomingMessage, KvItem | undefined];
  return { index: Number(res.headers["x-consul-index"]), item };
}

describe("values", () => {
  it("round-trips text and bytes: base64 on the wire, decoded by the client, raw with ?raw", async () => {
    const text = "clé → valeur ✓ <&>";
    expect(await consul.kv.set("app/text", text)).toBe(true);
    expect((await get("app/text"))?.Value).toBe(text);
    expect(double.kv("app/text")).toBe(text);

    const wire = await http("GET", "/v1/kv/app/text");
    expect(wire.headers.get("content-type")).toBe("application/json");
    const [entry] = JSON.parse(wire.text) as KvItem[];
    expect(entry?.Value).toBe(Buffer.from(text).toString("base64"));

    const bytes = Buffer.from([0, 255, 10, 13, 128]);
    await consul.kv.set("app/bytes", bytes);
    const raw = await fetch(`${double.url}/v1/kv/app/bytes?raw`);
    expect(raw.headers.get("content-type")).toBe("text/plain");
    expect(Buffer.from(await raw.arrayBuffer())).toEqual(bytes);
  });

  it("answers a missing key with 404, which the client resolves to undefined", async () => {
    expect(await get("nope")).toBeUndefined();
    const wire = await http("GET", "/v1/kv/nope");
    expect(wire.status).toBe(404);
    expect(wire.text).toBe("");
    expect(index(wire.headers)).toBeGreaterThan(0);
  });

  it("stores an empty value as null, and keeps flags", async () => {
    expect((await http("PUT", "/v1/kv/empty?flags=42", "")).text).toBe("true");
    const item = await get("empty");
    expect(item?.Value).toBeNull();
    expect(item?.Flags).toBe(42);
  });

  it("refuses values over 512 KB with 413 and takes exactly 512 KB", async () => {
    const limit = 512 * 1024;
    expect(await consul.kv.set("big", Buffer.alloc(limit, 1))).toBe(true);
    const refused = await consul.kv.set("big", Buffer.alloc(limit + 1, 1)).catch((error: unknown) => error);
    expect(refused).toMatchObject({ statusCode: 413 });
    const wire = await http("PUT", "/v1/kv/big", Buffer.alloc(limit + 1, 1));
    expect(wire.status).toBe(413);
    expect(wire.text).toMatch(/^Request body\(524289 bytes\) too large, max size: 524288 bytes/);
  });

  it("answers 400 for a key-less read and for conflicting flags", async () => {
    expect((await http("GET", "/v1/kv/")).text).toBe("Missing key name");
    const conflict = await http("PUT", "/v1/kv/k?cas=0&acquire=x", "v");
    expect(conflict.status).toBe(400);
    expect(conflict.text).toBe("Conflicting flags: acquire=x&cas=0\n");
  });
});

describe("check-and-set", () => {
  // papi hands the body on as `next(false, undefined, body)` and keeps only truthy bodies: the npm
  // client resolves a refused CAS to undefined, not false (and does not throw). Test `=== true`.
  it("cas=0 creates only, and a failed CAS is 200 false, which the client resolves to undefined", async () => {
    expect(await consul.kv.set("lock/owner", "a", { value: "a", cas: 0 })).toBe(true);
    expect(await consul.kv.set("lock/owner", "b", { value: "b", cas: 0 })).toBeUndefined();
    expect((await http("PUT", "/v1/kv/lock/owner?cas=0", "b")).text).toBe("false");
    const first = await get("lock/owner");
    expect(first?.Value).toBe("a");

    const stale = await http("PUT", `/v1/kv/lock/owner?cas=${(first?.ModifyIndex ?? 0) - 1}`, "c");
    expect(stale).toMatchObject({ status: 200, text: "false" });
    expect(await consul.kv.set("lock/owner", "c", { value: "c", cas: first?.ModifyIndex ?? 0 })).toBe(true);
    const second = await get("lock/owner");
    expect(second?.Value).toBe("c");
    expect(second?.ModifyIndex).toBeGreaterThan(first?.ModifyIndex ?? 0);
    expect(second?.CreateIndex).toBe(first?.CreateIndex);
  });

  it("deletes with cas only at the current index", async () => {
    await consul.kv.set("k", "v");
    const item = await get("k");
    expect(await consul.kv.del({ key: "k", cas: (item?.ModifyIndex ?? 0) + 1 })).toBeUndefined();
    expect((await http("DELETE", `/v1/kv/k?cas=${(item?.ModifyIndex ?? 0) + 1}`)).text).toBe("false");
    expect(await consul.kv.del({ key: "k", cas: item?.ModifyIndex ?? 0 })).toBe(true);
    expect(double.kv("k")).toBeUndefined();
  });

  it("answers 500 with Go's message for a malformed index", async () => {
    const wire = await http("PUT", "/v1/kv/k?cas=abc", "v");
    expect(wire).toMatchObject({ status: 500, text: 'strconv.ParseUint: parsing "abc": invalid syntax' });
  });
});

describe("listing", () => {
  beforeEach(async () => {
    for (const key of ["app", "app/a", "app/b/c", "application/x", "other"]) await consul.kv.set(key, key);
  });

  it("recurse is a plain string prefix: without a trailing slash it catches app, app/… and application/…", async () => {
    const loose = (await consul.kv.get({ key: "app", recurse: true })) as KvItem[];
    expect(loose.map((item) => item.Key)).toEqual(["app", "app/a", "app/b/c", "application/x"]);
    const strict = (await consul.kv.get({ key: "app/", recurse: true })) as KvItem[];
    expect(strict.map((item) => item.Key)).toEqual(["app/a", "app/b/c"]);
    expect(await consul.kv.get({ key: "nothing/", recurse: true })).toBeUndefined();
  });

  it("lists keys, folded at the separator", async () => {
    expect(await consul.kv.keys("app/")).toEqual(["app/a", "app/b/c"]);
    expect(await consul.kv.keys({ key: "app/", separator: "/" })).toEqual(["app/a", "app/b/"]);
    const all = await http("GET", "/v1/kv/?keys&separator=/");
    expect(JSON.parse(all.text)).toEqual(["app", "app/", "application/", "other"]);
  });

  it("deletes a tree by prefix", async () => {
    expect(await consul.kv.del({ key: "app/", recurse: true })).toBe(true);
    expect(await consul.kv.keys("")).toEqual(["app", "application/x", "other"]);
  });
});

describe("blocking queries and X-Consul-Index", () => {
  it("returns as soon as the key changes", async () => {
    await consul.kv.set("watched", "1");
    const before = await blockingGet("watched", 0, "1s");
    const started = Date.now();
    const pending = blockingGet("watched", before.index, "10s");
    setTimeout(() => void consul.kv.set("watched", "2"), 50);
    const after = await pending;
    expect(Date.now() - started).toBeLessThan(2_000);
    expect(after.item?.Value).toBe("2");
    expect(after.index).toBeGreaterThan(before.index);
  });

  it("returns at wait (plus at most 1/16 jitter) with the same index when nothing changes", async () => {
    await consul.kv.set("quiet", "1");
    await consul.kv.set("elsewhere", "1");
    const before = await blockingGet("quiet", 0, "1s");
    const started = Date.now();
    const after = await blockingGet("quiet", before.index, "300ms");
    const elapsed = Date.now() - started;
    expect(elapsed).toBeGreaterThanOrEqual(290);
    expect(elapsed).toBeLessThan(300 * (1 + 1 / 16) + 250);
    expect(after.index).toBe(before.index);
  });

  it("wakes a watch of a missing key when it is created", async () => {
    const before = await blockingGet("later", 0, "1s");
    expect(before.item).toBeUndefined();
    const pending = blockingGet("later", before.index, "10s");
    setTimeout(() => double.putKv("later", "here"), 30);
    expect((await pending).item?.Value).toBe("here");
  });

  it("drives the client's own watch: one change event per write", async () => {
    const seen: (string | null | undefined)[] = [];
    const watch = consul.watch({ method: consul.kv.get, options: { key: "w", wait: "2s" } });
    try {
      await new Promise<void>((resolve, reject) => {
        watch.on("error", reject);
        watch.on("change", (data: KvItem | undefined) => {
          seen.push(data?.Value);
          if (seen.length === 1) void consul.kv.set("w", "one");
          if (seen.length === 2) void consul.kv.set("w", "two");
          if (seen.length === 3) resolve();
        });
      });
    } finally {
      watch.end();
    }
    expect(seen).toEqual([undefined, "one", "two"]);
  });

  it("never reports index 0, and every write moves it forward", async () => {
    const fresh = await http("GET", "/v1/kv/?keys");
    expect(fresh).toMatchObject({ status: 200, text: "[]" });
    let last = index(fresh.headers);
    expect(last).toBeGreaterThanOrEqual(1);
    for (const value of ["a", "b", "c"]) {
      await consul.kv.set("counter", value);
      const now = index((await http("GET", "/v1/kv/counter")).headers);
      expect(now).toBeGreaterThan(last);
      last = now;
    }
    await consul.kv.del("counter");
    const gone = await http("GET", "/v1/kv/counter");
    expect(gone.status).toBe(404);
    expect(index(gone.headers)).toBeGreaterThan(last);
  });

  it("wakes a recurse watch on a sub-prefix when a parent tree is deleted", async () => {
    await consul.kv.set("tree/sub/a", "1");
    await consul.kv.set("tree/other", "1");
    const sub = index((await http("GET", "/v1/kv/tree/sub/?recurse")).headers);
    const pending = http("GET", `/v1/kv/tree/sub/?recurse&index=${sub}&wait=10s`);
    setTimeout(() => void consul.kv.del({ key: "tree/", recurse: true }), 30);
    const after = await pending;
    expect(after.status).toBe(404);
    expect(index(after.headers)).toBeGreaterThan(sub);
  });

  it("answers 400 for a malformed wait or index", async () => {
    expect((await http("GET", "/v1/kv/k?index=1&wait=5")).text).toBe("Invalid wait time");
    expect((await http("GET", "/v1/kv/k?index=x")).text).toBe("Invalid index");
  });
});

const stolonDir = (() => {
  const dir = referenceDir();
  const file = dir === undefined ? undefined : path.join(dir, "stolon", "clusterdata.constructed.json");
  try {
    return file === undefined ? undefined : readFileSync(file, "utf8");
  } catch {
    return undefined;
  }
})();

describe.skipIf(stolonDir === undefined)("a Stolon clusterdata key", () => {
  const key = "stolon/cluster/pg/clusterdata";
  // docker/libkv's Consul store writes every value with Flags = api.LockFlagValue, beyond 2^53.
  const LOCK_FLAG = "3304740253564472344";
  const flagsOf = (text: string): string | undefined => /"Flags":(\d+)/.exec(text)?.[1];

  it("is stored, then CAS-updated (failkeeper) keeping Consul's Flags to the last digit", async () => {
    const clusterdata = stolonDir ?? "";
    expect((await http("PUT", `/v1/kv/${key}?flags=${LOCK_FLAG}`, clusterdata)).text).toBe("true");

    const wire = await http("GET", `/v1/kv/${key}`);
    expect(flagsOf(wire.text)).toBe(LOCK_FLAG);
    const [entry] = JSON.parse(wire.text) as KvItem[];
    const data = JSON.parse(Buffer.from(entry?.Value ?? "", "base64").toString("utf8")) as {
      keepers: Record<string, { status: Record<string, unknown> }>;
    };
    const keeper = data.keepers.keeper_c;
    if (!keeper) throw new Error("sample has no keeper_c");
    keeper.status.forceFail = true;

    const update = `/v1/kv/${key}?cas=${entry?.ModifyIndex}&flags=${flagsOf(wire.text)}`;
    expect((await http("PUT", update, JSON.stringify(data))).text).toBe("true");
    const after = await http("GET", `/v1/kv/${key}`);
    expect(flagsOf(after.text)).toBe(LOCK_FLAG);
    expect(double.kv(key)).toContain('"forceFail":true');

    // The sentinel rewrote the key meanwhile: the same CAS now fails with 200 false.
    expect((await http("PUT", update, JSON.stringify(data))).text).toBe("false");
  });

  it("loses the Flags through the npm client, whose JSON numbers are doubles", async () => {
    await http("PUT", `/v1/kv/${key}?flags=${LOCK_FLAG}`, stolonDir ?? "");
    const item = await get(key);
    expect(String(item?.Flags)).not.toBe(LOCK_FLAG);
    await consul.kv.set({
      key,
      value: item?.Value ?? "",
      flags: item?.Flags ?? 0,
      cas: item?.ModifyIndex ?? 0,
    });
    expect(flagsOf((await http("GET", `/v1/kv/${key}`)).text)).not.toBe(LOCK_FLAG);
  });
});
