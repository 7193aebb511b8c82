/**
 * Two majordome processes, one set of doubles, state in the Consul double and the leader lock
 * (issue #8, "One active instance"): one answers, the other stands by without a word to the homeserver;
 * a SIGKILL of the leader and a SIGTERM hand over to the standby with nothing lost and nothing repeated.
 * The Consul double's sessions and majordome's clocks run 10 times faster than real time (see fleet.ts).
 */
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { startNomadDouble } from "../../src/sandbox/nomad/index.js";
import { currentText, runningJob, textOf } from "../support/crash-harness.js";
import { startFleet, type Fleet, type Instance } from "../support/fleet.js";
import { repoRoot } from "../support/paths.js";
import { startRecordingProxy, type RecordingProxy } from "../support/recording-proxy.js";

const cleanups: Array<() => Promise<unknown>> = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

async function fleet(opts: Parameters<typeof startFleet>[0] = {}): Promise<Fleet> {
  const started = await startFleet(opts);
  cleanups.push(() => started.close());
  return started;
}

/** The standby talks to the homeserver through a proxy that records every request it makes. */
async function pair(f: Fleet): Promise<{ leader: Instance; standby: Instance; standbyHs: RecordingProxy }> {
  const leader = await f.spawn("first");
  await leader.waitRole("leader");
  const standbyHs = await startRecordingProxy(f.world.hs.url);
  cleanups.push(() => standbyHs.close());
  const standby = await f.spawn("second", {}, { homeserverUrl: standbyHs.url });
  await standby.waitRole("standby");
  return { leader, standby, standbyHs };
}

async function answered(f: Fleet, command: string, timeoutMs = 20_000): Promise<void> {
  await f.world.waitFor(
    (e) => f.world.repliesTo(command).length > 0 && e.sender === f.world.bot.userId,
    timeoutMs,
  );
}

function expectAnsweredOnce(f: Fleet, commands: string[]): void {
  for (const command of commands) {
    expect(f.world.repliesTo(command), `replies to ${command}`).toHaveLength(1);
    expect(f.world.botReactionsTo(command), `👀 on ${command}`).toHaveLength(1);
  }
}

/** Starting two processes and waiting out a lapsed session take seconds on a loaded machine. */
const TIMEOUT = 60_000;

describe("two instances, one leader lock in Consul", () => {
  it(
    "one answers, the other stands by without a request to the homeserver",
    async () => {
      const f = await fleet();
      const { leader, standby, standbyHs } = await pair(f);
      const pings = [
        f.world.say("alice", "!ping"),
        f.world.say("bob", "!ping"),
        f.world.say("alice", "!ping"),
      ];
      for (const ping of pings) await answered(f, ping);
      await new Promise((resolve) => setTimeout(resolve, 300)); // time for a second answer, if any
      expectAnsweredOnce(f, pings);
      expect(await leader.health()).toEqual({ role: "leader", healthy: true });
      expect(await standby.health()).toEqual({ role: "standby", healthy: true });
      expect(standbyHs.requests).toEqual([]);
      expect(await f.lockHolder()).toBeDefined();
    },
    TIMEOUT,
  );

  it(
    "SIGKILL of the leader: the standby takes over, answers what was said meanwhile, repeats nothing",
    async () => {
      const f = await fleet();
      const { leader, standby, standbyHs } = await pair(f);
      const before = [f.world.say("alice", "!ping"), f.world.say("alice", "!whoami")];
      for (const command of before) await answered(f, command);
      const heldBefore = await f.lockHolder();

      await leader.process.kill("SIGKILL");
      const meanwhile = f.world.say("bob", "!ping"); // nobody leads now
      expect(await standby.health()).toEqual({ role: "standby", healthy: true });
      await standby.waitRole("leader");
      await answered(f, meanwhile);
      const after = f.world.say("alice", "!ping");
      await answered(f, after);

      expect(await f.lockHolder()).not.toBe(heldBefore);
      expect(standbyHs.requests.length).toBeGreaterThan(0); // it is the one talking now
      expectAnsweredOnce(f, [...before, meanwhile, after]);
    },
    TIMEOUT,
  );

  it(
    "SIGTERM of the leader: the lock is released and the standby leads without the lock delay",
    async () => {
      // A lock delay and a TTL that would each hold the standby back for seconds of real time.
      const f = await fleet({ lockDelay: "60s", sessionTtl: "60s" });
      const { leader, standby } = await pair(f);
      const first = f.world.say("alice", "!ping");
      await answered(f, first);

      const stoppedAt = Date.now();
      const exitCode = leader.process.kill("SIGTERM");
      await standby.waitRole("leader", 30_000);
      const handOver = Date.now() - stoppedAt;
      // 60 s of lock delay is 6 s of real time here, and a lapsed session 12 s.
      expect(handOver).toBeLessThan(5_000);
      const second = f.world.say("bob", "!ping");
      await answered(f, second);
      expectAnsweredOnce(f, [first, second]);
      // A graceful stop is not a demotion (exit 75 tells Nomad the instance failed).
      expect(await exitCode).toBe(0);
    },
    TIMEOUT,
  );

  it(
    "a request opened under the first leader is approved after the takeover and runs once",
    async () => {
      const nomad = await startNomadDouble({ stepMs: 5 });
      cleanups.push(() => nomad.close());
      const nomadProxy = await startRecordingProxy(nomad.url);
      cleanups.push(() => nomadProxy.close());
      const jobsDir = join(repoRoot(), "src", "sandbox", "jobs");
      await runningJob(nomad, jobsDir, "web");
      const f = await fleet({ sections: { nomad: { address: nomadProxy.url, jobs_dir: jobsDir } } });
      const { leader, standby } = await pair(f);

      const command = f.world.say("alice", "!stop web");
      const request = await f.world.waitFor(
        (e) =>
          /Approval needed/.test(textOf(e)) &&
          f.world.repliesTo(command).some((r) => r.event_id === e.event_id),
      );
      await f.world.waitFor(() => f.world.botReactionsTo(request.event_id).length === 2);
      await leader.process.kill("SIGKILL");
      await standby.waitRole("leader");
      f.world.react("bob", request.event_id, "✅");

      await f.world.waitFor(
        () => /\*\*Done\*\*/.test(currentText(f.world.hs.timeline(f.world.roomId), request)),
        20_000,
      );
      await new Promise((resolve) => setTimeout(resolve, 300)); // time for a second run, if any
      const stops = nomadProxy.requests.filter(
        (r) => r.method === "DELETE" && r.path.startsWith("/v1/job/web") && r.status === 200,
      );
      expect(stops).toHaveLength(1);
      const stoppedMessages = f.world.hs
        .timeline(f.world.roomId)
        .filter((e) => e.sender === f.world.bot.userId && /`web` stopped/.test(textOf(e)));
      expect(stoppedMessages).toHaveLength(1);
      expect(f.world.repliesTo(command)).toHaveLength(1); // one request, no second one
    },
    TIMEOUT,
  );
});
