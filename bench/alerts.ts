/**
 * Alerts: (1) the pipeline's throughput on 100,000 Nomad event lines (the corpus is constructed from
 * the reference samples' payload shapes and the wire strings of nomad-enums.json: see
 * bench/nomad-corpus.ts), next to bare JSON.parse of the same lines (the medians of interleaved
 * rounds); (2) a storm: a node with 500 allocations goes down in the Nomad double, through a real
 * majordome process: time until the room shows it, messages, peak memory, nothing lost; (3) latency
 * from a critical event entering the double's stream to its message being sent.
 */
import { mkdtemp } from "node:fs/promises";
import { readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import pino from "pino";
import { AlertEngine } from "../src/alerts/engine.js";
import { DEFAULT_RULES } from "../src/alerts/rules.js";
import { NomadEventSource, type NomadEventApi } from "../src/alerts/sources/nomad-stream.js";
import { parseStreamLine } from "../src/backends/nomad/client.js";
import { Outbox } from "../src/chat/outbox.js";
import { ManualClock } from "../src/clock.js";
import { startNomadDouble, type NomadDouble } from "../src/sandbox/nomad/index.js";
import { FileStateStore } from "../src/state/file-store.js";
import type { ClientEvent } from "../src/sandbox/homeserver/index.js";
import { spawnMajordome, waitHealthy } from "../test/support/process.js";
import { RecordingTransport } from "../test/support/recording-transport.js";
import { startWorld, writeWorldConfig, type World } from "../test/support/world.js";
import { CORPUS_START_MS, nomadEventCorpus } from "./nomad-corpus.js";
import { percentile } from "./stats.js";

const CORPUS_LINES = 100_000;
const STORM_ALLOCATIONS = 500;
const LATENCY_RUNS = 50;

export async function benchAlerts(): Promise<Record<string, number>> {
  return { ...(await throughput()), ...(await stormAndLatency()) };
}

/** Rounds of each measure; their medians are compared (one round varies by 10% on a shared machine). */
const THROUGHPUT_ROUNDS = 5;

async function throughput(): Promise<Record<string, number>> {
  const lines = nomadEventCorpus({ lines: CORPUS_LINES });
  const bare: number[] = [];
  const pipeline: number[] = [];
  let last = { signals: 0, openIncidents: 0 };
  // Interleaved, so a slow spell of the machine weighs on both.
  for (let round = 0; round < THROUGHPUT_ROUNDS; round++) {
    const t0 = performance.now();
    for (const line of lines) JSON.parse(line);
    bare.push((performance.now() - t0) / 1000);
    const run = await pipelineOnce(lines);
    pipeline.push(run.seconds);
    last = run;
  }
  const bareRate = CORPUS_LINES / median(bare);
  const pipelineRate = CORPUS_LINES / median(pipeline);
  return {
    "alerts.corpus.lines": CORPUS_LINES,
    "alerts.corpus.signals": last.signals,
    "alerts.corpus.open_incidents": last.openIncidents,
    "alerts.json_parse.lines_per_s": Math.round(bareRate),
    "alerts.pipeline.lines_per_s": Math.round(pipelineRate),
    "alerts.pipeline.share_of_bare_parse": Number((pipelineRate / bareRate).toFixed(2)),
    // The first round includes compiling the pipeline's code (JSON.parse is native: nothing to warm).
    "alerts.pipeline.first_round_share": Number((bare[0]! / pipeline[0]!).toFixed(2)),
    "alerts.throughput.rounds": THROUGHPUT_ROUNDS,
  };
}

/** The whole pipeline over the corpus, from a fresh state: stream source → rules → engine → store and outbox. */
async function pipelineOnce(
  lines: readonly string[],
): Promise<{ seconds: number; signals: number; openIncidents: number }> {
  // The engine's clock starts where the corpus does, so its events are news, not history.
  const clock = new ManualClock(CORPUS_START_MS);
  const log = pino({ level: "silent" });
  const store = await FileStateStore.open(await mkdtemp(join(tmpdir(), "bench-alerts-")), { fsync: false });
  const outbox = new Outbox(
    store,
    new RecordingTransport(),
    clock,
    { outbox_retry_min: 10, outbox_retry_max: 100, rate_limit_wait_max: 1000 },
    log,
  );
  await outbox.load();
  outbox.start();
  const engine = new AlertEngine({
    store,
    outbox,
    clock,
    log,
    roomId: "!alerts:bench",
    rules: DEFAULT_RULES,
    timings: {
      groupWaitMs: 30_000,
      groupIntervalMs: 300_000,
      repeatIntervalMs: 4 * 3600_000,
      editIntervalMs: 2_000,
      reactionSilenceMs: 3600_000,
      historyMs: 7 * 24 * 3600_000,
    },
    mayAct: async () => ({ allowed: true }),
    onCall: async () => [],
    runCommand: async () => {},
  });
  await engine.load();
  let signals = 0;
  let finished: () => void = () => {};
  const done = new Promise<void>((resolve) => (finished = resolve));
  let streamed = false;
  // The stream as the Nomad client delivers it: one parsed line at a time (parsing counts).
  const api: NomadEventApi = {
    async *eventStream(_topics, _index, signal) {
      if (streamed) return void (await new Promise((resolve) => signal.addEventListener("abort", resolve)));
      streamed = true;
      for (const line of lines) yield parseStreamLine(line);
      finished();
      await new Promise((resolve) => signal.addEventListener("abort", resolve));
    },
    listAllocations: async () => ({ value: [], index: 1 }),
    listNodes: async () => ({ value: [], index: 1 }),
    listDeployments: async () => ({ value: [], index: 1 }),
    listJobs: async () => ({ value: [], index: 1 }),
  };
  const source = new NomadEventSource({
    nomad: api,
    store,
    clock,
    log,
    sink: (signal) => {
      signals++;
      return engine.offer(signal);
    },
    durable: () => engine.flush(),
  });
  const t0 = performance.now();
  await source.start();
  await done;
  await engine.flush();
  const pipelineSeconds = (performance.now() - t0) / 1000;
  await source.stop();
  engine.stop();
  await outbox.stop();
  await store.close();
  return { seconds: pipelineSeconds, signals, openIncidents: engine.openIncidents().length };
}

const median = (values: readonly number[]): number =>
  percentile(
    [...values].sort((a, b) => a - b),
    50,
  );

const STORM_JOB = `
job "storm" {
  datacenters = ["dc1"]
  group "app" {
    count = ${STORM_ALLOCATIONS}
    task "app" {
      driver = "docker"
      config { image = "nginx:1.27" }
      resources {
        cpu    = 10
        memory = 10
      }
    }
  }
}
`;

async function register(nomad: NomadDouble, hcl: string): Promise<void> {
  const parsed = await fetch(`${nomad.url}/v1/jobs/parse`, {
    method: "POST",
    body: JSON.stringify({ JobHCL: hcl, Canonicalize: true }),
  });
  if (!parsed.ok) throw new Error(`parse: ${parsed.status} ${await parsed.text()}`);
  const job: unknown = await parsed.json();
  const registered = await fetch(`${nomad.url}/v1/jobs`, {
    method: "POST",
    body: JSON.stringify({ Job: job }),
  });
  if (!registered.ok) throw new Error(`register: ${registered.status} ${await registered.text()}`);
}

function body(event: ClientEvent): string {
  const content = event.content as { body?: string; "m.new_content"?: { body?: string } };
  return String(content["m.new_content"]?.body ?? content.body ?? "");
}

function peakRssMb(pid: number): number {
  const line = readFileSync(`/proc/${pid}/status`, "utf8").match(/VmHWM:\s+(\d+) kB/);
  return line ? Number((Number(line[1]) / 1024).toFixed(1)) : NaN;
}

async function stormAndLatency(): Promise<Record<string, number>> {
  const world = await startWorld();
  const big = { cpuMhz: 100_000, memoryMb: 100_000 };
  const nomad = await startNomadDouble({
    stepMs: 0,
    nodes: [
      { name: "big", ...big },
      { name: "spare", ...big },
      { name: "tiny", cpuMhz: 100, memoryMb: 100 },
    ],
  });
  const { path, healthUrl } = await writeWorldConfig(world, {
    sections: {
      matrix: {
        homeserver_url: world.hs.url,
        access_token: world.bot.accessToken,
        user_domain: "deuxfleurs.fr",
        command_rooms: [world.roomId],
        alert_room: world.roomId,
      },
      nomad: { address: nomad.url },
    },
  });
  // Everything lands on "big": the others are down while the job is placed.
  nomad.nodeDown("spare");
  nomad.nodeDown("tiny");
  await register(nomad, STORM_JOB);
  await nomad.settle();
  nomad.nodeUp("spare");
  nomad.nodeUp("tiny");
  await nomad.settle();
  const bot = spawnMajordome(path);
  try {
    await waitHealthy(healthUrl, 30_000);
    // The event stream is followed once the first re-read of the lists is done: let it settle.
    await new Promise((resolve) => setTimeout(resolve, 1_500));
    const storm = await measureStorm(world, nomad, bot.child.pid!);
    const latency = await measureLatency(world, nomad);
    return { ...storm, ...latency };
  } finally {
    await bot.kill();
    await nomad.close();
    await world.close();
  }
}

async function measureStorm(world: World, nomad: NomadDouble, pid: number): Promise<Record<string, number>> {
  const from = world.hs.timeline(world.roomId).length;
  const t0 = performance.now();
  nomad.nodeDown("big");
  const shown = await world.waitFor((e) => /node big is down/.test(body(e)), 30_000);
  const shownMs = performance.now() - t0;
  await nomad.settle();
  // Quiet for longer than the edit interval: every update has been sent.
  await new Promise((resolve) => setTimeout(resolve, 5_000));
  const sent = world.hs
    .timeline(world.roomId)
    .slice(from)
    .filter((e) => e.sender === world.bot.userId);
  const messages = sent.filter((e) => e.type === "m.room.message");
  const relation = (e: ClientEvent) =>
    (e.content as { "m.relates_to"?: { rel_type?: string; event_id?: string } })["m.relates_to"];
  const edits = messages.filter((e) => relation(e)?.rel_type === "m.replace");
  const latest = [...edits].reverse().find((e) => relation(e)?.event_id === shown.event_id) ?? shown;
  const affected = Number(body(latest).match(/Affected: (\d+)/)?.[1] ?? 0);
  return {
    "alerts.storm.allocations": STORM_ALLOCATIONS,
    "alerts.storm.shown_after_ms": Math.round(shownMs),
    "alerts.storm.messages": messages.length,
    "alerts.storm.messages.posts": messages.length - edits.length,
    "alerts.storm.messages.edits": edits.length,
    "alerts.storm.affected_in_incident": affected,
    "alerts.storm.lost": Math.max(0, STORM_ALLOCATIONS + 1 - affected),
    "alerts.storm.majordome_peak_rss_mb": peakRssMb(pid),
  };
}

async function measureLatency(world: World, nomad: NomadDouble): Promise<Record<string, number>> {
  const samples: number[] = [];
  for (let i = 0; i < LATENCY_RUNS; i++) {
    const before = new Set(world.hs.timeline(world.roomId).map((e) => e.event_id));
    const after = (e: ClientEvent) => !before.has(e.event_id);
    const t0 = performance.now();
    nomad.nodeDown("tiny");
    await world.waitFor((e) => after(e) && /CRITICAL.*node tiny is down/.test(body(e)), 10_000);
    samples.push(performance.now() - t0);
    nomad.nodeUp("tiny");
    await world.waitFor((e) => after(e) && /RESOLVED.*node tiny is down/.test(body(e)), 10_000);
  }
  const sorted = [...samples].sort((a, b) => a - b);
  return {
    "alerts.latency.critical_to_sent.p50_ms": percentile(sorted, 50),
    "alerts.latency.critical_to_sent.p99_ms": percentile(sorted, 99),
    "alerts.latency.runs": LATENCY_RUNS,
  };
}
