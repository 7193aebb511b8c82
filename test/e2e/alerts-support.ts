/**
 * The alert room end to end: majordome in process on a ManualClock, the homeserver double for the room
 * (the alert room is the command room), the Nomad double (its event stream), and when a test asks for
 * them the Consul double (health checks) and the Stolon double (a cluster kept by its sentinel double,
 * shaped after the CONSTRUCTED samples in shared/reference/stolon/, not a capture). Every timer of
 * majordome and of the Stolon double runs on the ManualClock, which the test advances; what travels over
 * loopback happens in real time in between.
 */
import { cp, mkdtemp, readFile, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import pino from "pino";
import { startMajordome, type Majordome } from "../../src/app.js";
import { loadPolicies } from "../../src/auth/policy.js";
import { YamlDirectory } from "../../src/auth/yaml-directory.js";
import { ManualClock } from "../../src/clock.js";
import { configSchema } from "../../src/config/schema.js";
import { startConsulDouble, type ConsulDouble } from "../../src/sandbox/consul/index.js";
import type { ClientEvent } from "../../src/sandbox/homeserver/index.js";
import { startNomadDouble, type NomadDouble } from "../../src/sandbox/nomad/index.js";
import { startStolonDouble, type StolonDouble } from "../../src/sandbox/stolon.js";
import { NomadApi } from "../nomad/api.js";
import { repoRoot } from "../support/paths.js";
import { DOMAIN, handledBy, startWorld, type World } from "../support/world.js";

export interface AlertRoomOptions {
  consul?: boolean;
  stolon?: boolean;
  /** Overrides of the config's `alerts` section. */
  alerts?: Record<string, unknown>;
  /** Simulated nodes of the Nomad double (default node-1..node-3). */
  nodes?: Array<{ name: string; cpuMhz?: number; memoryMb?: number }>;
}

export interface AlertRoom {
  w: World;
  clock: ManualClock;
  nomad: NomadDouble;
  /** The Nomad double's HTTP API, for what people do outside majordome (`nomad job run`). */
  nomadApi: NomadApi;
  consul: ConsulDouble;
  stolon: StolonDouble;
  app: Majordome;
  jobsDir: string;
  /** Registers a job file of the jobs directory through the Nomad API, as an operator would. */
  runJob(name: string, variables?: Record<string, string | number>): Promise<void>;
  /** The job's allocations as Nomad lists them. */
  allocations(job: string): Promise<NomadAlloc[]>;
  /** Stops majordome and starts it again on the same state directory. */
  restart(): Promise<void>;
  stop(): Promise<void>;
  start(): Promise<void>;
  /** A person says a command; resolves with majordome's replies once it has handled it. */
  ask(user: string, line: string): Promise<string>;
  /** Same, with the command's event and the reply events. */
  command(user: string, line: string): Promise<{ eventId: string; replies: ClientEvent[] }>;
  /** The keys of the bot's reactions to a message. */
  offers(eventId: string): string[];
  /**
   * A person reacts to a message; resolves once majordome has handled the reaction (advancing the clock
   * by `stepMs` meanwhile, for what waits on it, such as a pre-flight watching the Stolon sentinel).
   */
  react(user: string, eventId: string, key: string, opts?: { stepMs?: number }): Promise<void>;
  /** Moves the clock in steps (a second by default), letting the doubles and loopback I/O keep up. */
  advance(ms: number, stepMs?: number): Promise<void>;
  /** Incident messages (top level, with an incident ID), as first posted. */
  incidents(): ClientEvent[];
  /** The message's text now: its latest edit, or itself. */
  current(eventId: string): string;
  /** How many times the bot edited a message. */
  edits(eventId: string): number;
  /** Waits (advancing the clock by `stepMs` between looks, if given) for an incident message matching. */
  incident(pattern: RegExp, opts?: { stepMs?: number; timeoutMs?: number }): Promise<ClientEvent>;
  /** Waits until the incident message's current text matches. */
  until(eventId: string, pattern: RegExp, opts?: { stepMs?: number; timeoutMs?: number }): Promise<string>;
  /** Waits until `check` holds (advancing the clock by `stepMs` between looks, if given). */
  waitUntil(
    check: () => boolean | Promise<boolean>,
    what: string,
    opts?: { stepMs?: number; timeoutMs?: number },
  ): Promise<void>;
  /** The bot's messages in a thread, in order. */
  thread(rootId: string): ClientEvent[];
  /** Waits for a bot message in a thread matching. */
  inThread(rootId: string, pattern: RegExp, opts?: { stepMs?: number; timeoutMs?: number }): Promise<string>;
}

export interface NomadAlloc {
  ID: string;
  NodeName: string;
  DesiredStatus: string;
  ClientStatus: string;
}

export const body = (e: ClientEvent): string => String((e.content as { body?: unknown }).body ?? "");
export const relation = (e: ClientEvent) =>
  (
    e.content as {
      "m.relates_to"?: { rel_type?: string; event_id?: string; "m.in_reply_to"?: { event_id?: string } };
    }
  )["m.relates_to"];
export const mentionsOf = (e: ClientEvent): string[] =>
  (e.content as { "m.mentions"?: { user_ids?: string[] } })["m.mentions"]?.user_ids ?? [];

const INCIDENT = /incident `i\d+`/;

/** Retries until `condition` holds, polling in real time (for what travels over loopback sockets). */
export async function eventually(condition: () => boolean, what: string, timeoutMs = 8_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 3));
  }
}

/** Job files the tests register, besides the sandbox's own. */
export const JOB_FILES: Record<string, string> = {
  // Restarts generously: a crash loop is a restart loop, not a failed allocation.
  "flaky.hcl": `job "flaky" {
  datacenters = ["dc1"]
  type        = "service"
  group "app" {
    count = 1
    restart {
      attempts = 10
      interval = "30m"
      delay    = "5s"
      mode     = "fail"
    }
    task "app" {
      driver = "docker"
      config {
        image = "example/flaky:1"
      }
      resources {
        cpu    = 100
        memory = 64
      }
    }
  }
}
`,
  // Neither restarted nor rescheduled: one crash and the job is dead.
  "fragile.hcl": `variable "count" {
  type    = number
  default = 1
}
variable "version" {
  type    = string
  default = "1"
}
job "fragile" {
  datacenters = ["dc1"]
  type        = "service"
  meta {
    version = var.version
  }
  group "app" {
    count = var.count
    restart {
      attempts = 0
      mode     = "fail"
    }
    reschedule {
      attempts  = 0
      unlimited = false
    }
    task "app" {
      driver = "docker"
      config {
        image = "example/fragile:1"
      }
      resources {
        cpu    = 100
        memory = 64
      }
    }
  }
}
`,
  // A batch job a drain leaves to finish: while it runs, the node stays draining.
  "batchy.hcl": `job "batchy" {
  datacenters = ["dc1"]
  type        = "batch"
  group "app" {
    count = 1
    task "app" {
      driver = "docker"
      config {
        image = "example/batchy:1"
      }
      resources {
        cpu    = 100
        memory = 64
      }
    }
  }
}
`,
};

export async function startAlertRoom(
  cleanups: Array<() => Promise<unknown>>,
  opts: AlertRoomOptions = {},
): Promise<AlertRoom> {
  const w = await startWorld();
  cleanups.push(() => w.close());
  const clock = new ManualClock(Date.now());
  // Heartbeats every few real milliseconds: however far the clock jumps, the stream is not silent.
  const nomad = await startNomadDouble({
    stepMs: 5,
    now: () => clock.now(),
    heartbeatMs: 5,
    ...(opts.nodes ? { nodes: opts.nodes } : {}),
  });
  cleanups.push(() => nomad.close());
  const consul = opts.consul || opts.stolon ? await startConsulDouble({ now: () => clock.now() }) : undefined;
  if (consul) cleanups.push(() => consul.close());
  const stolon =
    opts.stolon && consul ? await startStolonDouble({ consulUrl: consul.url, clock }) : undefined;
  if (stolon) cleanups.push(() => stolon.close());
  const jobsDir = await mkdtemp(join(tmpdir(), "majordome-alert-jobs-"));
  await cp(join(repoRoot(), "src", "sandbox", "jobs"), jobsDir, { recursive: true });
  for (const [file, text] of Object.entries(JOB_FILES)) await writeFile(join(jobsDir, file), text);
  const stateDir = await mkdtemp(join(tmpdir(), "majordome-alerts-"));
  const policies = await loadPolicies(join(repoRoot(), "policies"));
  const config = configSchema.parse({
    matrix: {
      homeserver_url: w.hs.url,
      access_token: w.bot.accessToken,
      user_domain: DOMAIN,
      command_rooms: [w.roomId],
      alert_room: w.roomId,
    },
    nomad: { address: nomad.url, jobs_dir: jobsDir },
    ...(consul ? { consul: { address: consul.url } } : {}),
    ...(stolon ? { stolon: { clusters: [stolon.cluster] } } : {}),
    state: { path: stateDir, fsync: false },
    timings: { sync_timeout: "2s", deploy_timeout: "10m" },
    alerts: { on_call_group: "admin", ...opts.alerts },
  });

  let app: Majordome | undefined;
  const start = async () => {
    app = await startMajordome({
      config,
      clock,
      log: pino({ level: process.env.MAJORDOME_TEST_LOG ?? "silent" }),
      directory: new YamlDirectory(),
      policies,
      http: false,
    });
    await app.synced();
  };
  const stop = async () => {
    const running = app;
    app = undefined;
    await running?.stop();
  };
  await start();
  cleanups.push(stop);

  const isBot = (e: ClientEvent) => e.sender === w.bot.userId && e.type === "m.room.message";
  const timeline = () => w.hs.timeline(w.roomId);
  const editsOf = (eventId: string) =>
    timeline().filter(
      (e) => isBot(e) && relation(e)?.rel_type === "m.replace" && relation(e)?.event_id === eventId,
    );
  const current = (eventId: string) => {
    const last = editsOf(eventId).at(-1);
    if (last) return String((last.content as { "m.new_content": { body: string } })["m.new_content"].body);
    return body(w.hs.getEvent(w.roomId, eventId)!);
  };
  const incidents = () => timeline().filter((e) => isBot(e) && !relation(e) && INCIDENT.test(body(e)));
  const thread = (rootId: string) =>
    timeline().filter(
      (e) => isBot(e) && relation(e)?.rel_type === "m.thread" && relation(e)?.event_id === rootId,
    );

  const advance = async (ms: number, stepMs = 1000) => {
    for (let left = ms; left > 0; left -= stepMs) {
      await clock.advance(Math.min(stepMs, left));
      await stolon?.idle();
      await new Promise((resolve) => setTimeout(resolve, 2));
    }
  };
  /** Polls `find` in real time, advancing the clock by `stepMs` per look when asked to. */
  const waitFor = async <T>(
    find: () => T | undefined | Promise<T | undefined>,
    what: string,
    { stepMs = 0, timeoutMs = 10_000 }: { stepMs?: number; timeoutMs?: number } = {},
  ): Promise<T> => {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const found = await find();
      if (found !== undefined) return found;
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
      if (stepMs > 0) await advance(stepMs);
      else await new Promise((resolve) => setTimeout(resolve, 3));
    }
  };

  const room: AlertRoom = {
    w,
    clock,
    nomad,
    nomadApi: new NomadApi(nomad.url),
    get consul(): ConsulDouble {
      if (!consul) throw new Error("this test started no Consul double");
      return consul;
    },
    get stolon(): StolonDouble {
      if (!stolon) throw new Error("this test started no Stolon double");
      return stolon;
    },
    get app(): Majordome {
      if (!app) throw new Error("majordome is stopped");
      return app;
    },
    jobsDir,
    async runJob(name, variables = {}) {
      const parsed = await room.nomadApi.post("/v1/jobs/parse", {
        JobHCL: await readFile(join(jobsDir, `${name}.hcl`), "utf8"),
        Canonicalize: true,
        Variables: Object.entries(variables)
          .map(([key, value]) => `${key} = ${JSON.stringify(value)}\n`)
          .join(""),
      });
      if (parsed.status !== 200) throw new Error(`parse ${name}: ${parsed.text}`);
      const registered = await room.nomadApi.post("/v1/jobs", { Job: parsed.body });
      if (registered.status !== 200) throw new Error(`register ${name}: ${registered.text}`);
    },
    async allocations(job) {
      return (await room.nomadApi.get<NomadAlloc[]>(`/v1/job/${job}/allocations`)).body;
    },
    async restart() {
      await stop();
      await start();
    },
    stop,
    start,
    async command(user, line) {
      const eventId = w.say(user, line);
      await handledBy(room.app, eventId);
      return { eventId, replies: w.repliesTo(eventId) };
    },
    async ask(user, line) {
      const { replies } = await room.command(user, line);
      return replies.map(body).join("\n---\n");
    },
    offers: (eventId) =>
      w
        .botReactionsTo(eventId)
        .map((e) => String((e.content["m.relates_to"] as { key?: unknown } | undefined)?.key ?? "")),
    async react(user, eventId, key, opts) {
      const reaction = w.react(user, eventId, key);
      if (opts?.stepMs) await room.waitUntil(() => room.app.handled(reaction), "the reaction handled", opts);
      await handledBy(room.app, reaction);
    },
    advance,
    incidents,
    current,
    edits: (eventId) => editsOf(eventId).length,
    incident: (pattern, opts) =>
      waitFor(
        () => incidents().find((e) => pattern.test(current(e.event_id))),
        `an incident ${pattern}`,
        opts,
      ),
    until: (eventId, pattern, opts) =>
      waitFor(
        () => (pattern.test(current(eventId)) ? current(eventId) : undefined),
        `incident ${eventId} to read ${pattern}`,
        opts,
      ),
    async waitUntil(check, what, opts) {
      await waitFor(async () => ((await check()) ? true : undefined), what, opts);
    },
    thread,
    inThread: (rootId, pattern, opts) =>
      waitFor(
        () =>
          thread(rootId)
            .map(body)
            .find((text) => pattern.test(text)),
        `a message ${pattern} in the thread`,
        opts,
      ),
  };
  return room;
}
