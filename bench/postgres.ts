/**
 * The `!db` primitives end to end against a throwaway PostgreSQL: create a role and its database,
 * prove the credentials, drop both; each step and the whole cycle (p50 over the runs).
 */
import { generatePassword, PostgresBackend } from "../src/backends/postgres.js";
import { startThrowawayPostgres } from "../src/sandbox/postgres.js";
import { percentile } from "./stats.js";

const RUNS = 20;
const STEPS = ["createRole", "createDatabase", "canConnect", "dropDatabase", "dropRole"] as const;
type Step = (typeof STEPS)[number];

async function timed<T>(samples: number[], run: () => Promise<T>): Promise<T> {
  const start = performance.now();
  const result = await run();
  samples.push(performance.now() - start);
  return result;
}

async function cycle(backend: PostgresBackend, name: string, steps: Record<Step, number[]>): Promise<void> {
  const password = generatePassword();
  await timed(steps.createRole, () => backend.createRole(name, password));
  await timed(steps.createDatabase, () => backend.createDatabase(name, name));
  const works = await timed(steps.canConnect, () => backend.canConnect(name, password, name));
  if (!works) throw new Error(`role ${name} could not connect to its database`);
  await timed(steps.dropDatabase, () => backend.dropDatabase(name));
  await timed(steps.dropRole, () => backend.dropRole(name));
}

export async function benchPostgresPrimitives(): Promise<Record<string, number>> {
  const startSamples: number[] = [];
  const server = await timed(startSamples, () => startThrowawayPostgres());
  const backend = new PostgresBackend({
    host: server.host,
    port: server.port,
    user: server.adminUser,
    password: server.adminPassword,
    database: server.database,
  });
  try {
    await cycle(backend, "warmup", emptySteps()); // connect the pool, warm the catalog caches
    const steps = emptySteps();
    const cycles: number[] = [];
    for (let i = 0; i < RUNS; i++) await timed(cycles, () => cycle(backend, `bench_${i}`, steps));
    const figures: Record<string, number> = {
      "postgres.throwaway.start_ms": percentile(startSamples, 50),
      "postgres.provision_cycle.p50_ms": percentile(cycles.sort(byValue), 50),
      "postgres.provision_cycle.max_ms": percentile(cycles, 100),
    };
    for (const step of STEPS) figures[`postgres.${step}.p50_ms`] = percentile(steps[step].sort(byValue), 50);
    figures["postgres.samples"] = RUNS;
    return figures;
  } finally {
    await backend.close();
    await server.stop();
  }
}

function emptySteps(): Record<Step, number[]> {
  return Object.fromEntries(STEPS.map((step) => [step, [] as number[]])) as Record<Step, number[]>;
}

function byValue(a: number, b: number): number {
  return a - b;
}
