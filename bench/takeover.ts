/**
 * Takeover: from a SIGKILL of the leader to the standby answering a command sent right after the kill,
 * over several runs, with the production timings (session TTL 15 s, lock delay 15 s) run 20 times
 * faster: the Consul double's sessions (timeScale) and majordome's clock (MAJORDOME_CLOCK_SPEED).
 * The two waits Consul imposes (the dead session's TTL running out, then the lock delay) are scaled and
 * reported apart, in production seconds; the rest (the standby's start-up as leader, its first sync and
 * the answer) runs in real time.
 */
import { startFleet, type Fleet, type Instance } from "../test/support/fleet.js";
import { percentile } from "./stats.js";

const RUNS = 10;
const SPEED = 20;
const SESSION_TTL_S = 15;
const LOCK_DELAY_S = 15;

interface Sample {
  /** Kill → the lock key freed (Consul invalidated the dead session), real ms. */
  invalidation: number;
  /** Freed → taken by the standby (the lock delay), real ms. */
  lockDelay: number;
  /** Taken → the command answered (start-up as leader, first sync, the answer), real ms. */
  rest: number;
}

/** Polls the lock key until `done(holder)`; answers when (performance.now()) it saw it. */
async function lockUntil(fleet: Fleet, done: (holder: string | undefined) => boolean): Promise<number> {
  const deadline = performance.now() + 60_000;
  while (performance.now() < deadline) {
    if (done(await fleet.lockHolder())) return performance.now();
    await new Promise((resolve) => setTimeout(resolve, 2));
  }
  throw new Error("the leader lock did not change within 60 s");
}

async function answered(fleet: Fleet, command: string): Promise<number> {
  await fleet.world.waitFor(() => fleet.world.repliesTo(command).length > 0, 60_000);
  return performance.now();
}

async function takeover(fleet: Fleet, leader: Instance, standby: Instance): Promise<Sample> {
  const held = await fleet.lockHolder();
  const killedAt = performance.now();
  await leader.process.kill("SIGKILL");
  const command = fleet.world.say("alice", "!ping");
  const freedAt = await lockUntil(fleet, (holder) => holder !== held);
  const takenAt = await lockUntil(fleet, (holder) => holder !== undefined && holder !== held);
  const answeredAt = await answered(fleet, command);
  await standby.waitRole("leader", 60_000);
  return { invalidation: freedAt - killedAt, lockDelay: takenAt - freedAt, rest: answeredAt - takenAt };
}

export async function benchTakeover(): Promise<Record<string, number>> {
  const fleet = await startFleet({
    speed: SPEED,
    sessionTtl: `${SESSION_TTL_S}s`,
    lockDelay: `${LOCK_DELAY_S}s`,
  });
  const samples: Sample[] = [];
  try {
    let leader = await fleet.spawn("bench-0");
    await leader.waitRole("leader", 60_000);
    await answered(fleet, fleet.world.say("alice", "!ping"));
    for (let run = 1; run <= RUNS; run++) {
      const standby = await fleet.spawn(`bench-${run}`);
      await standby.waitRole("standby", 60_000);
      samples.push(await takeover(fleet, leader, standby));
      leader = standby;
    }
  } finally {
    await fleet.close();
  }
  const real = (pick: (s: Sample) => number) => samples.map(pick).sort((a, b) => a - b);
  // Production time: the two Consul waits scaled back up, the rest as measured.
  const production = (s: Sample) => ((s.invalidation + s.lockDelay) * SPEED + s.rest) / 1000;
  const ms = (n: number) => Math.round(n);
  const s = (n: number) => Number(n.toFixed(2));
  const total = real((x) => x.invalidation + x.lockDelay + x.rest);
  return {
    "takeover.runs": RUNS,
    "takeover.clock_speed": SPEED,
    "takeover.scaled.total.p50_ms": ms(percentile(total, 50)),
    "takeover.scaled.total.max_ms": ms(total.at(-1)!),
    "takeover.scaled.invalidation.p50_ms": ms(
      percentile(
        real((x) => x.invalidation),
        50,
      ),
    ),
    "takeover.scaled.lock_delay.p50_ms": ms(
      percentile(
        real((x) => x.lockDelay),
        50,
      ),
    ),
    "takeover.rest.p50_ms": ms(
      percentile(
        real((x) => x.rest),
        50,
      ),
    ),
    "takeover.rest.max_ms": ms(real((x) => x.rest).at(-1)!),
    "takeover.prod.invalidation.p50_s": s(
      (percentile(
        real((x) => x.invalidation),
        50,
      ) *
        SPEED) /
        1000,
    ),
    "takeover.prod.lock_delay.p50_s": s(
      (percentile(
        real((x) => x.lockDelay),
        50,
      ) *
        SPEED) /
        1000,
    ),
    "takeover.prod.total.p50_s": s(percentile(real(production), 50)),
    "takeover.prod.total.max_s": s(real(production).at(-1)!),
  };
}
