/**
 * Node failover from chat, end to end: majordome in process, the Nomad double (its drainer moving
 * allocations by each group's migrate max_parallel, its scheduler placing replacements), the homeserver
 * double, and the shipped policies (a drain needs a second administrator's approval).
 */
import { cp, mkdtemp, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import pino from "pino";
import { afterEach, describe, expect, it } from "vitest";
import { startMajordome, type Majordome } from "../../src/app.js";
import { loadPolicies } from "../../src/auth/policy.js";
import { YamlDirectory } from "../../src/auth/yaml-directory.js";
import { SystemClock } from "../../src/clock.js";
import { configSchema } from "../../src/config/schema.js";
import type { ClientEvent } from "../../src/sandbox/homeserver/index.js";
import { startNomadDouble, type NomadDouble, type SimNodeSpec } from "../../src/sandbox/nomad/index.js";
import { repoRoot } from "../support/paths.js";
import { DOMAIN, handledBy, startWorld, type World } from "../support/world.js";

const cleanups: Array<() => Promise<unknown>> = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

const text = (e: ClientEvent) => String((e.content as { body?: string }).body ?? "");
const rel = (e: ClientEvent) =>
  (e.content as { "m.relates_to"?: { rel_type?: string; event_id?: string } })["m.relates_to"];
const shown = (e: ClientEvent) =>
  rel(e)?.rel_type === "m.replace"
    ? String((e.content as { "m.new_content": { body: string } })["m.new_content"].body)
    : text(e);

interface Alloc {
  ID: string;
  NodeName: string;
  DesiredStatus: string;
  ClientStatus: string;
  NextAllocation: string;
  DeploymentStatus: { Healthy: boolean | null; ModifyIndex: number } | null;
}

interface Setup {
  w: World;
  app: Majordome;
  nomad: NomadDouble;
  ask(user: string, line: string): Promise<string>;
  /** The current text of a bot message (its latest edit). */
  current(eventId: string): string;
  waitText(pattern: RegExp, timeoutMs?: number): Promise<ClientEvent>;
  approve(requestPattern: RegExp): Promise<void>;
  allocations(job: string): Promise<Alloc[]>;
}

/** A job of `count` allocations, each needing `cpu` MHz, moved one at a time. */
const heavyJob = (count: number, cpu: number) => `job "heavy" {
  datacenters = ["dc1"]
  type        = "service"
  group "app" {
    count = ${count}
    migrate {
      max_parallel = 1
    }
    task "app" {
      driver = "docker"
      config {
        image = "example/heavy:1"
      }
      resources {
        cpu    = ${cpu}
        memory = 256
      }
    }
  }
}
`;

async function setup(nodes?: SimNodeSpec[]): Promise<Setup> {
  const w = await startWorld();
  cleanups.push(() => w.close());
  const nomad = await startNomadDouble({ stepMs: 5, ...(nodes ? { nodes } : {}) });
  cleanups.push(() => nomad.close());
  const jobsDir = await mkdtemp(join(tmpdir(), "majordome-jobs-"));
  await cp(join(repoRoot(), "src", "sandbox", "jobs"), jobsDir, { recursive: true });
  await writeFile(join(jobsDir, "heavy.hcl"), heavyJob(2, 1000));
  const app = await startMajordome({
    config: configSchema.parse({
      matrix: {
        homeserver_url: w.hs.url,
        access_token: w.bot.accessToken,
        user_domain: DOMAIN,
        command_rooms: [w.roomId],
      },
      nomad: { address: nomad.url, jobs_dir: jobsDir },
      state: { path: await mkdtemp(join(tmpdir(), "majordome-nodes-")), fsync: false },
      timings: { sync_timeout: "2s", deploy_timeout: "20s" },
    }),
    clock: new SystemClock(),
    log: pino({ level: "silent" }),
    directory: new YamlDirectory(),
    policies: await loadPolicies("policies"),
    http: false,
  });
  if (!app) throw new Error("majordome did not start");
  cleanups.push(() => app.stop());
  await app.synced();
  const botSays = (pattern: RegExp) => (e: ClientEvent) =>
    e.sender === w.bot.userId && e.type === "m.room.message" && pattern.test(shown(e));
  const s: Setup = {
    w,
    app,
    nomad,
    current(eventId) {
      const last = w.hs
        .timeline(w.roomId)
        .filter((e) => rel(e)?.rel_type === "m.replace" && rel(e)?.event_id === eventId)
        .at(-1);
      return last ? shown(last) : text(w.hs.getEvent(w.roomId, eventId)!);
    },
    async ask(user, line) {
      const command = w.say(user, line);
      await handledBy(app, command);
      return w.repliesTo(command).map(text).join("\n---\n");
    },
    waitText: (pattern, timeoutMs = 15_000) => w.waitFor(botSays(pattern), timeoutMs),
    async approve(requestPattern) {
      const request = w.hs.timeline(w.roomId).filter(botSays(requestPattern)).at(-1)!;
      await handledBy(app, w.react("bob", request.event_id, "✅"));
    },
    allocations: async (job) =>
      (await (await fetch(`${nomad.url}/v1/job/${job}/allocations`)).json()) as Alloc[],
  };
  return s;
}

const running = (allocs: Alloc[]) =>
  allocs.filter((a) => a.DesiredStatus === "run" && a.ClientStatus === "running");

describe("Nomad nodes from chat", () => {
  it("a drain shows its pre-flight in the approval request, then its progress edited in place until done", async () => {
    const s = await setup();
    await s.ask("alice", "!deploy web");
    await s.waitText(/`web` is deployed and healthy/);
    const [first] = running(await s.allocations("web"));
    const node = first!.NodeName;
    const onNode = running(await s.allocations("web")).filter((a) => a.NodeName === node);

    const request = await s.ask("alice", `!drain ${node} --deadline 30m`);
    expect(request).toMatch(/Approval needed/);
    expect(request).toMatch(new RegExp(`Drain \`${node}\`.*deadline 30 minutes`));
    expect(request).toMatch(new RegExp(`${onNode.length} allocation\\(s\\) will move`));
    for (const a of onNode) expect(request).toContain(`\`${a.ID.slice(0, 8)}\``);
    expect(request).toMatch(/Room elsewhere: ✅ everything fits/);
    // Nothing happens before the approval.
    expect(running(await s.allocations("web")).filter((a) => a.NodeName === node)).toHaveLength(
      onNode.length,
    );

    await s.approve(/Approval needed/);
    const outcome = await s.waitText(new RegExp(`\`${node}\` is drained`), 20_000);
    expect(shown(outcome)).toMatch(/2 of 2 running elsewhere|1 of 1 running elsewhere/);
    expect(shown(outcome)).toMatch(new RegExp(`\`!eligible ${node} on\` brings it back`));
    const progress = s.w.hs
      .timeline(s.w.roomId)
      .find((e) => e.sender === s.w.bot.userId && /: draining\*\*/.test(text(e)))!;
    const final = s.current(progress.event_id);
    expect(final).toMatch(
      new RegExp(
        `✅ \\*\\*\`${node}\`: drained\\*\\* — ${onNode.length} allocation\\(s\\): 0 still on the node`,
      ),
    );
    expect(final).toMatch(/moved → `node-\d` \(running\)/);
    const edits = s.w.hs
      .timeline(s.w.roomId)
      .filter((e) => rel(e)?.rel_type === "m.replace" && rel(e)?.event_id === progress.event_id);
    expect(edits.length).toBeGreaterThan(1);

    const after = running(await s.allocations("web"));
    expect(after).toHaveLength(2);
    expect(after.every((a) => a.NodeName !== node)).toBe(true);
    expect(await s.ask("carol", "!nodes")).toMatch(new RegExp(`${node}.*ineligible`));
    expect(await s.ask("alice", `!drain ${node}`)).toMatch(/Nothing runs there to move/);
    expect(await s.ask("alice", `!undrain ${node}`)).toMatch(
      new RegExp(`\`${node}\` was not draining; it is eligible again`),
    );
    expect(await s.ask("alice", `!undrain ${node}`)).toMatch(
      /not draining and already eligible; nothing changed/,
    );
  });

  it("refuses a drain the other nodes have no room for; --force drains anyway; undrain cancels it", async () => {
    const s = await setup([
      { name: "big", cpuMhz: 4000, memoryMb: 8192 },
      { name: "small", cpuMhz: 500, memoryMb: 8192 },
    ]);
    await s.ask("alice", "!deploy heavy");
    await s.waitText(/`heavy` is deployed and healthy/);
    const allocs = running(await s.allocations("heavy"));
    expect(allocs.map((a) => a.NodeName)).toEqual(["big", "big"]);

    const refused = await s.ask("alice", "!drain big");
    expect(refused).toMatch(
      /⛔ `drain` refused: Not drained: the other nodes have no room for `heavy` › `app`/,
    );
    expect(refused).toMatch(/free: `small` 500 MHz/);
    expect(refused).toMatch(/add `--force` to drain anyway/);
    expect(refused).not.toMatch(/Approval needed/);
    expect(await s.ask("alice", "!drain bgi")).toMatch(/No node `bgi`\. Did you mean `big`\?/);

    const request = await s.ask("alice", "!drain big --force");
    expect(request).toMatch(/Approval needed/);
    expect(request).toMatch(/Room elsewhere: ⚠️ the other nodes have no room/);
    expect(request).toMatch(/\| ❌ none \|/);
    await s.approve(/Approval needed/);
    // One is stopped and its replacement waits for room; the other waits its turn (max_parallel 1).
    await s.waitText(
      /its replacement waits for room[\s\S]*waiting its turn|waiting its turn[\s\S]*its replacement waits for room/,
      20_000,
    );
    expect(await s.ask("alice", "!eligible big on")).toMatch(
      /`big` is draining, and Nomad keeps a draining node ineligible/,
    );

    expect(await s.ask("alice", "!undrain big")).toMatch(
      /The drain of `big` is cancelled and the node is eligible again/,
    );
    const outcome = await s.waitText(/The drain of `big` was cancelled after/, 20_000);
    expect(shown(outcome)).toMatch(/1 allocation\(s\) still there/);
    // Eligible again: the queued replacement lands back on big.
    await s.nomad.settle();
    expect(running(await s.allocations("heavy")).map((a) => a.NodeName)).toEqual(["big", "big"]);
  });

  it("eligible off and on, with clear answers for no change and unknown nodes", async () => {
    const s = await setup();
    expect(await s.ask("alice", "!eligible node-2 off")).toMatch(
      /`node-2` is ineligible: Nomad places nothing new there\. Its 0 running/,
    );
    expect(await s.ask("alice", "!eligible node-2 off")).toMatch(
      /`node-2` is already ineligible; nothing changed/,
    );
    expect(await s.ask("carol", "!nodes")).toMatch(/node-2.*ineligible/);
    expect(await s.ask("alice", "!eligible node-2 on")).toMatch(/`node-2` is eligible/);
    expect(await s.ask("alice", "!eligible node-9 on")).toMatch(
      /No node `node-9`\. Did you mean `node-1` or `node-2` or `node-3`\?/,
    );
    expect(await s.ask("alice", "!eligible node-2 maybe")).toMatch(
      /Bad state `maybe`: expected one of on, off/,
    );
    expect(await s.ask("alice", "!eligible ../etc on")).toMatch(/Bad node `\.\.\/etc`/);
    expect(await s.ask("carol", "!eligible node-2 off")).toMatch(/⛔/);
  });

  it("reschedules a job one allocation at a time, each replacement healthy before the next; a stuck one stops it", async () => {
    const s = await setup();
    await s.ask("alice", "!deploy web");
    await s.waitText(/`web` is deployed and healthy/);
    const before = running(await s.allocations("web"));

    expect(await s.ask("alice", "!reschedule web")).toMatch(
      /Rescheduling 2 allocation\(s\) of `web`, one at a time/,
    );
    const done = await s.waitText(/Rescheduled 2 allocation\(s\) of `web` one at a time/, 20_000);
    for (const a of before) expect(shown(done)).toContain(`\`${a.ID.slice(0, 8)}\``);
    const after = await s.allocations("web");
    const replacements = before.map((old) =>
      after.find((a) => a.ID === after.find((x) => x.ID === old.ID)!.NextAllocation)!,
    );
    expect(replacements.every((r) => r.ClientStatus === "running" && r.DeploymentStatus?.Healthy)).toBe(true);
    // The second stop came after the first replacement was healthy.
    const evals = (await (await fetch(`${s.nomad.url}/v1/job/web/evaluations`)).json()) as {
      TriggeredBy: string;
      CreateIndex: number;
    }[];
    const stops = evals
      .filter((e) => e.TriggeredBy === "alloc-stop")
      .map((e) => e.CreateIndex)
      .sort((a, b) => a - b);
    expect(stops).toHaveLength(2);
    const firstHealthy = Math.min(...replacements.map((r) => r.DeploymentStatus!.ModifyIndex));
    expect(stops[0]!).toBeLessThan(firstHealthy);
    expect(stops[1]!).toBeGreaterThan(firstHealthy);

    expect(await s.ask("alice", "!reschedule web abcd")).toMatch(
      /No running allocation of `web` starts with `abcd`/,
    );
    s.nomad.failNextPlacement("web", "web", "image-pull");
    await s.ask("alice", "!reschedule web");
    const stuck = await s.waitText(/Rescheduling `web` stopped after 0\/2/, 20_000);
    expect(shown(stuck)).toMatch(/its replacement `[0-9a-f]{8}` failed on `node-\d`: .*Failed to pull/);
    expect(shown(stuck)).toMatch(/The remaining 1 allocation\(s\) were not touched/);
    expect(running(await s.allocations("web")).length).toBeGreaterThanOrEqual(1);
  });
});
