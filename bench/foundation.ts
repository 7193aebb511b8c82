/**
 * The bot's own overhead per command through the homeserver double (a real majordome process, real
 * sockets; `!ping` touches no backend), its throughput, start-up time to first sync, and its memory next
 * to a bare Node process that loads the same libraries.
 */
import { spawn } from "node:child_process";
import { readFileSync } from "node:fs";
import { spawnMajordome, waitHealthy } from "../test/support/process.js";
import { startWorld, writeWorldConfig, type World } from "../test/support/world.js";
import { MB, percentile } from "./stats.js";

const LATENCY_COMMANDS = 1_000;
const THROUGHPUT_COMMANDS = 1_000;

function answered(world: World, commandId: string): Promise<unknown> {
  return world.waitFor(
    (e) =>
      e.sender === world.bot.userId &&
      e.type === "m.room.message" &&
      (e.content as { "m.relates_to"?: { "m.in_reply_to"?: { event_id?: string } } })["m.relates_to"]?.[
        "m.in_reply_to"
      ]?.event_id === commandId,
    30_000,
  );
}

async function bareLibrariesRss(): Promise<number> {
  const script = [
    "matrix-bot-sdk",
    "pino",
    "prom-client",
    "yaml",
    "zod",
    "markdown-it",
    "ldapts",

    "fastest-levenshtein",
    "string-argv",
    "ms",
    "p-limit",
    "pg",
    "consul",
    "@aws-sdk/client-s3",
    "undici",
    "node-cron",
    "lossless-json",
  ]
    .map((name) => `await import(${JSON.stringify(name)});`)
    .join("");
  const child = spawn(
    process.execPath,
    ["--input-type=module", "-e", `${script} setInterval(() => {}, 1000);`],
    {
      stdio: "ignore",
    },
  );
  await new Promise((resolve) => setTimeout(resolve, 1500));
  const rss = Number(/VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${child.pid}/status`, "utf8"))?.[1]) * 1024;
  child.kill("SIGKILL");
  return rss;
}

export async function benchFoundation(): Promise<Record<string, number>> {
  const world = await startWorld();
  const { path, healthUrl } = await writeWorldConfig(world, { timings: { sync_timeout: "30s" } });
  const started = performance.now();
  const bot = spawnMajordome(path);
  try {
    await waitHealthy(healthUrl, 30_000);
    const startup = performance.now() - started;
    for (let i = 0; i < 20; i++) await answered(world, world.say("alice", "!ping"));
    await new Promise((resolve) => setTimeout(resolve, 1000));
    const idleRss = bot.rss();

    // Overhead: from the double sending the command in a /sync answer to the bot's reply arriving.
    const deliveredAt = new Map<string, number>();
    world.hs.onSyncDelivered((userId, eventIds) => {
      if (userId !== world.bot.userId) return;
      const now = performance.now();
      for (const id of eventIds) if (!deliveredAt.has(id)) deliveredAt.set(id, now);
    });
    const overhead: number[] = [];
    const roundTrip: number[] = [];
    for (let i = 0; i < LATENCY_COMMANDS; i++) {
      const t0 = performance.now();
      const command = world.say("alice", "!ping");
      await answered(world, command);
      const t1 = performance.now();
      overhead.push(t1 - deliveredAt.get(command)!);
      roundTrip.push(t1 - t0);
    }
    overhead.sort((a, b) => a - b);
    roundTrip.sort((a, b) => a - b);

    const t0 = performance.now();
    const burst = Array.from({ length: THROUGHPUT_COMMANDS }, () => world.say("bob", "!ping"));
    await Promise.all(burst.map((id) => answered(world, id)));
    const burstSeconds = (performance.now() - t0) / 1000;
    const afterRss = bot.rss();
    const bareRss = await bareLibrariesRss();

    return {
      "command.overhead.p50_ms": percentile(overhead, 50),
      "command.overhead.p99_ms": percentile(overhead, 99),
      "command.send_to_reply.p50_ms": percentile(roundTrip, 50),
      "command.send_to_reply.p99_ms": percentile(roundTrip, 99),
      "command.overhead.samples": LATENCY_COMMANDS,
      "command.throughput.per_s": Math.round(THROUGHPUT_COMMANDS / burstSeconds),
      "startup.to_first_sync_ms": Math.round(startup),
      "memory.rss.idle_mb": Number((idleRss / MB).toFixed(1)),
      "memory.rss.after_run_mb": Number((afterRss / MB).toFixed(1)),
      "memory.rss.bare_libraries_mb": Number((bareRss / MB).toFixed(1)),
      "memory.rss.idle_over_bare_mb": Number(((idleRss - bareRss) / MB).toFixed(1)),
    };
  } finally {
    await bot.kill();
    await world.close();
  }
}
