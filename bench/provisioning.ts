/**
 * `!db create` end to end against a real throwaway PostgreSQL (p50 of 20, split into the time spent in
 * PostgreSQL calls and majordome's own), and `!bucket create` against the Garage and Consul doubles.
 * majordome runs in process here, so its backends can be timed from the inside.
 */
import { mkdtemp } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import pino from "pino";
import { startMajordome } from "../src/app.js";
import { loadPolicies } from "../src/auth/policy.js";
import { YamlDirectory } from "../src/auth/yaml-directory.js";
import { PostgresBackend } from "../src/backends/postgres.js";
import { SystemClock } from "../src/clock.js";
import { configSchema } from "../src/config/schema.js";
import { startConsulDouble } from "../src/sandbox/consul/index.js";
import { startGarageDouble } from "../src/sandbox/garage/index.js";
import { postgresConfig, startThrowawayPostgres } from "../src/sandbox/postgres.js";
import { repoRoot } from "../test/support/paths.js";
import { DOMAIN, startWorld } from "../test/support/world.js";
import { percentile } from "./stats.js";

const RUNS = 20;

export async function benchProvisioning(): Promise<Record<string, number>> {
  const world = await startWorld();
  const consul = await startConsulDouble();
  const garage = await startGarageDouble({ adminToken: "bench" });
  const pg = await startThrowawayPostgres();
  // Time spent inside PostgreSQL calls, wherever majordome makes them.
  let inPostgres = 0;
  const methods = [
    "roleExists",
    "databaseExists",
    "createRole",
    "setRolePassword",
    "createDatabase",
    "canConnect",
    "info",
  ] as const;
  const proto = PostgresBackend.prototype as unknown as Record<
    string,
    (...args: unknown[]) => Promise<unknown>
  >;
  const originals = methods.map((m) => [m, proto[m]!] as const);
  for (const [m, original] of originals) {
    proto[m] = async function (this: unknown, ...args: unknown[]) {
      const t0 = performance.now();
      try {
        return await original.apply(this, args);
      } finally {
        inPostgres += performance.now() - t0;
      }
    };
  }
  const app = await startMajordome({
    config: configSchema.parse({
      matrix: {
        homeserver_url: world.hs.url,
        access_token: world.bot.accessToken,
        user_domain: DOMAIN,
        command_rooms: [world.roomId],
      },
      consul: { address: consul.url },
      postgres: postgresConfig(pg),
      garage: {
        admin_url: garage.adminUrl,
        admin_token: "bench",
        s3_endpoint: garage.s3Url,
        s3_region: garage.region,
      },
      state: { path: await mkdtemp(join(tmpdir(), "majordome-bench-")), fsync: false },
      policies_dir: join(repoRoot(), "policies"),
    }),
    clock: new SystemClock(),
    log: pino({ level: "silent" }),
    directory: new YamlDirectory(),
    policies: await loadPolicies(join(repoRoot(), "policies")),
    http: false,
  });
  await app.synced();
  const run = async (line: string) => {
    const t0 = performance.now();
    const command = world.say("alice", line);
    while (!app.handled(command)) await new Promise((r) => setImmediate(r));
    await app.outbox.drained();
    const reply = world
      .repliesTo(command)
      .map((r) => String((r.content as { body?: string }).body))
      .join("");
    if (!/created/.test(reply)) throw new Error(`${line}: ${reply}`);
    return performance.now() - t0;
  };
  try {
    const total: number[] = [];
    const postgresTime: number[] = [];
    for (let i = 0; i < RUNS; i++) {
      inPostgres = 0;
      total.push(await run(`!db create bench_${i}`));
      postgresTime.push(inPostgres);
    }
    const own = total.map((t, i) => t - postgresTime[i]!);
    const buckets: number[] = [];
    for (let i = 0; i < RUNS; i++) buckets.push(await run(`!bucket create bench-${i}`));
    const sort = (xs: number[]) => [...xs].sort((a, b) => a - b);
    return {
      "db_create.total.p50_ms": percentile(sort(total), 50),
      "db_create.postgres.p50_ms": percentile(sort(postgresTime), 50),
      "db_create.majordome.p50_ms": percentile(sort(own), 50),
      "bucket_create.total.p50_ms": percentile(sort(buckets), 50),
      "provisioning.runs": RUNS,
    };
  } finally {
    for (const [m, original] of originals) proto[m] = original;
    await app.stop();
    await pg.stop();
    await garage.close();
    await consul.close();
    await world.close();
  }
}
