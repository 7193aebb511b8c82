/**
 * Node drains, eligibility and allocation stops, through majordome's Nomad client against the Nomad
 * double over real loopback sockets: the client's calls and the double's drainer (migrate max_parallel,
 * deadlines, LastDrain) checked together.
 */
import { afterEach, describe, expect, it } from "vitest";
import { NomadClient, NomadError } from "../../src/backends/nomad/index.js";
import type { FullAllocation, NomadNode } from "../../src/backends/nomad/types.js";
import { ManualClock } from "../../src/clock.js";
import {
  startNomadDouble,
  type NomadDouble,
  type NomadDoubleOptions,
} from "../../src/sandbox/nomad/index.js";
import { readLines } from "./api.js";

let nomad: NomadDouble;
let client: NomadClient;
/** The double's clock (milliseconds), moved by the tests that need a drain's deadline to pass. */
let simNow = Date.UTC(2026, 0, 1);

afterEach(async () => {
  await client.close();
  await nomad.close();
});

async function start(options: NomadDoubleOptions = {}): Promise<void> {
  simNow = Date.UTC(2026, 0, 1);
  nomad = await startNomadDouble({ now: () => simNow, ...options });
  client = new NomadClient({
    address: nomad.url,
    namespace: "default",
    timeoutMs: 5_000,
    clock: new ManualClock(),
  });
}

const job = (
  name: string,
  groups: { name: string; count: number; maxParallel: number; cpu: number; memory: number }[],
) => `
job "${name}" {
  datacenters = ["dc1"]
  type        = "service"
${groups
  .map(
    (g) => `
  group "${g.name}" {
    count = ${g.count}
    migrate {
      max_parallel = ${g.maxParallel}
    }
    task "${g.name}" {
      driver = "docker"
      config {
        image = "example/${g.name}:1"
      }
      resources {
        cpu    = ${g.cpu}
        memory = ${g.memory}
      }
    }
  }`,
  )
  .join("\n")}
}
`;

async function deploy(hcl: string): Promise<void> {
  const parsed = await client.parse(hcl);
  await client.register(parsed, 0);
  await nomad.settle();
}

const nodeNamed = async (name: string): Promise<NomadNode> => {
  const found = await client.findNode(name);
  if (found.kind !== "found") throw new Error(`no node ${name}`);
  return (await client.node(found.node.ID)).value;
};

/** Places everything of `hcl` on `target` by making the other nodes ineligible while it deploys. */
async function deployOn(target: string, hcl: string): Promise<NomadNode> {
  const others = (await client.nodes()).filter((n) => n.Name !== target);
  for (const n of others) await client.setEligibility(n.ID, false);
  await deploy(hcl);
  for (const n of others) await client.setEligibility(n.ID, true);
  return nodeNamed(target);
}

const live = (allocs: FullAllocation[]) =>
  allocs.filter((a) => a.DesiredStatus === "run" && !["complete", "failed", "lost"].includes(a.ClientStatus));

interface Frame {
  Index: number;
  Events: { Topic: string; Type: string; Payload: { Allocation?: FullAllocation; Node?: NomadNode } }[];
}

describe("node drain (client and double)", () => {
  it("moves allocations no faster than each group's migrate max_parallel, then completes and stays ineligible", async () => {
    await start();
    const node = await deployOn(
      "node-1",
      job("spread", [
        { name: "app", count: 3, maxParallel: 1, cpu: 500, memory: 256 },
        { name: "pair", count: 2, maxParallel: 2, cpu: 100, memory: 64 },
      ]),
    );
    const before = live(await client.nodeAllocations(node.ID));
    expect(before).toHaveLength(5);

    const stream = await fetch(`${nomad.url}/v1/event/stream?topic=Allocation&topic=Node&index=0`);
    const drained = (lines: string[]) =>
      lines.some((l) => l.includes('"Type":"NodeDrain"') && l.includes('"Status":"complete"'));
    const reading = readLines(stream, drained, 10_000);
    const set = await client.drainNode(
      node.ID,
      { deadlineMs: 3_600_000, ignoreSystemJobs: false },
      { message: "maintenance" },
    );
    expect(set.NodeModifyIndex).toBeGreaterThan(0);
    const frames = (await reading).filter((l) => l !== "{}").map((l) => JSON.parse(l) as Frame);
    await nomad.settle();

    // When each original allocation was flagged, and when each replacement was first healthy.
    const flagged = new Map<string, number>();
    const healthyAt = new Map<string, number>();
    for (const frame of frames)
      for (const event of frame.Events) {
        const a = event.Payload.Allocation;
        if (!a) continue;
        if (a.DesiredTransition?.Migrate && !flagged.has(a.ID)) flagged.set(a.ID, frame.Index);
        if (a.PreviousAllocation && a.DeploymentStatus?.Healthy && !healthyAt.has(a.PreviousAllocation))
          healthyAt.set(a.PreviousAllocation, frame.Index);
      }
    const app = before.filter((a) => a.TaskGroup === "app").map((a) => a.ID);
    const pair = before.filter((a) => a.TaskGroup === "pair").map((a) => a.ID);
    const appFlags = app.map((id) => flagged.get(id)!).sort((a, b) => a - b);
    expect(new Set(appFlags).size).toBe(3);
    // max_parallel 1: the next one goes only once the previous replacement is healthy.
    const order = [...app].sort((a, b) => flagged.get(a)! - flagged.get(b)!);
    for (let i = 1; i < order.length; i++)
      expect(flagged.get(order[i]!)!).toBeGreaterThan(healthyAt.get(order[i - 1]!)!);
    // max_parallel 2 with count 2: both at once.
    expect(flagged.get(pair[0]!)).toBe(flagged.get(pair[1]!));

    const after = (await client.node(node.ID)).value;
    expect(after).toMatchObject({ Drain: false, DrainStrategy: null, SchedulingEligibility: "ineligible" });
    expect(after.LastDrain).toMatchObject({ Status: "complete", Meta: { message: "maintenance" } });
    expect(live(await client.nodeAllocations(node.ID))).toHaveLength(0);
    const { value: allocs } = await client.allocations("spread");
    const running = allocs.filter((a) => a.DesiredStatus === "run" && a.ClientStatus === "running");
    expect(running).toHaveLength(5);
    expect(running.every((a) => a.NodeID !== node.ID && a.DeploymentStatus?.Healthy === true)).toBe(true);
  });

  it("without room: what moved waits in the queue, the drain holds until its deadline, then completes", async () => {
    await start({
      nodes: [
        { name: "big", cpuMhz: 4000, memoryMb: 8192 },
        { name: "small", cpuMhz: 500, memoryMb: 8192 },
      ],
    });
    const node = await deployOn(
      "big",
      job("heavy", [{ name: "app", count: 2, maxParallel: 1, cpu: 1000, memory: 512 }]),
    );
    await client.drainNode(node.ID, { deadlineMs: 60_000, ignoreSystemJobs: false });
    await nomad.settle();

    // The first one moved, but its replacement fits nowhere: with one healthy allocation left of two and
    // max_parallel 1, the drain holds the second until the deadline.
    const holding = (await client.node(node.ID)).value;
    expect(holding.DrainStrategy).not.toBeNull();
    expect(holding.LastDrain?.Status).toBe("draining");
    expect(live(await client.nodeAllocations(node.ID))).toHaveLength(1);

    simNow += 61_000;
    let done = holding;
    for (let i = 0; i < 200 && done.DrainStrategy; i++) {
      ({ value: done } = await client.node(node.ID, { index: done.ModifyIndex ?? 0, waitMs: 1_000 }));
    }
    await nomad.settle();
    expect(done.DrainStrategy ?? null).toBeNull();
    expect(done.LastDrain?.Status).toBe("complete");
    expect(done.Events?.at(-1)).toMatchObject({
      Message: "Node drain complete",
      Details: { deadline_reached: "true" },
    });
    expect(live(await client.nodeAllocations(node.ID))).toHaveLength(0);
    const evals = (await (await fetch(`${nomad.url}/v1/job/heavy/evaluations`)).json()) as {
      Status: string;
      FailedTGAllocs: Record<string, { DimensionExhausted: Record<string, number> }> | null;
    }[];
    expect(evals.find((e) => e.Status === "blocked")?.FailedTGAllocs?.app?.DimensionExhausted).toEqual({
      cpu: 1,
    });
  });

  it("undrain cancels the drain (LastDrain canceled) and marks the node eligible; a no-op cancel leaves LastDrain", async () => {
    await start({
      nodes: [
        { name: "big", cpuMhz: 4000, memoryMb: 8192 },
        { name: "small", cpuMhz: 500, memoryMb: 8192 },
      ],
    });
    const node = await deployOn(
      "big",
      job("heavy", [{ name: "app", count: 2, maxParallel: 1, cpu: 1000, memory: 512 }]),
    );
    await client.drainNode(node.ID, { deadlineMs: 3_600_000, ignoreSystemJobs: false });
    await nomad.settle();
    await client.cancelDrain(node.ID, true);
    const cancelled = (await client.node(node.ID)).value;
    expect(cancelled).toMatchObject({ Drain: false, DrainStrategy: null, SchedulingEligibility: "eligible" });
    expect(cancelled.LastDrain?.Status).toBe("canceled");
    expect(cancelled.Events?.map((e) => e.Message)).toContain("Node drain strategy unset");

    await client.setEligibility(node.ID, false);
    await client.cancelDrain(node.ID, true);
    const again = (await client.node(node.ID)).value;
    expect(again.SchedulingEligibility).toBe("eligible");
    expect(again.LastDrain).toEqual(cancelled.LastDrain);
  });

  it("eligibility off and on; on is refused while draining", async () => {
    await start();
    const node = await deployOn(
      "node-2",
      job("heavy", [{ name: "app", count: 2, maxParallel: 1, cpu: 1500, memory: 512 }]),
    );
    await client.setEligibility((await nodeNamed("node-1")).ID, false);
    await client.setEligibility((await nodeNamed("node-3")).ID, false);
    const off = await client.setEligibility(node.ID, false);
    expect(off.NodeModifyIndex).toBeGreaterThan(0);
    expect((await client.node(node.ID)).value.SchedulingEligibility).toBe("ineligible");
    await client.setEligibility(node.ID, true);
    expect((await client.node(node.ID)).value.SchedulingEligibility).toBe("eligible");

    // Nowhere else to go: the first allocation is stopped and its replacement queued; the second holds.
    await client.drainNode(node.ID, { deadlineMs: 3_600_000, ignoreSystemJobs: true });
    await nomad.settle();
    expect((await client.node(node.ID)).value.Drain).toBe(true);
    const refused = await client.setEligibility(node.ID, true).catch((error: unknown) => error);
    expect(refused).toBeInstanceOf(NomadError);
    expect((refused as NomadError).message).toMatch(
      /can not set node's scheduling eligibility to eligible while it is draining/,
    );
  });

  it("reads a node with its resources; finds nodes by name or ID prefix, suggests close names", async () => {
    await start();
    const node = await nodeNamed("node-3");
    expect(node.NodeResources).toMatchObject({ Cpu: { CpuShares: 4000 }, Memory: { MemoryMB: 8192 } });
    expect(node.ReservedResources).toMatchObject({ Cpu: { CpuShares: 0 }, Memory: { MemoryMB: 0 } });
    const withResources = await client.nodes({ resources: true });
    expect(withResources.every((n) => n.NodeResources?.Memory?.MemoryMB === 8192)).toBe(true);

    expect(await client.findNode(node.ID.slice(0, 6))).toMatchObject({
      kind: "found",
      node: { Name: "node-3" },
    });
    expect(await client.findNode(node.ID)).toMatchObject({ kind: "found", node: { Name: "node-3" } });
    expect(await client.findNode("node3")).toEqual({
      kind: "unknown",
      suggestions: ["node-3", "node-1", "node-2"],
    });
    expect(await client.findNode("db-7")).toEqual({ kind: "unknown", suggestions: [] });
    const ids = (await client.nodes()).map((n) => n.ID);
    const shared = ids.find((id) => ids.some((other) => other !== id && other[0] === id[0]));
    if (shared) expect((await client.findNode(shared[0]!)).kind).toBe("ambiguous");
  });

  it("stopping an allocation places a replacement; off an ineligible node it lands elsewhere, healthy", async () => {
    await start();
    await deploy(job("solo", [{ name: "app", count: 1, maxParallel: 1, cpu: 200, memory: 128 }]));
    const [first] = (await client.allocations("solo")).value;
    expect(first?.DeploymentStatus?.Healthy).toBe(true);
    await client.setEligibility(first!.NodeID, false);
    const stopped = await client.stopAllocation(first!.ID);
    expect(stopped.EvalID).toMatch(/^[0-9a-f-]{36}$/);
    await nomad.settle();
    const old = await client.allocation(first!.ID);
    expect(old).toMatchObject({
      DesiredStatus: "stop",
      ClientStatus: "complete",
      NextAllocation: expect.any(String),
    });
    const replacement = await client.allocation(old.NextAllocation!);
    expect(replacement).toMatchObject({
      PreviousAllocation: first!.ID,
      ClientStatus: "running",
      DeploymentStatus: { Healthy: true },
    });
    expect(replacement.NodeID).not.toBe(first!.NodeID);
    const missing = await client
      .stopAllocation("00000000-0000-0000-0000-000000000000")
      .catch((e: unknown) => e);
    expect((missing as NomadError).kind).toBe("not-found");
  });
});
