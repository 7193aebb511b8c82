import { afterEach, describe, expect, it } from "vitest";
import {
  NOMAD_POSITION_KEY,
  NomadEventSource,
  type NomadEventApi,
  type NomadEventSourceOptions,
} from "../../src/alerts/sources/nomad-stream.js";
import { NomadClient } from "../../src/backends/nomad/client.js";
import { ManualClock } from "../../src/clock.js";
import {
  startNomadDouble,
  type NomadDouble,
  type NomadDoubleOptions,
} from "../../src/sandbox/nomad/index.js";
import type { FileStateStore } from "../../src/state/file-store.js";
import { NomadApi } from "../nomad/api.js";
import {
  advanceBy,
  eventually,
  recordingSink,
  silentLog,
  tempStore,
  type RecordingSink,
} from "./sources-support.js";

/**
 * The stream consumer against the Nomad double's event stream over loopback. The consumer's timers
 * (watchdog, backoff, saves) run on a ManualClock; the double's cluster runs as fast as it can.
 */

const TOKEN = "s3cr3t-stream-token";

let nomad: NomadDouble;
let clock: ManualClock;
const sources: NomadEventSource[] = [];
const clients: NomadClient[] = [];

afterEach(async () => {
  for (const source of sources.splice(0)) await source.stop();
  for (const client of clients.splice(0)) await client.close();
  await nomad.close();
});

interface Harness {
  source: NomadEventSource;
  sink: RecordingSink;
  store: FileStateStore;
  /** The index each stream was opened at. */
  indexes: number[];
}

async function startDouble(options: NomadDoubleOptions = {}): Promise<NomadApi> {
  clock = new ManualClock(Date.parse("2026-03-01T12:00:00Z"));
  nomad = await startNomadDouble({ token: TOKEN, now: () => clock.now(), ...options });
  return new NomadApi(nomad.url, TOKEN);
}

async function startSource(
  options: { store?: FileStateStore; token?: string } & Partial<NomadEventSourceOptions> = {},
): Promise<Harness> {
  const client = new NomadClient({
    address: nomad.url,
    token: options.token ?? TOKEN,
    namespace: "*",
    timeoutMs: 5_000,
    clock,
  });
  clients.push(client);
  const indexes: number[] = [];
  const api: NomadEventApi = {
    eventStream: (topics, index, signal) => {
      indexes.push(index);
      return client.eventStream(topics, index, signal);
    },
    listAllocations: () => client.listAllocations(),
    listNodes: () => client.listNodes(),
    listDeployments: () => client.listDeployments(),
    listJobs: () => client.listJobs(),
  };
  const store = options.store ?? (await tempStore()).store;
  const sink = recordingSink();
  const source = new NomadEventSource({
    nomad: api,
    store,
    clock,
    sink: sink.sink,
    log: silentLog,
    backoff: { initialMs: 1_000, maxMs: 8_000 },
    random: () => 0,
    ...options,
  });
  sources.push(source);
  await source.start();
  return { source, sink, store, indexes };
}

/** The double's latest raft index, from the lists' X-Nomad-Index (every write touches one of them). */
async function latestIndex(api: NomadApi): Promise<number> {
  const paths = ["/v1/allocations", "/v1/nodes", "/v1/deployments", "/v1/jobs", "/v1/evaluations"];
  const answers = await Promise.all(paths.map((p) => api.get(p)));
  return Math.max(...answers.map((a) => Number(a.headers.get("x-nomad-index"))));
}

const connections = (h: Harness) => h.source.stats().connections;
const count = (h: Harness, line: string) => h.sink.lines().filter((l) => l === line).length;

describe("Nomad event stream source", () => {
  it("resumes after a cut at the last index seen, without losing or repeating anything", async () => {
    const api = await startDouble();
    const h = await startSource();
    await eventually(() => connections(h) === 1, "the first stream");
    await api.run("web.hcl");
    await nomad.settle();
    // A crash loop while connected: the allocation gives up after its restart policy's two attempts.
    nomad.failAllocation("web", 3);
    await nomad.settle();
    await eventually(() => h.sink.lines().some((l) => l.startsWith("alloc-failed firing")), "alloc-failed");
    await eventually(
      () => h.sink.lines().some((l) => l.startsWith("alloc-failed resolved")),
      "the replacement",
    );

    // A cut with nothing new: the stream resumes AT the last index (Nomad replays it; dropped).
    const latest = await latestIndex(api);
    await eventually(() => h.source.stats().index === latest, "the stream caught up");
    const before = h.source.stats().index;
    const reported = h.sink.lines().length;
    nomad.cutEventStreams();
    await eventually(() => !h.source.stats().connected, "the cut");
    await advanceBy(clock, 1_000);
    await eventually(() => connections(h) === 2, "the reconnection");
    expect(h.indexes[1]).toBe(before);
    expect(h.sink.lines().length).toBe(reported);

    // A cut during which a node goes down (the source waits out its backoff on the manual clock).
    nomad.cutEventStreams();
    await eventually(() => !h.source.stats().connected, "the second cut");
    const onNode1 = (
      await api.get<Array<{ ID: string; NodeName: string; ClientStatus: string }>>("/v1/allocations")
    ).body
      .filter((a) => a.NodeName === "node-1" && a.ClientStatus === "running")
      .map((a) => a.ID);
    nomad.nodeDown("node-1");
    await nomad.settle();
    await advanceBy(clock, 1_000);
    await eventually(() => connections(h) === 3, "the second reconnection");
    await eventually(() => count(h, "node-down firing node-1") === 1, "node-1 down");
    await eventually(
      () => onNode1.every((id) => count(h, `alloc-lost resolved ${id}`) === 1),
      "the lost allocations replaced",
    );

    const ids = h.sink.signals.map((s) => s.id);
    expect(new Set(ids).size).toBe(ids.length);
    for (const status of ["firing", "resolved"]) {
      const seen = h.sink.signals
        .filter((s) => s.status === status)
        .map((s) => `${s.kind} ${s.subject.alloc ?? s.subject.node}`);
      expect(new Set(seen).size, status).toBe(seen.length);
    }
    expect(onNode1.map((id) => count(h, `alloc-lost firing ${id}`))).toEqual(onNode1.map(() => 1));
  });

  it("treats a stream silent for the watchdog's time as dead and reconnects, catching up", async () => {
    await startDouble();
    const h = await startSource({ watchdogMs: 90_000 });
    await eventually(() => connections(h) === 1, "the first stream");
    nomad.setEventStreamFault("stall");
    nomad.nodeDown("node-2");
    await nomad.settle();
    await advanceBy(clock, 60_000);
    expect([h.source.stats().connected, nomad.eventStreamsOpened()]).toEqual([true, 1]);
    expect(h.sink.lines()).toEqual([]);

    // 90 s without a line: a new stream, and the lists re-read catch up on what the dead one missed.
    await advanceBy(clock, 31_000);
    await eventually(() => nomad.eventStreamsOpened() === 2, "the reconnection");
    await eventually(() => count(h, "node-down firing node-2") === 1, "node-2 down, caught up");
    // The new stream hangs too (the fault is still on): the watchdog sees to it as well.
    expect(connections(h)).toBe(1);
    nomad.setEventStreamFault("none");
    await advanceBy(clock, 91_000);
    await eventually(() => connections(h) === 2, "a stream that works");
    expect(nomad.eventStreamsOpened()).toBe(3);
    expect(count(h, "node-down firing node-2")).toBe(1);
  });

  it("says once that the stream is refused or closed before its first line, and when it works again", async () => {
    await startDouble();
    nomad.setEventStreamFault("close");
    const h = await startSource();
    await eventually(() => h.sink.lines().length === 1, "the report");
    expect(h.sink.lines()).toEqual(["backend-unreachable firing nomad-events"]);
    expect(h.sink.signals[0]?.reason).toMatch(
      /^Nomad closed the event stream before sending anything: .*read-job/,
    );

    // Retries go on, with backoff (1, 2, 4, 8 s then 8 s, halved by the test's jitter), silently.
    for (let i = 0; i < 4; i++) {
      const opened = nomad.eventStreamsOpened();
      await advanceBy(clock, 8_000);
      await eventually(() => nomad.eventStreamsOpened() > opened, `retry ${i + 1}`);
    }
    nomad.setEventStreamFault("forbidden");
    await advanceBy(clock, 8_000, 2);
    expect(h.sink.lines()).toEqual(["backend-unreachable firing nomad-events"]);

    nomad.setEventStreamFault("none");
    await advanceBy(clock, 8_000);
    await eventually(() => h.sink.lines().length === 2, "the recovery");
    expect(h.sink.lines()[1]).toBe("backend-unreachable resolved nomad-events");
    expect(JSON.stringify(h.sink.signals)).not.toContain(TOKEN);
  });

  it("a token Nomad refuses is said once too", async () => {
    await startDouble();
    const h = await startSource({ token: "wrong-token" });
    await eventually(() => h.sink.lines().length === 1, "the report");
    await advanceBy(clock, 8_000, 4);
    expect(h.sink.lines()).toEqual(["backend-unreachable firing nomad-events"]);
    expect(h.sink.signals[0]?.reason).toContain("Permission denied");
    expect(h.sink.signals[0]?.reason).not.toContain("wrong-token");
  });

  it("re-reads the lists after a gap: an event pushed out of Nomad's buffer meanwhile is not missed", async () => {
    const api = await startDouble({ eventBufferSize: 3 });
    const h = await startSource();
    await eventually(() => connections(h) === 1, "the first stream");
    nomad.cutEventStreams();
    await eventually(() => !h.source.stats().connected, "the cut");
    nomad.nodeDown("node-3");
    // Many raft entries later, node-3's event is no longer in the stream's buffer.
    await api.run("web.hcl");
    await nomad.settle();
    await advanceBy(clock, 1_000);
    await eventually(() => connections(h) === 2, "the reconnection");
    await eventually(() => count(h, "node-down firing node-3") === 1, "node-3 down from the lists");
    const signal = h.sink.signals.find((s) => s.kind === "node-down");
    expect(signal?.id).toMatch(/^nomad-sync\//);
  });

  it("saves its position and what it reported: a restart neither repeats nor forgets", async () => {
    await startDouble();
    const first = await startSource({ persist: { everyEvents: 1_000, everyMs: 5_000 } });
    await eventually(() => connections(first) === 1, "the first stream");
    nomad.nodeDown("node-1");
    await eventually(() => count(first, "node-down firing node-1") === 1, "node-1 down");
    const index = first.source.stats().index;
    await first.source.stop();
    expect((await first.store.get<{ index: number }>(NOMAD_POSITION_KEY))?.value.index).toBe(index);

    nomad.nodeUp("node-1");
    const second = await startSource({ store: first.store });
    await eventually(() => connections(second) === 1, "the stream after the restart");
    await eventually(() => second.sink.lines().length > 0, "the recovery");
    expect(second.indexes[0]).toBeGreaterThanOrEqual(index);
    expect(second.sink.lines()).toEqual(["node-down resolved node-1"]);
  });

  it("saves what it reported as of its position: a crash while saving loses no recovery", async () => {
    await startDouble();
    const { store } = await tempStore();
    // The first process dies after this many more writes.
    let writesLeft = Infinity;
    const dying = Object.assign(Object.create(store) as FileStateStore, {
      set: async (key: string, value: unknown) => {
        if (writesLeft <= 0) return;
        writesLeft--;
        await store.set(key, value);
      },
    });
    // What the sink has stored: what it took before the source last asked for it (`durable`).
    const taken = recordingSink();
    let stored: string[] = [];
    let holding = false;
    let release = () => {};
    const first = await startSource({
      store: dying,
      sink: taken.sink,
      persist: { everyEvents: 1_000, everyMs: 5_000 },
      durable: () => {
        if (writesLeft > 0) stored = taken.lines();
        return holding ? new Promise<void>((resolve) => (release = resolve)) : Promise.resolve();
      },
    });
    await eventually(() => connections(first) === 1, "the first stream");
    holding = true;
    nomad.nodeDown("node-1");
    await eventually(() => taken.lines().includes("node-down firing node-1"), "node-1 down");
    await advanceBy(clock, 5_000);
    nomad.nodeUp("node-1");
    await eventually(() => taken.lines().includes("node-down resolved node-1"), "node-1 back");
    // The save under way completes (two records), and the process dies.
    writesLeft = 2;
    holding = false;
    release();
    await eventually(() => writesLeft === 0, "the save");
    await first.source.stop();

    const second = await startSource({ store });
    await eventually(() => second.source.stats().syncs > 0 && connections(second) === 1, "the restart");
    await nomad.settle();
    await advanceBy(clock, 1_000);
    expect([...stored, ...second.sink.lines()]).toEqual([
      "node-down firing node-1",
      "node-down resolved node-1",
    ]);
  });

  it("stops promptly, even in the middle of a stream", async () => {
    await startDouble();
    const h = await startSource();
    await eventually(() => connections(h) === 1, "the first stream");
    const started = Date.now();
    await h.source.stop();
    expect(Date.now() - started).toBeLessThan(500);
    expect(h.source.stats().connected).toBe(false);
  });
});
