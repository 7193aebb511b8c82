import { afterEach, describe, expect, it } from "vitest";
import {
  CONSUL_CHECKS_KEY,
  ConsulHealthSource,
  consulHealthApi,
  nextIndex,
  type ConsulHealthSourceOptions,
  type HealthStateApi,
} from "../../src/alerts/sources/consul-health.js";
import { ManualClock } from "../../src/clock.js";
import { startConsulDouble, type ConsulDouble } from "../../src/sandbox/consul/index.js";
import type { FileStateStore } from "../../src/state/file-store.js";
import {
  advanceBy,
  eventually,
  recordingSink,
  silentLog,
  tempStore,
  type RecordingSink,
} from "./sources-support.js";

/** The health source against the Consul double's blocking /v1/health/state/any over loopback. */

const CHECK = "garage-garage-1-http";

let consul: ConsulDouble | undefined;
let clock: ManualClock;
const running: Array<{ stop(): Promise<void> }> = [];

afterEach(async () => {
  for (const item of running.splice(0).reverse()) await item.stop();
  await consul?.close();
  consul = undefined;
});

async function startConsul(port = 0, status: "passing" | "critical" = "passing"): Promise<ConsulDouble> {
  consul = await startConsulDouble({ port });
  consul.registerService({
    node: "garage-1",
    service: "garage",
    id: "garage-garage-1",
    port: 3900,
    checks: [{ checkId: CHECK, name: "Garage HTTP", status }],
  });
  return consul;
}

interface Harness {
  source: ConsulHealthSource;
  sink: RecordingSink;
  store: FileStateStore;
  /** The index of every request, in order. */
  indexes: number[];
}

async function startSource(
  options: { store?: FileStateStore } & Partial<ConsulHealthSourceOptions> = {},
): Promise<Harness> {
  if (consul === undefined) throw new Error("start the double first");
  const http = consulHealthApi({ address: consul.url }, clock);
  running.push({ stop: () => http.close() });
  const indexes: number[] = [];
  const api: HealthStateApi = {
    checks: (index, waitMs, signal) => {
      indexes.push(index);
      return http.checks(index, waitMs, signal);
    },
  };
  const store = options.store ?? (await tempStore()).store;
  const sink = recordingSink();
  const source = new ConsulHealthSource({
    api,
    store,
    clock,
    sink: sink.sink,
    log: silentLog,
    waitMs: 10_000,
    minIntervalMs: 1_000,
    random: () => 0,
    ...options,
  });
  running.push(source);
  await source.start();
  return { source, sink, store, indexes };
}

/** Lets the source's minimum interval pass, then waits for its next (blocking) request. */
async function nextRequest(h: Harness): Promise<void> {
  const sent = h.indexes.length;
  await advanceBy(clock, 1_000);
  await eventually(() => h.indexes.length > sent, "the next request");
}

describe("Consul health source", () => {
  it("reports a check going critical and back, with its node, service and output", async () => {
    clock = new ManualClock();
    const double = await startConsul();
    const h = await startSource();
    await eventually(() => h.indexes.length === 1, "the first read");
    await nextRequest(h);
    expect(h.indexes[1]).toBeGreaterThan(0);

    double.setCheck(CHECK, "critical", "dial tcp 10.0.0.1:3900: connection refused\nmore details");
    await eventually(() => h.sink.signals.length === 1, "the firing");
    const [firing] = h.sink.signals;
    expect(firing).toMatchObject({
      kind: "check-critical",
      status: "firing",
      subject: { check: CHECK, node: "garage-1", service: "garage" },
      reason: "Garage HTTP is critical: dial tcp 10.0.0.1:3900: connection refused",
    });

    // Warning neither ends nor raises an alert by default.
    await nextRequest(h);
    double.setCheck(CHECK, "warning", "slow");
    await nextRequest(h);
    double.setCheck(CHECK, "passing");
    await eventually(() => h.sink.signals.length === 2, "the resolution");
    expect(h.sink.lines()).toEqual([`check-critical firing ${CHECK}`, `check-critical resolved ${CHECK}`]);
    await nextRequest(h);
    double.setCheck(CHECK, "warning", "slow again");
    await nextRequest(h);
    expect(h.sink.signals.length).toBe(2);
  });

  it("with warning set to alert, a warning fires like critical", async () => {
    clock = new ManualClock();
    const double = await startConsul();
    const h = await startSource({ warning: "alert" });
    await eventually(() => h.indexes.length === 1, "the first read");
    await nextRequest(h);
    double.setCheck(CHECK, "warning", "disk 91% full");
    await eventually(() => h.sink.signals.length === 1, "the firing");
    expect(h.sink.signals[0]?.reason).toBe("Garage HTTP is warning: disk 91% full");
  });

  it("starts over from index 0 when Consul's index goes backwards (a rebuilt cluster)", async () => {
    clock = new ManualClock();
    const first = await startConsul();
    const h = await startSource({ waitMs: 200 });
    await eventually(() => h.indexes.length === 1, "the first read");
    for (let i = 0; i < 10; i++) first.setCheck(CHECK, i % 2 === 0 ? "warning" : "passing");
    await nextRequest(h);
    const high = h.indexes.at(-1) ?? 0;
    expect(high).toBeGreaterThan(10);

    // The same address, a fresh cluster: its index is far lower, and the check is critical there.
    const port = Number(new URL(first.url).port);
    await first.close();
    consul = undefined;
    const second = await startConsul(port, "critical");
    await advanceBy(clock, 60_000, 6);
    await eventually(() => h.sink.signals.length === 1, "the critical check of the new cluster");
    await nextRequest(h);
    await nextRequest(h);
    const after = h.indexes.slice(h.indexes.lastIndexOf(high) + 1);
    // One plain read at 0 after the index went backwards, then blocking at the new, lower index.
    expect(after.indexOf(0)).toBeGreaterThanOrEqual(0);
    const resumed = after.slice(after.indexOf(0) + 1);
    expect(resumed.length).toBeGreaterThan(0);
    expect(resumed.every((i) => i > 0 && i < high)).toBe(true);
    expect(h.sink.lines()).toEqual([`check-critical firing ${CHECK}`]);
    second.setCheck(CHECK, "passing");
    await eventually(() => h.sink.signals.length === 2, "the resolution on the new cluster");
  });

  it("does not announce again after a restart, and still resolves what it reported", async () => {
    clock = new ManualClock();
    const double = await startConsul(0, "critical");
    const first = await startSource();
    await eventually(() => first.sink.signals.length === 1, "the firing");
    await first.source.stop();
    expect(
      Object.keys((await first.store.get<Record<string, unknown>>(CONSUL_CHECKS_KEY))?.value ?? {}),
    ).toEqual([`garage-1/${CHECK}`]);

    const second = await startSource({ store: first.store });
    await eventually(() => second.indexes.length === 1, "the first read after the restart");
    await nextRequest(second);
    expect(second.sink.signals).toEqual([]);
    double.setCheck(CHECK, "passing");
    await eventually(() => second.sink.signals.length === 1, "the resolution");
    expect(second.sink.lines()).toEqual([`check-critical resolved ${CHECK}`]);
  });

  it("never spins: requests stay apart even when the answers do not block, and 0 is not sent back", async () => {
    clock = new ManualClock();
    const indexes: number[] = [];
    // A proxy that answers at once with index 0, whatever was asked.
    const api: HealthStateApi = {
      checks: async (index) => {
        indexes.push(index);
        return { index: 0, checks: [] };
      },
    };
    const { store } = await tempStore();
    const source = new ConsulHealthSource({
      api,
      store,
      clock,
      sink: recordingSink().sink,
      log: silentLog,
      minIntervalMs: 1_000,
    });
    running.push(source);
    await source.start();
    await advanceBy(clock, 10_000, 100);
    expect(indexes.length).toBeGreaterThanOrEqual(10);
    expect(indexes.length).toBeLessThanOrEqual(11);
    expect(indexes.slice(1).every((i) => i === 1)).toBe(true);
  });

  it("computes the next index by Consul's rules", () => {
    expect(nextIndex(0, 42)).toBe(42);
    expect(nextIndex(42, 42)).toBe(42);
    expect(nextIndex(42, 50)).toBe(50);
    expect(nextIndex(42, 7)).toBe(0);
    expect(nextIndex(42, 0)).toBe(1);
  });
});
