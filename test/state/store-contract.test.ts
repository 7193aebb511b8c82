import { mkdtemp } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import pino from "pino";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { ManualClock } from "../../src/clock.js";
import { startConsulDouble, type ConsulDouble } from "../../src/sandbox/consul/index.js";
import { ConsulStateStore } from "../../src/state/consul-store.js";
import { FileStateStore } from "../../src/state/file-store.js";
import type { StateStore } from "../../src/state/store.js";

/**
 * What every state backend promises (src/state/store.ts), run against the embedded file store and the
 * Consul store (through the Consul double on a loopback port).
 */

interface Backend {
  name: string;
  open(clock: ManualClock): Promise<{ store: StateStore; dispose(): Promise<void> }>;
}

const backends: Backend[] = [
  {
    name: "file",
    open: async () => {
      const store = await FileStateStore.open(await mkdtemp(join(tmpdir(), "majordome-contract-")), {
        fsync: false,
      });
      return { store, dispose: () => store.close() };
    },
  },
  {
    name: "consul",
    open: async (clock) => {
      const double: ConsulDouble = await startConsulDouble({ now: () => clock.now() });
      const store = new ConsulStateStore({
        consul: { address: double.url },
        prefix: "majordome/state/",
        clock,
        logger: pino({ level: "silent" }),
      });
      return {
        store,
        dispose: async () => {
          await store.close();
          await double.close();
        },
      };
    },
  },
];

describe.each(backends)("$name state store", (backend) => {
  let clock: ManualClock;
  let store: StateStore;
  let dispose: () => Promise<void>;

  beforeEach(async () => {
    clock = new ManualClock();
    ({ store, dispose } = await backend.open(clock));
  });

  afterEach(async () => {
    await dispose();
  });

  it("gets what was set, with a version that moves on each change", async () => {
    expect(await store.get("nothing/here")).toBeUndefined();
    await store.set("a/b", { n: 1 });
    const first = await store.get<{ n: number }>("a/b");
    expect(first?.value).toEqual({ n: 1 });
    expect(first?.version).toBeGreaterThan(0);
    await store.set("a/b", { n: 2 });
    const second = await store.get<{ n: number }>("a/b");
    expect(second?.value).toEqual({ n: 2 });
    expect(second?.version).toBeGreaterThan(first?.version ?? Infinity);
  });

  it("round-trips JSON values of every kind", async () => {
    const values: unknown[] = [
      'text with ü, 漢字 and "quotes"',
      "",
      0,
      -12.5,
      true,
      null,
      [1, "two", { three: [3] }],
      { nested: { deeper: { list: [null, false] } }, empty: {} },
    ];
    for (const [i, value] of values.entries()) await store.set(`values/${i}`, value);
    for (const [i, value] of values.entries()) expect((await store.get(`values/${i}`))?.value).toEqual(value);
  });

  it("keeps keys as given: spaces, percent-encoded parts, $ and non-ASCII", async () => {
    const keys = ["inbox/done/%24event%3Aserver", "b/weird key/ü", "c/$dollar+plus", "d/trailing.dot."];
    for (const key of keys) await store.set(key, key.length);
    for (const key of keys) expect((await store.get(key))?.value).toBe(key.length);
    expect((await store.list("inbox/")).map((e) => e.key)).toEqual(["inbox/done/%24event%3Aserver"]);
  });

  it("cas with version 0 creates only; otherwise writes only at the current version", async () => {
    expect(await store.cas("lock/owner", "a", 0)).toBe(true);
    expect(await store.cas("lock/owner", "b", 0)).toBe(false);
    const current = await store.get<string>("lock/owner");
    expect(current?.value).toBe("a");
    const version = current?.version ?? 0;
    expect(await store.cas("lock/owner", "stale", version + 1000)).toBe(false);
    expect(await store.cas("lock/owner", "c", version)).toBe(true);
    expect(await store.cas("lock/owner", "again", version)).toBe(false);
    expect((await store.get("lock/owner"))?.value).toBe("c");
    expect(await store.cas("absent/key", "x", 5)).toBe(false);
    expect(await store.get("absent/key")).toBeUndefined();
  });

  it("lets exactly one of many concurrent create-only writers win", async () => {
    const results = await Promise.all(
      Array.from({ length: 12 }, (_, i) => store.cas("race/one", { writer: i }, 0)),
    );
    expect(results.filter(Boolean)).toHaveLength(1);
    const winner = results.indexOf(true);
    expect((await store.get("race/one"))?.value).toEqual({ writer: winner });
  });

  it("loses no increment when writers retry their check-and-set", async () => {
    await store.set("counter", 0);
    const increment = async () => {
      for (;;) {
        const current = await store.get<number>("counter");
        if (current && (await store.cas("counter", current.value + 1, current.version))) return;
      }
    };
    await Promise.all(Array.from({ length: 8 }, increment));
    expect((await store.get("counter"))?.value).toBe(8);
  });

  it("writes many keys at once, overwriting those that exist", async () => {
    await store.set("many/k007", { n: -1 });
    await store.setMany([]);
    await store.setMany(
      Array.from({ length: 150 }, (_, n) => [`many/k${String(n).padStart(3, "0")}`, { n }] as const),
    );
    const listed = await store.list<{ n: number }>("many/");
    expect(listed.map((e) => e.value.n)).toEqual(Array.from({ length: 150 }, (_, n) => n));
    expect((await store.get<{ n: number }>("many/k007"))?.value).toEqual({ n: 7 });
  });

  it("deletes: the key is gone, deleting nothing is fine, and cas 0 may create it again", async () => {
    await store.set("gone/soon", 1);
    await store.delete("gone/soon");
    expect(await store.get("gone/soon")).toBeUndefined();
    await store.delete("gone/soon");
    await store.delete("never/was");
    expect(await store.cas("gone/soon", 2, 0)).toBe(true);
    expect((await store.get("gone/soon"))?.value).toBe(2);
  });

  it("lists the keys under a prefix, in key order, with their values and versions", async () => {
    for (const key of ["jobs/b", "jobs/a/2", "jobs/a/1", "jobsx", "other/a", "jobs/c"])
      await store.set(key, key);
    const listed = await store.list<string>("jobs/");
    expect(listed.map((e) => e.key)).toEqual(["jobs/a/1", "jobs/a/2", "jobs/b", "jobs/c"]);
    expect(listed.every((e) => e.value === e.key)).toBe(true);
    for (const entry of listed) expect(entry.version).toBe((await store.get(entry.key))?.version);
    expect((await store.list("jobs")).map((e) => e.key)).toContain("jobsx");
    expect(await store.list("empty/")).toEqual([]);
  });

  it("orders listed keys by bytes (upper case before lower case, digits before letters)", async () => {
    for (const key of ["k/b", "k/B", "k/a", "k/1", "k/é", "k/A10", "k/A9"]) await store.set(key, 0);
    expect((await store.list("k/")).map((e) => e.key)).toEqual([
      "k/1",
      "k/A10",
      "k/A9",
      "k/B",
      "k/a",
      "k/b",
      "k/é",
    ]);
  });

  it("keeps the audit log apart from the keys", async () => {
    await store.set("a", 1);
    await store.appendAudit({ at: clock.now(), kind: "command", command: "ping" });
    expect((await store.list("")).map((e) => e.key)).toEqual(["a"]);
  });

  it("returns copies: changing a value read does not change the store", async () => {
    await store.set("k", { list: [1] });
    const read = await store.get<{ list: number[] }>("k");
    read?.value.list.push(2);
    expect((await store.get("k"))?.value).toEqual({ list: [1] });
  });

  it("stores values of a few hundred kilobytes", async () => {
    const big = { text: "x".repeat(200 * 1024) };
    await store.set("big", big);
    expect((await store.get("big"))?.value).toEqual(big);
  });

  it("reads back the latest audit entries, oldest first, in the order they were appended", async () => {
    for (let i = 0; i < 7; i++) {
      // Several entries within the same millisecond, and some later.
      if (i % 3 === 0) await clock.advance(1);
      await store.appendAudit({
        at: clock.now(),
        kind: "command",
        actor: "@alice:x",
        command: `c${i}`,
        args: [i],
      });
    }
    expect((await store.readAudit(3)).map((e) => e.command)).toEqual(["c4", "c5", "c6"]);
    const all = await store.readAudit(100);
    expect(all.map((e) => e.command)).toEqual(["c0", "c1", "c2", "c3", "c4", "c5", "c6"]);
    expect(all[2]).toEqual({ at: all[2]?.at, kind: "command", actor: "@alice:x", command: "c2", args: [2] });
    expect(await store.readAudit(0)).toEqual([]);
  });

  it("reads back more audit entries than one Consul transaction holds", async () => {
    for (let i = 0; i < 150; i++) await store.appendAudit({ at: clock.now(), kind: "k", n: i });
    const entries = await store.readAudit(140);
    expect(entries.map((e) => e.n)).toEqual(Array.from({ length: 140 }, (_, i) => i + 10));
  });

  it("is healthy while its storage answers", async () => {
    expect(await store.healthy()).toBe(true);
  });
});
