/**
 * The Stolon backend against the Consul double over real sockets, with the sentinel double playing
 * Stolon's processes (cluster data shaped after the CONSTRUCTED samples in shared/reference/stolon/,
 * which come from Stolon's Go struct tags, not from a capture).
 */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { isLosslessNumber, parse } from "lossless-json";
import { afterEach, describe, expect, it } from "vitest";
import { StolonRefusal } from "../../src/backends/stolon/backend.js";
import type { StolonKv } from "../../src/backends/stolon/kv.js";
import { LIBKV_LOCK_FLAGS } from "../../src/sandbox/stolon.js";
import { referenceDir, shapeProblems } from "../support/reference.js";
import { deletePath, getPath, startStolonWorld, type StolonWorld } from "./support.js";

const worlds: StolonWorld[] = [];
afterEach(async () => {
  for (const world of worlds.splice(0)) await world.close();
});

async function world(opts: Parameters<typeof startStolonWorld>[0] = {}): Promise<StolonWorld> {
  const w = await startStolonWorld(opts);
  worlds.push(w);
  return w;
}

/** The cluster data key's envelope as Consul serves it (text: Flags are past 2^53). */
async function envelope(w: StolonWorld): Promise<{ text: string; flags: string; value: string }> {
  const text = await (await fetch(`${w.consul.url}/v1/kv/${w.stolon.clusterDataKey}`)).text();
  const [entry] = parse(text) as Array<{ Flags: unknown; Value: string }>;
  return {
    text,
    flags: isLosslessNumber(entry!.Flags) ? entry!.Flags.value : String(entry!.Flags),
    value: Buffer.from(entry!.Value, "base64").toString("utf8"),
  };
}

describe("Stolon backend against the Consul and sentinel doubles", () => {
  it("shows the cluster as stolonctl status would, with the sentinel at work", async () => {
    const w = await world();
    const status = await w.drive(w.backend.status("pg"));
    expect(status.master).toMatchObject({ keeper: "keeper_a", db: "5a363897", healthy: true });
    expect(status.standbys.map((s) => [s.keeper, s.eligible])).toEqual([
      ["keeper_b", true],
      ["keeper_c", true],
    ]);
    expect(status.live).toEqual({
      keepers: ["keeper_a", "keeper_b", "keeper_c"],
      sentinels: ["c1d2e3f4"],
      proxies: ["1a2b3c4d", "5e6f7a8b"],
    });
    expect(status.sentinelRewriting).toBe(true);
  });

  it.skipIf(!referenceDir())(
    "the double's cluster data has the shape of the constructed sample",
    async () => {
      const w = await world();
      await w.elapse(5000);
      const sample = JSON.parse(
        readFileSync(join(referenceDir()!, "stolon", "clusterdata.constructed.json"), "utf8"),
      ) as unknown;
      const actual = JSON.parse((await envelope(w)).value) as unknown;
      expect(
        shapeProblems(sample, actual, {
          maps: ["keepers", "dbs"],
          absentOk: {
            "cluster.spec.additionalWalSenders": "null in the sample (unset pointer)",
            "cluster.spec.additionalMasterReplicationSlots": "null in the sample (unset pointer)",
            "cluster.spec.pgHBA": "null in the sample (unset pointer)",
            "cluster.spec.automaticPgRestart": "null in the sample (unset pointer)",
            "keepers{}.status.healthy": "omitempty: absent when false",
            "dbs{}.status.healthy": "omitempty: absent when false",
            "dbs{}.spec.followConfig": "only standbys follow",
          },
        }),
      ).toEqual([]);
      expect((await envelope(w)).flags).toBe(LIBKV_LOCK_FLAGS);
    },
  );

  it("a paused sentinel is seen: the cluster data stops changing within the window", async () => {
    const w = await world();
    w.stolon.pause();
    const status = await w.drive(w.backend.status("pg"));
    expect(status.sentinelRewriting).toBe(false);
    expect((await w.drive(w.backend.preflight("pg"))).refusal).toMatch(/no sentinel is rewriting/);
  });

  it("fails over: forceFail written with CAS, the sentinel elects a healthy standby", async () => {
    const w = await world();
    const preflight = await w.drive(w.backend.preflight("pg"));
    expect(preflight.refusal).toBeUndefined();
    const old = { db: preflight.status!.master.db, keeper: preflight.status!.master.keeper };
    const written = await w.backend.failkeeper("pg", old.keeper, { onlyWhileMaster: true });
    expect(written.attempts).toBe(1);
    expect(JSON.parse((await envelope(w)).value).keepers.keeper_a.status.forceFail).toBe(true);
    const seen: string[] = [];
    const change = await w.drive(w.backend.waitForNewMaster("pg", old, 60_000, (s) => void seen.push(s)));
    expect(change.outcome).toBe("elected");
    if (change.outcome !== "elected") return;
    expect(change.old).toEqual(old);
    expect(["keeper_b", "keeper_c"]).toContain(change.new.keeper);
    expect(change.new).toEqual(w.stolon.master());
    expect(change.durationMs).toBeGreaterThan(0);
    expect(change.durationMs).toBeLessThanOrEqual(6000);
    const after = await w.drive(w.backend.status("pg"));
    expect(after.master.keeper).toBe(change.new.keeper);
    expect(after.keepers.find((k) => k.uid === "keeper_a")?.forceFail).toBe(false);
    // Flags are kept through majordome's write and the sentinel's.
    expect((await envelope(w)).flags).toBe(LIBKV_LOCK_FLAGS);
    // A second failkeeper guarded on the old master is refused: it is not the master any more.
    await expect(w.backend.failkeeper("pg", old.keeper, { onlyWhileMaster: true })).rejects.toThrow(
      /keeper_a is no longer the master/,
    );
  });

  it("keeps following through a moment when Consul is unreachable", async () => {
    const w = await world();
    const old = w.stolon.master();
    await w.backend.failkeeper("pg", old.keeper);
    w.consul.unavailable(true);
    const seen: string[] = [];
    const following = w.backend.waitForNewMaster("pg", old, 60_000, (s) => void seen.push(s));
    await w.elapse(3000, 500);
    w.consul.unavailable(false);
    const change = await w.drive(following);
    expect(seen[0]).toMatch(/the cluster data could not be read \(Consul is unreachable/);
    expect(change.outcome).toBe("elected");
    expect(change.outcome === "elected" && change.new).toEqual(w.stolon.master());
  });

  it("retries on a CAS conflict when the sentinel rewrites between the read and the write", async () => {
    const answers: boolean[] = [];
    let sentinelWritesFirst: (() => Promise<void>) | undefined;
    const w = await world({
      kv: (kv): StolonKv => ({
        get: (key, opts) => kv.get(key, opts),
        list: (prefix, opts) => kv.list(prefix, opts),
        async cas(key, value, index, flags) {
          if (sentinelWritesFirst) {
            const rewrite = sentinelWritesFirst;
            sentinelWritesFirst = undefined;
            await rewrite();
          }
          const ok = await kv.cas(key, value, index, flags);
          answers.push(ok);
          return ok;
        },
      }),
    });
    sentinelWritesFirst = () => w.stolon.tick();
    const written = await w.drive(w.backend.failkeeper("pg", "keeper_a"), { stepMs: 50 });
    expect(answers).toEqual([false, true]);
    expect(written.attempts).toBe(2);
    const value = JSON.parse((await envelope(w)).value) as { keepers: { keeper_a: { status: object } } };
    expect(value.keepers.keeper_a.status).toMatchObject({ forceFail: true });
  });

  it("gives up after a bounded number of conflicts, writing nothing", async () => {
    const w = await world({
      kv: (kv): StolonKv => ({
        get: (key, opts) => kv.get(key, opts),
        list: (prefix, opts) => kv.list(prefix, opts),
        async cas(key, value, index, flags) {
          await w.stolon.tick();
          return kv.cas(key, value, index, flags);
        },
      }),
    });
    await expect(w.drive(w.backend.failkeeper("pg", "keeper_a"), { stepMs: 100 })).rejects.toThrow(
      /changed under every one of 8 check-and-set attempts; nothing was written/,
    );
    expect(JSON.parse((await envelope(w)).value).keepers.keeper_a.status.forceFail).toBeUndefined();
  });

  it("no eligible standby: refused at pre-flight, with why for each standby", async () => {
    const w = await world();
    w.stolon.noSyncStandby(true);
    await w.elapse(5000);
    const preflight = await w.drive(w.backend.preflight("pg"));
    expect(preflight.refusal).toMatch(/no standby is eligible/);
    expect(preflight.refusal).toMatch(/keeper_b: 2465792 bytes behind the master/);
    expect(preflight.eligible).toEqual([]);
  });

  it("an unparseable cluster data is refused at pre-flight and never written", async () => {
    const w = await world();
    await w.stolon.corrupt();
    const corrupt = (await envelope(w)).value;
    const preflight = await w.drive(w.backend.preflight("pg"));
    expect(preflight.refusal).toMatch(/the cluster data is not JSON/);
    await expect(w.backend.failkeeper("pg", "keeper_a")).rejects.toThrow(StolonRefusal);
    await expect(w.backend.failkeeper("pg", "keeper_a")).rejects.toThrow(
      /not written: the cluster data is not JSON/,
    );
    expect((await envelope(w)).value).toBe(corrupt);
  });

  it("follows until the timeout, saying what it saw, when no standby can take over", async () => {
    const w = await world();
    w.stolon.noSyncStandby(true);
    await w.elapse(5000);
    const old = w.stolon.master();
    await w.backend.failkeeper("pg", old.keeper);
    const change = await w.drive(w.backend.waitForNewMaster("pg", old, 30_000));
    expect(change.outcome).toBe("timeout");
    if (change.outcome !== "timeout") return;
    expect(change.durationMs).toBeGreaterThanOrEqual(30_000);
    expect(change.saw).toMatch(/master still keeper_a \(database 5a363897\)/);
    expect(w.stolon.master()).toEqual(old);
  });

  it("a keeper going down loses its info key once its session expires, and comes back", async () => {
    const w = await world();
    w.stolon.keeperDown("keeper_c");
    await w.elapse(25_000);
    const down = await w.drive(w.backend.status("pg"));
    expect(down.live.keepers).toEqual(["keeper_a", "keeper_b"]);
    expect(down.keepers.find((k) => k.uid === "keeper_c")).toMatchObject({ live: false, healthy: false });
    expect(down.standbys.find((s) => s.keeper === "keeper_c")?.notEligible).toBe("not healthy");
    w.stolon.keeperUp("keeper_c");
    await w.elapse(10_000);
    const up = await w.drive(w.backend.status("pg"));
    expect(up.live.keepers).toContain("keeper_c");
    expect(up.standbys.find((s) => s.keeper === "keeper_c")?.eligible).toBe(true);
  });
});

describe("lossless writes with a Flags value past 2^53 and fields Stolon's structs do not have", () => {
  it.skipIf(!referenceDir())(
    "the written JSON equals the read JSON but for forceFail; Flags are kept exactly",
    async () => {
      const w = await world();
      w.stolon.pause();
      await w.stolon.idle();
      const flags = "18446744073709551557"; // the largest 64-bit prime: far past 2^53
      const sample = readFileSync(
        join(referenceDir()!, "stolon", "clusterdata.constructed.json"),
        "utf8",
      ).replace(
        '"formatVersion": 1,',
        '"formatVersion": 1, "someFutureField": {"counter": 9007199254740993, "list": [1.50, "x"]},',
      );
      const put = await fetch(`${w.consul.url}/v1/kv/${w.stolon.clusterDataKey}?flags=${flags}`, {
        method: "PUT",
        body: sample,
      });
      expect(await put.text()).toBe("true");
      await w.backend.failkeeper("pg", "keeper_a");
      const after = await envelope(w);
      expect(after.flags).toBe(flags);
      expect(after.text).toContain(`"Flags":${flags}`);
      const read = parse(sample);
      const written = parse(after.value);
      expect(getPath(written, "keepers.keeper_a.status.forceFail")).toBe(true);
      deletePath(written, "keepers.keeper_a.status.forceFail");
      expect(written).toEqual(read);
      expect(after.value).toContain('"counter":9007199254740993');
      expect(after.value).toContain('"list":[1.50,"x"]');
    },
  );
});
