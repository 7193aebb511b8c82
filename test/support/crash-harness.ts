/**
 * The crash harness: majordome processes sharing the doubles (through recording proxies) and a real
 * PostgreSQL are killed with SIGKILL at named crash points (armed in a running process through
 * MAJORDOME_CRASH_FILE, see src/crash.ts) or after a seeded random delay, in the middle of a scenario.
 * Then a restarted process (or the standby, which takes over) must finish or report what was in
 * flight, and the scenario's checks count what ran twice, what was lost, and what was left half-made.
 */
import { rename, writeFile, mkdtemp, readFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { ClientEvent } from "../../src/sandbox/homeserver/index.js";
import type { GarageDouble } from "../../src/sandbox/garage/index.js";
import type { NomadDouble } from "../../src/sandbox/nomad/index.js";
import { startFleet, type Fleet, type Instance } from "./fleet.js";
import { connectTo, postgresConfig, type ThrowawayPostgres } from "./postgres.js";
import type { RecordingProxy } from "./recording-proxy.js";

// ---------------------------------------------------------------------------------------------------
// Seeded randomness

/** So that CRASH_SEED replays the same kill points. */
export { seededRandom } from "./random.js";

export function shuffled<T>(items: T[], random: () => number): T[] {
  const out = [...items];
  for (let i = out.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    [out[i], out[j]] = [out[j]!, out[i]!];
  }
  return out;
}

// ---------------------------------------------------------------------------------------------------
// Reading the room

export const textOf = (e: ClientEvent): string => String((e.content as { body?: unknown }).body ?? "");

interface Relation {
  rel_type?: string;
  event_id?: string;
  key?: string;
  "m.in_reply_to"?: { event_id?: string };
}
export const relationOf = (e: ClientEvent): Relation | undefined =>
  (e.content as { "m.relates_to"?: Relation })["m.relates_to"];

/** A bot message's text as it reads now (its latest edit). */
export function currentText(events: ClientEvent[], message: ClientEvent): string {
  const edits = events.filter(
    (e) => relationOf(e)?.rel_type === "m.replace" && relationOf(e)?.event_id === message.event_id,
  );
  const last = edits.at(-1);
  return last
    ? String((last.content as { "m.new_content"?: { body?: string } })["m.new_content"]?.body ?? "")
    : textOf(message);
}

// ---------------------------------------------------------------------------------------------------
// Trials

export type KillPoint = { kind: "named"; at: string } | { kind: "delay"; ms: number };

export const describeKill = (kill: KillPoint): string =>
  kill.kind === "named" ? kill.at : `random ${kill.ms} ms`;

export interface Findings {
  doubles: string[];
  losses: string[];
  halfMade: string[];
}

export interface TrialResult {
  scenario: string;
  kill: KillPoint;
  recovery: "restart" | "takeover";
  /** Whether the process died at that point (a named point a scenario never reaches does not kill). */
  killed: boolean;
  findings: Findings;
  ms: number;
}

/** What a scenario works with: the lane's processes and doubles, and a name unique to this trial. */
export interface TrialContext {
  readonly lane: Lane;
  readonly name: string;
  readonly world: Fleet["world"];
  /** Scenario-specific state between its phases. */
  state: Record<string, string>;
}

export interface Scenario {
  readonly name: string;
  /** Every named crash point this scenario passes (armed once each). */
  readonly namedPoints: string[];
  /** How many messages it sends at most after being armed (for random `message-sent#n` points). */
  readonly messages: number;
  /** Random delays are drawn in [0, window) ms after `act`. */
  readonly windowMs: number;
  /** Runs in a lane whose instances post incidents (alerts on, a Nomad double of its own). */
  readonly alerts?: boolean;
  /** Unarmed set-up (a job to stop, a request to approve). */
  prepare?(t: TrialContext): Promise<void>;
  /** What the kill interrupts. */
  act(t: TrialContext): Promise<void>;
  /** After recovery: drive the scenario to its end (approve a request...) and wait for the visible end. */
  finish(t: TrialContext): Promise<void>;
  check(t: TrialContext): Promise<Findings>;
}

// ---------------------------------------------------------------------------------------------------
// Backends shared by a lane's processes

export interface LaneBackends {
  nomad: NomadDouble;
  nomadProxy: RecordingProxy;
  garage: GarageDouble;
  garageProxy: RecordingProxy;
  garageToken: string;
  pg: ThrowawayPostgres;
  jobsDir: string;
}

const SETTLE_MS = 12_000;

/**
 * One room, one Consul, the shared backends, and majordome processes taking turns: the one acting is
 * armed and killed; a restart ("restart": leader lock off, a new process started after the kill) or
 * the warm standby ("takeover": leader lock on) carries on.
 */
export class Lane {
  private active: Instance | undefined;
  private standby: Instance | undefined;
  private spawned = 0;
  private trials = 0;

  private constructor(
    readonly id: string,
    readonly mode: "restart" | "takeover",
    readonly fleet: Fleet,
    readonly backends: LaneBackends,
    private readonly dir: string,
  ) {}

  static async start(
    id: string,
    mode: "restart" | "takeover",
    backends: LaneBackends,
    opts: { alerts?: boolean } = {},
  ): Promise<Lane> {
    const fleet = await startFleet({
      leader: mode === "takeover",
      // Only the leader lock needs time sped up (Consul's 10 s minimum TTL); a restart runs in real time.
      speed: mode === "takeover" ? 10 : 1,
      // Incidents come quickly (group_wait) and are posted in the room.
      ...(opts.alerts ? { alerts: { enabled: true, group_wait: "1s", group_interval: "5s" } } : {}),
      sections: {
        nomad: { address: backends.nomadProxy.url, jobs_dir: backends.jobsDir },
        garage: {
          admin_url: backends.garageProxy.url,
          admin_token: backends.garageToken,
          s3_endpoint: backends.garage.s3Url,
          s3_region: backends.garage.region,
        },
        postgres: postgresConfig(backends.pg),
      },
      timings: { deploy_timeout: "10m" },
      recordConsul: (method, path) => method !== "GET" && path.startsWith("/v1/kv/secrets/"),
    });
    // Everyone who will speak joins now: a join later would be an event that trips `event-accepted`.
    for (const user of ["alice", "bob"]) fleet.world.say(user, "hello");
    const lane = new Lane(id, mode, fleet, backends, await mkdtemp(join(tmpdir(), "majordome-crash-")));
    await lane.ready();
    return lane;
  }

  get world(): Fleet["world"] {
    return this.fleet.world;
  }

  /** The instance acting now, healthy; in takeover mode, with a healthy standby behind it. */
  async ready(): Promise<Instance> {
    if (!this.active || this.active.exited()) {
      this.active = await this.spawn();
      await this.active.waitRole("leader", 30_000);
    }
    if (this.mode === "takeover") {
      if (!this.standby || this.standby.exited()) this.standby = await this.spawn();
      await this.standby.waitRole("standby", 30_000);
    }
    return this.active;
  }

  /** After the acting instance died: a new one restarts, or the standby takes over. */
  async recover(): Promise<void> {
    if (this.mode === "restart") {
      this.active = await this.spawn();
      await this.active.waitRole("leader", 30_000);
      return;
    }
    // A new standby starts at once, to be warm before the next kill; it may win the lock instead.
    const candidates = [this.standby!, await this.spawn()];
    let leader: Instance | undefined;
    await eventually(async () => {
      leader = await this.fleet.leader();
      return leader !== undefined && candidates.includes(leader);
    }, 30_000);
    if (!leader) {
      const states = await Promise.all(
        candidates.map(
          async (c) =>
            `${c.name} ${JSON.stringify(await c.health())} exited=${c.exited()}\n${c.process.stderr().slice(-3000)}`,
        ),
      );
      throw new Error(`lane ${this.id}: nobody took over\n${states.join("\n")}`);
    }
    this.active = leader;
    this.standby = candidates.find((c) => c !== leader);
  }

  async run(scenario: Scenario, kill: KillPoint): Promise<TrialResult> {
    const started = Date.now();
    const t: TrialContext = {
      lane: this,
      name: `${this.id}${++this.trials}`,
      world: this.world,
      state: {},
    };
    const victim = await this.ready();
    await scenario.prepare?.(t);
    await this.ready();
    let timer: NodeJS.Timeout | undefined;
    let shot = false;
    if (kill.kind === "named") await this.arm(victim, kill.at);
    await scenario.act(t);
    if (kill.kind === "delay")
      timer = setTimeout(() => {
        shot = true;
        void victim.process.kill("SIGKILL");
      }, kill.ms);
    const died = await Promise.race([
      victim.process.exited.then(() => true),
      scenario.finish(t).then(() => false),
    ]);
    clearTimeout(timer);
    // The delay may run out just as the scenario finishes: then the victim is dying, not spared.
    let killed = died || (shot && (await victim.process.exited.then(() => true)));
    if (!killed) {
      // The scenario ended before the kill point: give a point reached by its last message a moment.
      killed = await Promise.race([
        victim.process.exited.then(() => true),
        sleep(kill.kind === "named" ? 300 : 0).then(() => false),
      ]);
      if (!killed) await this.arm(victim, "");
      if (!killed && process.env.CRASH_VERBOSE) {
        console.log(`not reached ${describeKill(kill)}:`, t.state, answersTo(t, t.state.command ?? ""));
      }
    }
    const diedAt = Date.now();
    if (killed) await this.recover();
    const recoveredAt = Date.now();
    if (killed) await scenario.finish(t).catch(() => undefined);
    const finishedAt = Date.now();
    const findings = await scenario.check(t);
    if (process.env.CRASH_VERBOSE) {
      const phases = [
        diedAt - started,
        recoveredAt - diedAt,
        finishedAt - recoveredAt,
        Date.now() - finishedAt,
      ];
      console.log(
        `${scenario.name} at ${describeKill(kill)}: act→kill, recovery, finish, check: ${phases.join(", ")} ms`,
      );
    }
    const found = [...findings.doubles, ...findings.losses, ...findings.halfMade];
    if (found.length > 0 && process.env.CRASH_VERBOSE) {
      const events = this.world.hs.timeline(this.world.roomId);
      const said = events
        .filter((e) => e.sender === this.world.bot.userId && e.type === "m.room.message")
        .slice(-15)
        .map((e) => textOf(e).split("\n")[0]!.slice(0, 160));
      console.log(`${scenario.name} at ${describeKill(kill)}: ${found.join("; ")}\n  ${said.join("\n  ")}`);
    }
    return {
      scenario: scenario.name,
      kill,
      recovery: this.mode,
      killed,
      findings,
      ms: Date.now() - started,
    };
  }

  async close(): Promise<void> {
    await this.fleet.close();
  }

  private async spawn(): Promise<Instance> {
    const name = `${this.id}-${++this.spawned}`;
    return this.fleet.spawn(name, { MAJORDOME_CRASH_FILE: this.armFile(name) });
  }

  private armFile(instanceName: string): string {
    return join(this.dir, `${instanceName}.arm`);
  }

  /** Written whole (rename), as the process reads it at every crash point. */
  private async arm(instance: Instance, point: string): Promise<void> {
    const file = this.armFile(instance.name);
    await writeFile(`${file}.tmp`, point);
    await rename(`${file}.tmp`, file);
  }
}

// ---------------------------------------------------------------------------------------------------
// Scenarios

/** The bot's messages in the room that answer `eventId` (replies, and replies' edits resolved). */
function answersTo(t: TrialContext, eventId: string): string[] {
  const events = t.world.hs.timeline(t.world.roomId);
  return t.world.repliesTo(eventId).map((reply) => currentText(events, reply));
}

function botMessages(t: TrialContext): ClientEvent[] {
  return t.world.hs
    .timeline(t.world.roomId)
    .filter((e) => e.sender === t.world.bot.userId && e.type === "m.room.message");
}

/** Waits until `predicate` holds, polling; false after `timeoutMs`. */
async function eventually(predicate: () => boolean | Promise<boolean>, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await predicate()) return true;
    if (Date.now() > deadline) return false;
    await sleep(10);
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

const none = (): Findings => ({ doubles: [], losses: [], halfMade: [] });

/** Messages the bot posted twice: same text in reply to (or editing, or in the thread of) the same event. */
function duplicateMessages(t: TrialContext, about: string[]): string[] {
  const seen = new Map<string, number>();
  for (const e of t.world.hs.timeline(t.world.roomId)) {
    if (e.sender !== t.world.bot.userId) continue;
    const rel = relationOf(e);
    const target = rel?.event_id ?? rel?.["m.in_reply_to"]?.event_id;
    if (!target || !about.includes(target)) continue;
    const what =
      e.type === "m.reaction" ? `reaction ${rel?.key}` : `${rel?.rel_type ?? "reply"} ${textOf(e)}`;
    const key = `${target} ${what}`;
    seen.set(key, (seen.get(key) ?? 0) + 1);
  }
  return [...seen].filter(([, n]) => n > 1).map(([key, n]) => `posted ${n} times: ${key.slice(0, 120)}`);
}

/** Successful requests through a proxy that match. */
function successes(proxy: RecordingProxy, method: string, match: (path: string, body: string) => boolean) {
  return proxy.requests.filter(
    (r) => r.method === method && r.status === 200 && match(r.path, r.requestBody ?? ""),
  );
}

/** Successful create-only writes of each secret key under `secrets/<app>/` (Consul answers `true`). */
function secretWrites(t: TrialContext, app: string): Map<string, number> {
  const writes = new Map<string, number>();
  for (const r of t.lane.fleet.consulProxy?.requests ?? []) {
    if (r.method !== "PUT" || !r.path.startsWith(`/v1/kv/secrets/${app}/`)) continue;
    if (r.responseBody?.trim() !== "true") continue;
    const key = r.path.split("?")[0]!;
    writes.set(key, (writes.get(key) ?? 0) + 1);
  }
  return writes;
}

function secretsOnceEach(t: TrialContext, app: string, findings: Findings): void {
  for (const [key, n] of secretWrites(t, app)) {
    if (n > 1) findings.doubles.push(`${key} written ${n} times`);
  }
}

// -- !db create ------------------------------------------------------------------------------------

/**
 * How many times a CREATE statement for `name` succeeded, from the server's log (log_statement = ddl
 * logs each before it runs; one that failed because the object exists is followed by that error).
 */
async function successfulCreates(
  pg: ThrowawayPostgres,
  what: "DATABASE" | "ROLE",
  name: string,
): Promise<number> {
  const lines = (await readFile(pg.logFile, "utf8")).split("\n");
  const ran = lines.filter((line) => line.includes(`statement: CREATE ${what} "${name}"`)).length;
  const refused = lines.filter((line) =>
    line.includes(`ERROR:  ${what.toLowerCase()} "${name}" already exists`),
  ).length;
  return ran - refused;
}

const DB_FINAL = /Database `[a-z0-9_]+` created|already exists|failed|already handled|Not created/;

export const dbCreate: Scenario = {
  name: "db create",
  namedPoints: [
    "event-accepted",
    "step:secrets",
    "step:role",
    "step:database",
    "step:verified",
    "message-sent#2",
  ],
  messages: 2,
  windowMs: 400,
  async act(t) {
    t.state.command = t.world.say("alice", `!db create ${t.name}`);
  },
  async finish(t) {
    await eventually(() => answersTo(t, t.state.command!).some((a) => DB_FINAL.test(a)), SETTLE_MS);
  },
  async check(t) {
    const findings = none();
    const { pg } = t.lane.backends;
    const name = t.name;
    const creates = await successfulCreates(pg, "DATABASE", name);
    const roles = await successfulCreates(pg, "ROLE", name);
    if (creates > 1) findings.doubles.push(`CREATE DATABASE ${name} succeeded ${creates} times`);
    if (roles > 1) findings.doubles.push(`CREATE ROLE ${name} succeeded ${roles} times`);
    secretsOnceEach(t, name, findings);

    const admin = await connectTo(pg);
    try {
      const db = (await admin.query("SELECT 1 FROM pg_database WHERE datname = $1", [name])).rowCount === 1;
      const role = (await admin.query("SELECT 1 FROM pg_roles WHERE rolname = $1", [name])).rowCount === 1;
      const secrets = ["db_user", "db_pass", "db_name"].map((k) =>
        t.lane.fleet.consul.kv(`secrets/${name}/${k}`),
      );
      const present = secrets.filter((s) => s !== undefined).length;
      if (!(db === role && (db ? present === 3 : present === 0))) {
        findings.halfMade.push(`database ${db}, role ${role}, ${present} of 3 secrets`);
      } else if (db) {
        const login = await connectTo(pg, { user: name, password: secrets[1]!, database: name })
          .then((c) => c.end().then(() => true))
          .catch(() => false);
        if (!login) findings.halfMade.push(`${name} cannot log in with the password in Consul`);
      }
    } finally {
      await admin.end();
    }
    expectVisibleEnd(t, DB_FINAL, findings);
    findings.doubles.push(...duplicateMessages(t, [t.state.command!]));
    return findings;
  },
};

/** The command ended in the room: an answer to it, or a report naming its action after a restart. */
function expectVisibleEnd(t: TrialContext, final: RegExp, findings: Findings): void {
  const command = t.state.command!;
  const answered = answersTo(t, command).some((a) => final.test(a));
  const reported = botMessages(t).some(
    (e) => textOf(e).includes(command) && /Resumed after a restart|interrupted by a restart/.test(textOf(e)),
  );
  if (!answered && !reported) findings.losses.push(`no visible end for ${command}`);
}

// -- !bucket create --------------------------------------------------------------------------------

const BUCKET_FINAL = /Bucket `[a-z0-9-]+` created|already exists|failed|already handled|Not created/;

export const bucketCreate: Scenario = {
  name: "bucket create",
  namedPoints: [
    "event-accepted",
    "step:bucket",
    "step:key",
    "step:secrets",
    "step:permissions",
    "step:settings",
    "step:probe",
  ],
  messages: 2,
  windowMs: 250,
  async act(t) {
    t.state.command = t.world.say("alice", `!bucket create ${bucketName(t)} --quota 1G`);
  },
  async finish(t) {
    await eventually(() => answersTo(t, t.state.command!).some((a) => BUCKET_FINAL.test(a)), SETTLE_MS);
  },
  async check(t) {
    const findings = none();
    const { garage, garageProxy, garageToken } = t.lane.backends;
    const name = bucketName(t);
    const field = (body: string, key: string) => {
      try {
        return (JSON.parse(body) as Record<string, unknown>)[key];
      } catch {
        return undefined;
      }
    };
    const buckets = successes(
      garageProxy,
      "POST",
      (p, b) => p.startsWith("/v2/CreateBucket") && field(b, "globalAlias") === name,
    );
    const keys = successes(
      garageProxy,
      "POST",
      (p, b) => p.startsWith("/v2/CreateKey") && field(b, "name") === name,
    );
    if (buckets.length > 1) findings.doubles.push(`CreateBucket ${name} ran ${buckets.length} times`);
    if (keys.length > 1) findings.doubles.push(`CreateKey ${name} ran ${keys.length} times`);
    secretsOnceEach(t, name, findings);

    const bucket = garage.bucketNames().includes(name);
    const listed = (await (
      await fetch(`${garage.adminUrl}/v2/ListKeys`, { headers: { authorization: `Bearer ${garageToken}` } })
    ).json()) as Array<{ id: string; name: string }>;
    const appKeys = listed.filter((k) => k.name === name);
    const consul = t.lane.fleet.consul;
    const secrets = ["s3_access_key", "s3_secret_key", "s3_bucket"].map((k) =>
      consul.kv(`secrets/${name}/${k}`),
    );
    const present = secrets.filter((s) => s !== undefined).length;
    const whole = bucket && appKeys.length === 1 && present === 3 && secrets[0] === appKeys[0]?.id;
    const nothing = !bucket && appKeys.length === 0 && present === 0;
    if (!whole && !nothing) {
      findings.halfMade.push(
        `bucket ${bucket}, ${appKeys.length} key(s) named ${name}, ${present} of 3 secrets`,
      );
    }
    expectVisibleEnd(t, BUCKET_FINAL, findings);
    findings.doubles.push(...duplicateMessages(t, [t.state.command!]));
    return findings;
  },
};

const bucketName = (t: TrialContext) => `bk-${t.name}`;

// -- !deploy ---------------------------------------------------------------------------------------

const DEPLOY_FINAL =
  /is deployed and healthy|deployment (failed|cancelled)|Nothing to deploy|Not deployed|could not be placed|`deploy` failed/;

async function writeJobFile(t: TrialContext, job: string): Promise<void> {
  const template = await readFile(join(t.lane.backends.jobsDir, "web.hcl"), "utf8");
  await writeFile(
    join(t.lane.backends.jobsDir, `${job}.hcl`),
    template
      .replace('job "web"', `job "${job}"`)
      .replace(/min_healthy_time = "10s"/, 'min_healthy_time = "1s"'),
  );
}

function registrations(t: TrialContext, job: string) {
  return successes(t.lane.backends.nomadProxy, "POST", (path, body) => {
    if (path.split("?")[0] !== "/v1/jobs") return false;
    return (JSON.parse(body) as { Job?: { ID?: string } }).Job?.ID === job;
  });
}

export const deploy: Scenario = {
  name: "deploy",
  namedPoints: ["event-accepted", "message-sent#1", "message-sent#2", "message-sent#3", "message-sent#4"],
  messages: 5,
  windowMs: 400,
  async prepare(t) {
    await writeJobFile(t, `web-${t.name}`);
  },
  async act(t) {
    t.state.command = t.world.say("alice", `!deploy web-${t.name}`);
  },
  async finish(t) {
    await eventually(() => answersTo(t, t.state.command!).some((a) => DEPLOY_FINAL.test(a)), SETTLE_MS);
  },
  async check(t) {
    const findings = none();
    const job = `web-${t.name}`;
    const registered = registrations(t, job).length;
    if (registered > 1) findings.doubles.push(`${job} registered ${registered} times`);
    expectVisibleEnd(t, DEPLOY_FINAL, findings);
    findings.doubles.push(...duplicateMessages(t, [t.state.command!]));
    return findings;
  },
};

// -- approvals (!stop) -----------------------------------------------------------------------------

const REQUEST_END = /\*\*(Done|Failed|Not run|Rejected|Expired)\*\*/;

/** A job that runs, registered straight in the Nomad double from web.hcl, so that `!stop` has something to stop. */
export async function runningJob(
  nomad: NomadDouble,
  jobsDir: string,
  job: string,
  file = "web.hcl",
): Promise<void> {
  const hcl = (await readFile(join(jobsDir, file), "utf8")).replace('job "web"', `job "${job}"`);
  const parsed = await fetch(`${nomad.url}/v1/jobs/parse`, {
    method: "POST",
    body: JSON.stringify({ JobHCL: hcl, Canonicalize: true }),
  });
  const spec = (await parsed.json()) as object;
  const registered = await fetch(`${nomad.url}/v1/jobs`, {
    method: "POST",
    body: JSON.stringify({ Job: spec }),
  });
  if (registered.status !== 200) throw new Error(`could not register ${job}: ${await registered.text()}`);
  await nomad.settle();
}

function requestMessages(t: TrialContext): ClientEvent[] {
  return t.world.repliesTo(t.state.command!).filter((e) => /Approval needed/.test(textOf(e)));
}

function deregistrations(t: TrialContext, job: string) {
  return successes(t.lane.backends.nomadProxy, "DELETE", (path) => path.split("?")[0] === `/v1/job/${job}`);
}

async function approve(t: TrialContext): Promise<void> {
  const [request] = requestMessages(t);
  if (!request) return;
  if (!t.state.reaction) t.state.reaction = t.world.react("bob", request.event_id, "✅");
}

/** The request ended (its message edited to a final status), or its action was reported interrupted. */
function requestEnded(t: TrialContext): boolean {
  const [request] = requestMessages(t);
  if (!request) return false;
  const events = t.world.hs.timeline(t.world.roomId);
  if (REQUEST_END.test(currentText(events, request))) return true;
  const id = /Request `([^`]+)`/.exec(textOf(request))?.[1];
  return (
    !!id && botMessages(t).some((e) => textOf(e).includes(id) && /interrupted by a restart/.test(textOf(e)))
  );
}

async function checkApproval(t: TrialContext): Promise<Findings> {
  const findings = none();
  const job = t.state.job!;
  const requests = requestMessages(t);
  if (requests.length === 0) findings.losses.push(`no approval request for ${t.state.command}`);
  if (requests.length > 1) findings.doubles.push(`${requests.length} approval requests for one command`);
  const stops = deregistrations(t, job).length;
  if (stops > 1) findings.doubles.push(`${job} stopped ${stops} times`);
  const request = requests[0];
  if (request) {
    const events = t.world.hs.timeline(t.world.roomId);
    const now = currentText(events, request);
    if (!requestEnded(t)) findings.losses.push(`approval lost: the request reads "${now.split("\n")[0]}"`);
    if (/\*\*Done\*\*/.test(now) && stops !== 1)
      findings.losses.push(`the request says done, ${job} stopped ${stops} times`);
    findings.doubles.push(...duplicateMessages(t, [t.state.command!, request.event_id]));
  }
  return findings;
}

/** Killed while the request is being opened; once recovered, bob approves and the stop runs once. */
export const pendingApproval: Scenario = {
  name: "pending approval",
  namedPoints: ["event-accepted", "message-sent#1", "message-sent#2", "message-sent#3", "message-sent#4"],
  messages: 4,
  windowMs: 150,
  async prepare(t) {
    t.state.job = `stop-${t.name}`;
    await runningJob(t.lane.backends.nomad, t.lane.backends.jobsDir, t.state.job);
  },
  async act(t) {
    t.state.command = t.world.say("alice", `!stop ${t.state.job}`);
  },
  async finish(t) {
    // The request and its offered reactions (a missing offer is a finding, not a reason not to vote),
    // then bob's ✅, then its end.
    await eventually(() => requestMessages(t).length > 0, SETTLE_MS);
    await eventually(() => offers(t) >= 2, 2_000);
    await approve(t);
    await eventually(() => requestEnded(t), SETTLE_MS);
  },
  async check(t) {
    const findings = await checkApproval(t);
    if (requestMessages(t).length > 0 && offers(t) < 2) {
      findings.losses.push(`the request was posted with ${offers(t)} of its 2 offered reactions`);
    }
    return findings;
  },
};

function offers(t: TrialContext): number {
  const [request] = requestMessages(t);
  return request ? t.world.botReactionsTo(request.event_id).length : 0;
}

/** The request is open (no kill); killed while bob's ✅ is counted and the approved stop runs. */
export const approvalArriving: Scenario = {
  name: "approval arriving",
  namedPoints: ["event-accepted", "message-sent#1", "message-sent#2", "message-sent#3"],
  messages: 3,
  windowMs: 120,
  async prepare(t) {
    t.state.job = `stop-${t.name}`;
    await runningJob(t.lane.backends.nomad, t.lane.backends.jobsDir, t.state.job);
    t.state.command = t.world.say("alice", `!stop ${t.state.job}`);
    await eventually(() => requestMessages(t).length > 0 && offers(t) >= 2, SETTLE_MS);
  },
  async act(t) {
    await approve(t);
  },
  async finish(t) {
    await eventually(() => requestEnded(t), SETTLE_MS);
  },
  check: checkApproval,
};

// -- an alert storm --------------------------------------------------------------------------------

const STORM_JOB = "storm";
/** Nodes of the storm's Nomad double: each trial takes one down that no trial took down before. */
export const STORM_NODES = Array.from({ length: 16 }, (_, i) => ({ name: `node-${i + 1}` }));
const downed = new WeakMap<Lane, Set<string>>();

/** The node never taken down that runs most of the storm job's allocations. */
async function nodeToTakeDown(t: TrialContext): Promise<string> {
  const used = downed.get(t.lane) ?? new Set<string>();
  downed.set(t.lane, used);
  const res = await fetch(`${t.lane.backends.nomad.url}/v1/job/${STORM_JOB}/allocations`);
  const allocs = (await res.json()) as Array<{ NodeName?: string; ClientStatus?: string }>;
  const load = new Map<string, number>();
  for (const a of allocs) {
    if (a.ClientStatus === "running" && a.NodeName) load.set(a.NodeName, (load.get(a.NodeName) ?? 0) + 1);
  }
  const candidates = STORM_NODES.map((n) => n.name).filter((n) => !used.has(n));
  const node = candidates.sort((a, b) => (load.get(b) ?? 0) - (load.get(a) ?? 0))[0];
  if (!node) throw new Error("no node left to take down: give the storm's Nomad double more nodes");
  used.add(node);
  return node;
}

/** Bot messages (not edits) that open an incident, with their first line. */
function incidentMessages(t: TrialContext): ClientEvent[] {
  return botMessages(t).filter(
    (e) => relationOf(e)?.rel_type !== "m.replace" && /— incident `[^`]+`/.test(textOf(e)),
  );
}

const incidentId = (text: string) => /— incident `([^`]+)`/.exec(text)?.[1];
const titleLine = (text: string) => text.split("\n")[0]!.replace(/ — firing since.*$/, "");

/**
 * A node goes down under a job with six allocations while others are OOM-killed: a burst of events on
 * Nomad's stream, grouped into incidents. Killed while they are being posted, the next instance must
 * announce what the dead one had not, and nothing twice.
 */
export const alertStorm: Scenario = {
  name: "alert storm",
  namedPoints: ["message-sent#1", "message-sent#2", "message-sent#3"],
  messages: 3,
  // The whole storm is posted within tens of milliseconds.
  windowMs: 60,
  alerts: true,
  async prepare(t) {
    const { nomad, jobsDir } = t.lane.backends;
    if (!nomad.jobs().includes(STORM_JOB)) {
      const hcl = (await readFile(join(jobsDir, "web.hcl"), "utf8")).replace("count = 2", "count = 6");
      await writeFile(join(jobsDir, `${STORM_JOB}.hcl`), hcl.replace('job "web"', `job "${STORM_JOB}"`));
      await runningJob(nomad, jobsDir, STORM_JOB, `${STORM_JOB}.hcl`);
    }
    t.state.node = await nodeToTakeDown(t);
    t.state.before = String(incidentMessages(t).length);
  },
  async act(t) {
    const { nomad } = t.lane.backends;
    nomad.nodeDown(t.state.node!);
    for (let i = 0; i < 3; i++) {
      try {
        nomad.oomKill(STORM_JOB);
      } catch {
        // no running allocation left to kill right now
      }
    }
  },
  async finish(t) {
    await eventually(() => nodeDownShown(t), SETTLE_MS);
  },
  async check(t) {
    const findings = none();
    if (!nodeDownShown(t)) findings.losses.push(`no incident says node ${t.state.node} is down`);
    const fresh = incidentMessages(t).slice(Number(t.state.before));
    const byTitle = new Map<string, number>();
    for (const e of fresh) byTitle.set(titleLine(textOf(e)), (byTitle.get(titleLine(textOf(e))) ?? 0) + 1);
    for (const [title, n] of byTitle) if (n > 1) findings.doubles.push(`announced ${n} times: ${title}`);
    const ids = new Map<string, number>();
    for (const e of incidentMessages(t)) {
      const id = incidentId(textOf(e));
      if (id) ids.set(id, (ids.get(id) ?? 0) + 1);
    }
    for (const [id, n] of ids) if (n > 1) findings.doubles.push(`incident ${id} posted ${n} times`);
    // The node returns and its incident resolves.
    t.lane.backends.nomad.nodeUp(t.state.node!);
    if (!(await eventually(() => !nodeDownShown(t), SETTLE_MS))) {
      findings.losses.push(`node ${t.state.node} is back, and its incident still says it is down`);
    }
    await t.lane.backends.nomad.settle();
    return findings;
  },
};

/** An incident message reads, now, that the node is down (firing, not resolved). */
function nodeDownShown(t: TrialContext): boolean {
  const events = t.world.hs.timeline(t.world.roomId);
  return incidentMessages(t).some((e) => {
    const now = currentText(events, e).split("\n")[0]!.replace(/\\(.)/g, "$1");
    return now.includes(`node ${t.state.node} is down`) && !now.includes("RESOLVED");
  });
}

export const SCENARIOS: Scenario[] = [
  pendingApproval,
  approvalArriving,
  deploy,
  dbCreate,
  bucketCreate,
  alertStorm,
];
