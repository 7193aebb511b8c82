import Consul from "consul";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { ReachabilityMonitor, type Probe } from "../../src/alerts/sources/reachability.js";
import { DirectoryUnavailableError } from "../../src/auth/directory.js";
import { NomadClient } from "../../src/backends/nomad/client.js";
import { ManualClock } from "../../src/clock.js";
import { startConsulDouble, type ConsulDouble } from "../../src/sandbox/consul/index.js";
import { startNomadDouble, type NomadDouble } from "../../src/sandbox/nomad/index.js";
import type { FileStateStore } from "../../src/state/file-store.js";
import { eventually, recordingSink, silentLog, tempStore, type RecordingSink } from "./sources-support.js";

/** Probes through the real clients against the Nomad and Consul doubles; the directory is scripted. */

const INTERVAL = 15_000;

let nomad: NomadDouble | undefined;
let consulDouble: ConsulDouble;
let clock: ManualClock;
const cleanup: Array<() => Promise<void> | void> = [];

beforeEach(async () => {
  clock = new ManualClock();
  nomad = await startNomadDouble({ now: () => clock.now() });
  consulDouble = await startConsulDouble();
});

afterEach(async () => {
  for (const step of cleanup.splice(0).reverse()) await step();
  await nomad?.close();
  await consulDouble.close();
});

interface Harness {
  monitor: ReachabilityMonitor;
  sink: RecordingSink;
  store: FileStateStore;
  /** Probes answered (or failed) so far, per backend. */
  done: Map<string, number>;
  /** What the scripted directory does: undefined = answers, a string = fails with it, "hang" = never answers. */
  directory: { fails: string | undefined };
}

async function setUp(store?: FileStateStore): Promise<Harness> {
  const nomadClient = new NomadClient({
    address: nomad?.url ?? "",
    namespace: "default",
    timeoutMs: 5_000,
    clock,
  });
  const url = new URL(consulDouble.url);
  const consul = new Consul({ host: url.hostname, port: Number(url.port) });
  cleanup.push(
    () => nomadClient.close(),
    () => consul.destroy(),
  );
  const directory: Harness["directory"] = { fails: undefined };
  const done = new Map<string, number>();
  const counted = (probe: Probe): Probe => ({
    ...probe,
    check: (signal) =>
      probe.check(signal).finally(() => done.set(probe.backend, (done.get(probe.backend) ?? 0) + 1)),
  });
  const raw: Probe[] = [
    { backend: "nomad", label: "Nomad", check: async () => void (await nomadClient.jobs()) },
    { backend: "consul", label: "Consul", check: async () => void (await consul.status.leader()) },
    {
      backend: "directory",
      label: "The directory",
      check: (signal) => {
        if (directory.fails === "hang")
          return new Promise((_, reject) =>
            signal.addEventListener("abort", () => reject(new Error("aborted"))),
          );
        if (directory.fails !== undefined)
          return Promise.reject(new DirectoryUnavailableError(directory.fails));
        return Promise.resolve();
      },
    },
  ];
  const probes = raw.map(counted);
  const sink = recordingSink();
  const actualStore = store ?? (await tempStore()).store;
  const monitor = new ReachabilityMonitor({
    probes,
    clock,
    sink: sink.sink,
    log: silentLog,
    store: actualStore,
    intervalMs: INTERVAL,
    thresholdMs: 60_000,
    timeoutMs: 10_000,
  });
  cleanup.push(() => monitor.stop());
  await monitor.start();
  await eventually(() => done.size === 3, "the first probes");
  return { monitor, sink, store: actualStore, done, directory };
}

/** One probing interval: advance the clock, then wait until every backend's probe has finished. */
async function round(h: Harness, backends = ["nomad", "consul", "directory"]): Promise<void> {
  const before = new Map(h.done);
  await clock.advance(INTERVAL);
  await eventually(
    () => backends.every((b) => (h.done.get(b) ?? 0) > (before.get(b) ?? 0)),
    `the probes of ${backends.join(", ")}`,
  );
}

describe("reachability of majordome's own dependencies", () => {
  it("says a backend is unreachable only after the threshold, with the error, and when it answers again", async () => {
    const h = await setUp();
    for (let i = 0; i < 4; i++) await round(h);
    expect(h.sink.signals).toEqual([]);

    consulDouble.unavailable(true);
    for (let i = 0; i < 4; i++) await round(h);
    expect(h.sink.signals).toEqual([]);
    await round(h);
    expect(h.sink.lines()).toEqual(["backend-unreachable firing consul"]);
    expect(h.sink.signals[0]?.reason).toMatch(/^Consul has not answered for 1 minute: \S/);
    expect(h.monitor.statuses().find((s) => s.backend === "consul")).toMatchObject({
      reachable: false,
      reported: true,
    });

    // Still down: said once.
    for (let i = 0; i < 3; i++) await round(h);
    expect(h.sink.signals.length).toBe(1);

    consulDouble.unavailable(false);
    await round(h);
    expect(h.sink.lines()).toEqual([
      "backend-unreachable firing consul",
      "backend-unreachable resolved consul",
    ]);
    expect(h.sink.signals[1]?.reason).toBe("Consul answers again after 2 minutes");
  });

  it("keeps short blips quiet", async () => {
    const h = await setUp();
    h.directory.fails = "LDAP server ldap://127.0.0.1:3890 did not answer";
    for (let i = 0; i < 3; i++) await round(h);
    h.directory.fails = undefined;
    for (let i = 0; i < 6; i++) await round(h);
    expect(h.sink.signals).toEqual([]);
  });

  it("says what the client said, and counts a probe without an answer as a failure", async () => {
    const h = await setUp();
    const address = nomad?.url ?? "";
    await nomad?.close();
    nomad = undefined;
    h.directory.fails = "hang";
    for (let i = 0; i < 5; i++) {
      await clock.advance(INTERVAL);
      await eventually(() => (h.done.get("consul") ?? 0) > i + 1, "the consul probe");
    }
    // The hanging directory probes time out on the clock.
    for (let i = 0; i < 4; i++) await clock.advance(INTERVAL);
    await eventually(() => h.sink.signals.length === 2, "both reports");
    const byBackend = new Map(h.sink.signals.map((s) => [s.subject.backend, s.reason]));
    expect(byBackend.get("nomad")).toMatch(
      `Nomad has not answered for 1 minute: Nomad is unreachable at ${address}`,
    );
    expect(byBackend.get("directory")).toMatch(
      /^The directory has not answered for .*: no answer within 10 seconds$/,
    );
  });

  it("resolves after a restart what it reported before", async () => {
    const first = await setUp();
    first.directory.fails = "LDAP server ldap://127.0.0.1:3890 did not answer";
    for (let i = 0; i < 5; i++) await round(first);
    expect(first.sink.lines()).toEqual(["backend-unreachable firing directory"]);
    await first.monitor.stop();

    const second = await setUp(first.store);
    await eventually(() => second.sink.signals.length === 1, "the resolution");
    expect(second.sink.lines()).toEqual(["backend-unreachable resolved directory"]);
    expect(second.sink.signals[0]?.reason).toMatch(/^The directory answers again after/);
  });
});
