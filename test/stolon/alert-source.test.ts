/**
 * The Stolon alert source against the Consul double and the sentinel double (cluster data shaped
 * after the CONSTRUCTED samples in shared/reference/stolon/, from Stolon's Go struct tags), on a
 * manual clock: master changes and keepers that stop reporting become signals, and a restart only
 * reports what changed since.
 */
import { mkdtemp } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import pino from "pino";
import { afterEach, describe, expect, it } from "vitest";
import type { Signal } from "../../src/alerts/signal.js";
import { StolonAlertSource, stolonReportedKey } from "../../src/alerts/sources/stolon.js";
import { FileStateStore } from "../../src/state/file-store.js";
import type { StateStore } from "../../src/state/store.js";
import { startStolonWorld, type StolonWorld } from "./support.js";

const cleanups: Array<() => Promise<unknown>> = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

interface Setup {
  w: StolonWorld;
  store: StateStore;
  signals: Signal[];
  start(): Promise<StolonAlertSource>;
}

async function setup(keeperGoneAfterMs = 30_000): Promise<Setup> {
  const w = await startStolonWorld();
  cleanups.push(() => w.close());
  const store = await FileStateStore.open(await mkdtemp(join(tmpdir(), "majordome-stolon-alerts-")), {
    fsync: false,
  });
  cleanups.push(() => store.close());
  const signals: Signal[] = [];
  let current: StolonAlertSource | undefined;
  return {
    w,
    store,
    signals,
    async start() {
      await current?.stop();
      const source = new StolonAlertSource({
        kv: w.kv,
        prefix: "stolon/cluster",
        clusters: ["pg"],
        store,
        clock: w.clock,
        sink: async (signal) => void signals.push(signal),
        log: pino({ level: "silent" }),
        keeperGoneAfterMs,
      });
      await source.start();
      cleanups.push(() => source.stop());
      current = source;
      return source;
    },
  };
}

const summary = (signals: Signal[]) => signals.map((s) => `${s.kind} ${s.status} ${s.subject.keeper}`);

describe("Stolon alert source", () => {
  it("signals a master change naming the old and new keeper, resolved once the new master is healthy", async () => {
    const s = await setup();
    await s.start();
    await s.w.elapse(10_000);
    expect(s.signals).toEqual([]);
    await s.w.backend.failkeeper("pg", "keeper_a");
    await s.w.elapse(15_000);
    const elected = s.w.stolon.master().keeper;
    expect(elected).not.toBe("keeper_a");
    expect(summary(s.signals)).toEqual([
      `stolon-master-changed firing ${elected}`,
      `stolon-master-changed resolved ${elected}`,
    ]);
    const [firing, resolved] = s.signals;
    expect(firing!.subject).toEqual({ cluster: "pg", keeper: elected });
    expect(firing!.reason).toMatch(
      new RegExp(`from keeper keeper_a \\(database 5a363897\\) to keeper ${elected}`),
    );
    expect(resolved!.reason).toMatch(/is healthy/);
    expect(resolved!.at).toBeGreaterThan(firing!.at);
    expect((await s.store.get(stolonReportedKey("pg")))?.value).toMatchObject({
      master: { keeper: elected },
      masterChange: { from: { keeper: "keeper_a" }, resolved: true },
      gone: [],
    });
  });

  it("signals a keeper gone when its info key disappears, and back when it reports again", async () => {
    const s = await setup();
    await s.start();
    await s.w.elapse(5_000);
    s.w.stolon.keeperDown("keeper_c");
    await s.w.elapse(10_000);
    expect(s.signals).toEqual([]);
    // Its TTL session (10 s, which Consul doubles) expires 20 s after the last refresh: the key goes.
    await s.w.elapse(15_000);
    expect(summary(s.signals)).toEqual(["keeper-gone firing keeper_c"]);
    expect(s.signals[0]!.reason).toMatch(/info key is gone/);
    await s.w.elapse(30_000);
    expect(s.signals).toHaveLength(1);
    s.w.stolon.keeperUp("keeper_c");
    await s.w.elapse(10_000);
    expect(summary(s.signals)).toEqual(["keeper-gone firing keeper_c", "keeper-gone resolved keeper_c"]);
    expect(s.signals[1]!.reason).toMatch(/updated again/);
  });

  it("a keeper whose info key is still there but no longer refreshed is gone after the configured time", async () => {
    const s = await setup(12_000);
    await s.start();
    await s.w.elapse(5_000);
    s.w.stolon.keeperDown("keeper_b");
    await s.w.elapse(16_000);
    expect(summary(s.signals)).toEqual(["keeper-gone firing keeper_b"]);
    expect(s.signals[0]!.reason).toMatch(/has not been updated for 1\d s/);
  });

  it("after a restart, reports only what changed while it was stopped", async () => {
    const s = await setup();
    const first = await s.start();
    await s.w.elapse(5_000);
    s.w.stolon.keeperDown("keeper_b");
    await s.w.elapse(45_000);
    expect(summary(s.signals)).toEqual(["keeper-gone firing keeper_b"]);
    await first.stop();

    // While stopped: keeper_b comes back and the master fails over.
    s.w.stolon.keeperUp("keeper_b");
    await s.w.backend.failkeeper("pg", "keeper_a");
    await s.w.elapse(15_000);
    const elected = s.w.stolon.master().keeper;
    s.signals.length = 0;
    await s.start();
    await s.w.elapse(10_000);
    expect(summary(s.signals).sort()).toEqual(
      [
        "keeper-gone resolved keeper_b",
        `stolon-master-changed firing ${elected}`,
        `stolon-master-changed resolved ${elected}`,
      ].sort(),
    );

    // Nothing new: a third start says nothing.
    s.signals.length = 0;
    await s.start();
    await s.w.elapse(10_000);
    expect(s.signals).toEqual([]);
  });
});
