/**
 * The crash harness (issue #8): majordome is killed with SIGKILL at named crash points and at seeded
 * random points during a pending approval, an approval arriving, a deployment, a database and a bucket
 * being created; a restart, or the standby taking over, must leave nothing done twice, nothing lost and
 * nothing half-made, and every command in flight must end visibly. The seed is printed:
 * CRASH_SEED=<n> replays the same kill points (random delays land where the machine's speed puts them);
 * CRASH_SCENARIO="db create" runs one scenario; CRASH_VERBOSE=1 prints the room around each finding.
 */
import { cp, mkdtemp } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startGarageDouble, type GarageDouble } from "../../src/sandbox/garage/index.js";
import { startNomadDouble, type NomadDouble } from "../../src/sandbox/nomad/index.js";
import {
  describeKill,
  Lane,
  SCENARIOS,
  seededRandom,
  STORM_NODES,
  shuffled,
  type KillPoint,
  type LaneBackends,
  type Scenario,
  type TrialResult,
} from "../support/crash-harness.js";
import { repoRoot } from "../support/paths.js";
import { connectTo, startThrowawayPostgres, type ThrowawayPostgres } from "../support/postgres.js";
import { startRecordingProxy, type RecordingProxy } from "../support/recording-proxy.js";

const SEED = Number(process.env.CRASH_SEED ?? Math.floor(Math.random() * 2 ** 31));
/** CRASH_SCENARIO="db create" runs one scenario's kill points (to look into a failure faster). */
const ONLY = process.env.CRASH_SCENARIO;
/** Random kill points per scenario, on top of its named ones. */
const RANDOM_PER_SCENARIO = 7;
/** Lanes for everything but the alert storm, which has one of its own. */
const LANES: Array<"restart" | "takeover"> = ["restart", "takeover", "restart"];
const GARAGE_TOKEN = "crash-harness-admin-token";

let pg: ThrowawayPostgres;
let nomad: NomadDouble;
let garage: GarageDouble;
const proxies: RecordingProxy[] = [];

beforeAll(async () => {
  pg = await startThrowawayPostgres();
  // Every DDL statement goes to the server's log, where the checks count CREATE DATABASE and CREATE ROLE.
  const admin = await connectTo(pg);
  await admin.query("ALTER SYSTEM SET log_statement = 'ddl'");
  await admin.query("SELECT pg_reload_conf()");
  await admin.end();
  nomad = await startNomadDouble({ stepMs: 5 });
  garage = await startGarageDouble({ adminToken: GARAGE_TOKEN });
}, 60_000);

afterAll(async () => {
  for (const proxy of proxies) await proxy.close();
  await garage?.close();
  await nomad?.close();
  await pg?.stop();
});

/** The shared backends behind proxies of the lane's own, and `cluster` as its Nomad. */
async function backends(cluster: NomadDouble): Promise<LaneBackends> {
  const jobsDir = await mkdtemp(join(tmpdir(), "majordome-crash-jobs-"));
  await cp(join(repoRoot(), "src", "sandbox", "jobs"), jobsDir, { recursive: true });
  const nomadProxy = await startRecordingProxy(
    cluster.url,
    (method, path) => method === "POST" && path.startsWith("/v1/jobs"),
  );
  const garageProxy = await startRecordingProxy(garage.adminUrl, (method) => method === "POST");
  proxies.push(nomadProxy, garageProxy);
  return { nomad: cluster, nomadProxy, garage, garageProxy, garageToken: GARAGE_TOKEN, pg, jobsDir };
}

/** Every named point of every scenario, and seeded random ones: a delay, or the n-th message sent. */
function killPlan(random: () => number): Array<{ scenario: Scenario; kill: KillPoint }> {
  const plan: Array<{ scenario: Scenario; kill: KillPoint }> = [];
  for (const scenario of SCENARIOS) {
    if (ONLY && scenario.name !== ONLY) continue;
    for (const at of scenario.namedPoints) plan.push({ scenario, kill: { kind: "named", at } });
    for (let i = 0; i < RANDOM_PER_SCENARIO; i++) {
      const kill: KillPoint =
        i % 2 === 0
          ? { kind: "delay", ms: Math.floor(random() * scenario.windowMs) }
          : { kind: "named", at: `message-sent#${1 + Math.floor(random() * scenario.messages)}` };
      plan.push({ scenario, kill });
    }
  }
  return shuffled(plan, random);
}

function summary(results: TrialResult[]): string {
  const rows = SCENARIOS.map((scenario) => {
    const of = results.filter((r) => r.scenario === scenario.name);
    const killed = of.filter((r) => r.killed);
    const count = (pick: (r: TrialResult) => string[]) => of.reduce((n, r) => n + pick(r).length, 0);
    return [
      scenario.name,
      String(killed.length),
      String(killed.filter((r) => r.recovery === "takeover").length),
      String(of.length - killed.length),
      String(count((r) => r.findings.doubles)),
      String(count((r) => r.findings.losses)),
      String(count((r) => r.findings.halfMade)),
    ];
  });
  const header = [
    "scenario",
    "kills",
    "of which takeovers",
    "not reached",
    "double executions",
    "losses",
    "half-made",
  ];
  const total = header.map((_, i) =>
    i === 0 ? "total" : String(rows.reduce((n, row) => n + Number(row[i]), 0)),
  );
  const table = [header, ...rows, total];
  const widths = header.map((_, i) => Math.max(...table.map((row) => row[i]!.length)));
  return table.map((row) => row.map((cell, i) => cell.padEnd(widths[i]!)).join(" | ")).join("\n");
}

describe("crash harness", () => {
  it("≥ 50 kills: nothing ran twice, nothing lost, nothing half-made, every command ended visibly", async () => {
    console.log(`crash harness seed ${SEED} (CRASH_SEED=${SEED} replays these kill points)`);
    const plan = killPlan(seededRandom(SEED));
    const general = plan.filter((trial) => !trial.scenario.alerts);
    const lanes = await Promise.all(
      LANES.map(async (mode, i) => Lane.start(String.fromCharCode(97 + i), mode, await backends(nomad))),
    );
    // Incidents come from Nomad's whole event stream: the storm has a Nomad of its own.
    const stormNomad = await startNomadDouble({ stepMs: 5, nodes: STORM_NODES });
    const stormLane = await Lane.start("s", "restart", await backends(stormNomad), { alerts: true });
    const work: Array<[Lane, typeof plan]> = [
      ...lanes.map((lane, i): [Lane, typeof plan] => [
        lane,
        general.filter((_, k) => k % lanes.length === i),
      ]),
      [stormLane, plan.filter((trial) => trial.scenario.alerts)],
    ];
    const results: TrialResult[] = [];
    try {
      await Promise.all(
        work.map(async ([lane, trials]) => {
          for (const { scenario, kill } of trials) {
            const result = await lane.run(scenario, kill);
            results.push(result);
            console.log(
              `lane ${lane.id} (${lane.mode}): ${scenario.name} at ${describeKill(kill)}: ` +
                `${result.killed ? "killed" : "not reached"}, ${result.ms} ms`,
            );
          }
        }),
      );
    } finally {
      await Promise.all([...lanes, stormLane].map((lane) => lane.close()));
      await stormNomad.close();
    }
    console.log(`\n${summary(results)}\n`);
    const problems = results.flatMap((r) =>
      [...r.findings.doubles, ...r.findings.losses, ...r.findings.halfMade].map(
        (p) => `${r.scenario} killed at ${describeKill(r.kill)} (${r.recovery}): ${p}`,
      ),
    );
    expect(problems, `seed ${SEED}`).toEqual([]);
    if (!ONLY) expect(results.filter((r) => r.killed).length).toBeGreaterThanOrEqual(50);
  }, 300_000);
});
