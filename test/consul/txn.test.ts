import Consul from "consul";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { startConsulDouble, type ConsulDouble } from "../../src/sandbox/consul/index.js";

/** PUT /v1/txn through the npm client's transaction.create (the body is sent as given). */

interface TxnKv {
  Key: string;
  Value: string | null;
  Flags: number;
  Session?: string;
  LockIndex: number;
  CreateIndex: number;
  ModifyIndex: number;
}

interface TxnBody {
  Results: { KV: TxnKv }[] | null;
  Errors: { OpIndex: number; What: string }[] | null;
}

type Operation = Parameters<Consul["transaction"]["create"]>[0][number];

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

const b64 = (text: string): string => Buffer.from(text).toString("base64");
const kv = (op: Record<string, unknown>): Operation => ({ KV: op }) as unknown as Operation;

/** transaction.create resolves the body on 200 and rejects on 409 with the parsed body attached. */
async function txn(ops: Record<string, unknown>[]): Promise<{ status: number; body: TxnBody }> {
  try {
    const body = (await consul.transaction.create(ops.map(kv), {} as never)) as TxnBody;
    return { status: 200, body };
  } catch (error) {
    const response = (error as { response?: { statusCode: number; body: TxnBody } }).response;
    if (!response) throw error;
    return { status: response.statusCode, body: response.body };
  }
}

describe("transactions", () => {
  it("applies every operation at one index, values blanked except for reads", async () => {
    const { status, body } = await txn([
      { Verb: "set", Key: "cfg/a", Value: b64("1"), Flags: 7 },
      { Verb: "set", Key: "cfg/b", Value: b64("2") },
      { Verb: "get", Key: "cfg/a" },
      { Verb: "get-tree", Key: "cfg/" },
    ]);
    expect(status).toBe(200);
    expect(body.Errors).toBeNull();
    const results = body.Results ?? [];
    expect(results.map((r) => [r.KV.Key, r.KV.Value])).toEqual([
      ["cfg/a", null],
      ["cfg/b", null],
      ["cfg/a", b64("1")],
      ["cfg/a", b64("1")],
      ["cfg/b", b64("2")],
    ]);
    expect(new Set(results.map((r) => r.KV.ModifyIndex)).size).toBe(1);
    expect(results[0]?.KV.Flags).toBe(7);
  });

  it("is all-or-nothing: 409, every failing operation listed, nothing written", async () => {
    await consul.kv.set("existing", "x");
    const { status, body } = await txn([
      { Verb: "set", Key: "new/a", Value: b64("a") },
      { Verb: "cas", Key: "existing", Value: b64("y"), Index: 1 },
      { Verb: "check-not-exists", Key: "existing" },
      { Verb: "delete", Key: "existing" },
    ]);
    expect(status).toBe(409);
    expect(body).toEqual({
      Results: null,
      Errors: [
        { OpIndex: 1, What: 'failed to set key "existing", index is stale' },
        { OpIndex: 2, What: 'key "existing" exists' },
      ],
    });
    expect(double.kv("new/a")).toBeUndefined();
    expect(double.kv("existing")).toBe("x");
  });

  it("sees its own earlier writes", async () => {
    const { status } = await txn([
      { Verb: "set", Key: "seq", Value: b64("1") },
      { Verb: "check-not-exists", Key: "other" },
      { Verb: "get", Key: "seq" },
      { Verb: "delete", Key: "seq" },
      { Verb: "check-not-exists", Key: "seq" },
    ]);
    expect(status).toBe(200);
    expect(double.kv("seq")).toBeUndefined();
  });

  it("locks with sessions and honours check-index, check-session and delete-cas", async () => {
    const { ID: session } = await consul.session.create({});
    const locked = await txn([{ Verb: "lock", Key: "leader", Value: b64("me"), Session: session }]);
    const entry = locked.body.Results?.[0]?.KV;
    expect(entry).toMatchObject({ Session: session, LockIndex: 1 });
    const index = entry?.ModifyIndex ?? 0;

    const checked = await txn([
      { Verb: "check-session", Key: "leader", Session: session },
      { Verb: "check-index", Key: "leader", Index: index },
      { Verb: "unlock", Key: "leader", Value: b64("me"), Session: session },
    ]);
    expect(checked.status).toBe(200);
    const stale = await txn([
      { Verb: "check-index", Key: "leader", Index: index },
      { Verb: "delete-cas", Key: "leader", Index: index },
    ]);
    expect(stale.body.Errors?.map((e) => e.What)).toEqual([
      `failed index check for key "leader", current modify index ${index + 1} != ${index}`,
      'failed to delete key "leader", index is stale',
    ]);
  });

  it("refuses a lock during lock-delay before running anything", async () => {
    const { ID: a } = await consul.session.create({});
    const { ID: b } = await consul.session.create({});
    await consul.kv.set({ key: "l", value: "a", acquire: a });
    await consul.session.destroy(a);
    const { status, body } = await txn([
      { Verb: "set", Key: "side", Value: b64("effect") },
      { Verb: "lock", Key: "l", Value: b64("b"), Session: b },
    ]);
    expect(status).toBe(409);
    expect(body.Errors).toEqual([{ OpIndex: 1, What: 'failed to lock key "l" due to lock delay' }]);
    expect(double.kv("side")).toBeUndefined();
  });

  it("answers a read-only transaction with its failures too", async () => {
    const { status, body } = await txn([{ Verb: "get", Key: "missing" }]);
    expect(status).toBe(409);
    expect(body.Errors).toEqual([{ OpIndex: 0, What: 'key "missing" doesn\'t exist' }]);
  });

  it("reads field names case-insensitively, as Go's decoder does", async () => {
    const res = await fetch(`${double.url}/v1/txn`, {
      method: "PUT",
      body: JSON.stringify([{ kv: { verb: "set", key: "lower", value: b64("ok") } }]),
    });
    expect(res.status).toBe(200);
    expect(double.kv("lower")).toBe("ok");
  });

  it("refuses more than 64 operations and undecodable values", async () => {
    const many = Array.from({ length: 65 }, (_, i) => ({ KV: { Verb: "get", Key: `k${i}` } }));
    const tooMany = await fetch(`${double.url}/v1/txn`, { method: "PUT", body: JSON.stringify(many) });
    expect(tooMany.status).toBe(413);
    expect(await tooMany.text()).toBe("Transaction contains too many operations (65 > 64)");
    const bad = await fetch(`${double.url}/v1/txn`, {
      method: "PUT",
      body: JSON.stringify([{ KV: { Verb: "set", Key: "k", Value: "not base64!" } }]),
    });
    expect(bad.status).toBe(400);
  });
});
