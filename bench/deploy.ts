/**
 * `!deploy` of a three-group job end to end through a real majordome process, against the Nomad double
 * scheduling instantly; and majordome's own CPU time for it: the user + system time of its process
 * (from /proc, so measuring costs it nothing) over all the runs, divided by the runs. What it spends
 * waiting on HTTP does not count.
 */
import { cp, mkdtemp, readFile, writeFile } from "node:fs/promises";
import { readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { startNomadDouble } from "../src/sandbox/nomad/index.js";
import { repoRoot } from "../test/support/paths.js";
import { spawnMajordome, waitHealthy } from "../test/support/process.js";
import { startWorld, writeWorldConfig } from "../test/support/world.js";
import { percentile } from "./stats.js";

const RUNS = 30;
const MS_PER_TICK = 10; // USER_HZ is 100 on Linux

function cpuMs(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1]!.split(" ");
  return (Number(fields[11]) + Number(fields[12])) * MS_PER_TICK;
}

export async function benchDeploy(): Promise<Record<string, number>> {
  const world = await startWorld();
  const nomad = await startNomadDouble({ stepMs: 0 });
  const jobsDir = await mkdtemp(join(tmpdir(), "majordome-bench-jobs-"));
  await cp(join(repoRoot(), "src", "sandbox", "jobs"), jobsDir, { recursive: true });
  const { path, healthUrl } = await writeWorldConfig(world, {
    sections: { nomad: { address: nomad.url, jobs_dir: jobsDir } },
  });
  const bot = spawnMajordome(path);
  try {
    await waitHealthy(healthUrl, 30_000);
    const total: number[] = [];
    let cpuBefore = 0;
    const file = join(jobsDir, "worker.hcl");
    for (let i = 0; i <= RUNS; i++) {
      // Each run deploys a change: the three images get a new tag.
      await writeFile(file, (await readFile(file, "utf8")).replace(/:2\.4\.\d+|:9\.\d+\.\d+/g, `:9.${i}.0`));
      if (i === 1) cpuBefore = cpuMs(bot.child.pid!); // the first run warms up (a new job, JIT)
      const t0 = performance.now();
      world.say("alice", "!deploy worker");
      await world
        .waitFor(
          (e) =>
            /`worker` is deployed and healthy|`worker`: deployment/.test(
              String((e.content as { body?: string }).body),
            ) &&
            e.origin_server_ts >= Date.now() - 60_000 &&
            !counted.has(e.event_id),
          60_000,
        )
        .then((e) => counted.add(e.event_id));
      const elapsed = performance.now() - t0;
      if (i > 0) total.push(elapsed);
    }
    const cpuPerDeploy = (cpuMs(bot.child.pid!) - cpuBefore) / RUNS;
    const sort = (xs: number[]) => [...xs].sort((a, b) => a - b);
    return {
      "deploy.3_groups.total.p50_ms": percentile(sort(total), 50),
      "deploy.3_groups.majordome_cpu.mean_ms": Number(cpuPerDeploy.toFixed(1)),
      "deploy.runs": RUNS,
    };
  } finally {
    await bot.kill("SIGTERM");
    await nomad.close();
    await world.close();
  }
}

const counted = new Set<string>();
