import { afterEach, describe, expect, it } from "vitest";
import {
  startNomadDouble,
  type NomadDouble,
  type NomadDoubleOptions,
} from "../../src/sandbox/nomad/index.js";
import type { Allocation, Evaluation, Node, JobSummary } from "../../src/sandbox/nomad/types.js";
import type { AllocationListStub } from "../../src/sandbox/nomad/serialize.js";
import { NomadApi } from "./api.js";

let nomad: NomadDouble;
let api: NomadApi;

async function start(options: NomadDoubleOptions = {}): Promise<void> {
  nomad = await startNomadDouble(options);
  api = new NomadApi(nomad.url);
}

afterEach(() => nomad.close());

interface NodeStub {
  ID: string;
  Name: string;
  Status: string;
  SchedulingEligibility: string;
  Drain: boolean;
}

const nodes = async () => (await api.get<NodeStub[]>("/v1/nodes")).body;
const nodeNamed = async (name: string) => (await nodes()).find((n) => n.Name === name);
const readNode = async (id: string) => (await api.get<Node>(`/v1/node/${id}`)).body;
const allocations = async (job: string) =>
  (await api.get<AllocationListStub[]>(`/v1/job/${job}/allocations`)).body;

describe("nodes", () => {
  it("lists the simulated nodes, ready and eligible, with their capacity", async () => {
    await start();
    const list = await nodes();
    expect(list.map((n) => [n.Name, n.Status, n.SchedulingEligibility, n.Drain]).sort()).toEqual([
      ["node-1", "ready", "eligible", false],
      ["node-2", "ready", "eligible", false],
      ["node-3", "ready", "eligible", false],
    ]);
    const node = await readNode(list[0]?.ID ?? "");
    expect(node.NodeResources).toMatchObject({ Cpu: { CpuShares: 4000 }, Memory: { MemoryMB: 8192 } });
    expect(node.Datacenter).toBe("dc1");
    expect(node.Events[0]?.Message).toBe("Node registered");
    expect((await api.get("/v1/node/nope")).status).toBe(404);
  });

  it("node down: its allocations are lost and replaced on the other nodes; back up: ready again", async () => {
    await start();
    await api.run("chat.hcl");
    await nomad.settle();
    const synapse = (await allocations("chat")).find((a) => a.TaskGroup === "synapse");
    const nodeName = synapse?.NodeName ?? "";
    const onNode = (await allocations("chat")).filter((a) => a.NodeName === nodeName);
    nomad.nodeDown(nodeName);
    await nomad.settle();

    const down = await readNode(synapse?.NodeID ?? "");
    expect(down.Status).toBe("down");
    expect(down.Events.at(-1)?.Message).toBe("Node heartbeat missed");
    const after = await allocations("chat");
    for (const lost of onNode) {
      const now = after.find((a) => a.ID === lost.ID);
      expect(now).toMatchObject({
        ClientStatus: "lost",
        DesiredStatus: "stop",
        DesiredDescription: "alloc is lost since its node is down",
      });
      // PreviousAllocation is not part of the list stub: read the allocation itself.
      const replacement = (await api.get<Allocation>(`/v1/allocation/${now?.NextAllocation ?? ""}`)).body;
      expect(replacement).toMatchObject({
        Name: lost.Name,
        ClientStatus: "running",
        PreviousAllocation: lost.ID,
      });
      expect(replacement.NodeName).not.toBe(nodeName);
    }
    const evals = (await api.get<Evaluation[]>("/v1/job/chat/evaluations")).body;
    expect(
      evals.some(
        (e) => e.TriggeredBy === "node-update" && e.NodeID === synapse?.NodeID && e.Status === "complete",
      ),
    ).toBe(true);
    expect((await api.get<JobSummary>("/v1/job/chat/summary")).body.Summary.synapse).toMatchObject({
      Lost: 1,
      Running: 1,
    });

    nomad.nodeUp(nodeName);
    await nomad.settle();
    expect((await nodeNamed(nodeName))?.Status).toBe("ready");
  });

  it("drains a node: allocations migrate, the drain completes, the node stays ineligible", async () => {
    await start();
    await api.run("chat.hcl");
    await nomad.settle();
    const synapse = (await allocations("chat")).find((a) => a.TaskGroup === "synapse");
    const nodeId = synapse?.NodeID ?? "";
    const drain = await api.post<Record<string, unknown>>(`/v1/node/${nodeId}/drain`, {
      DrainSpec: { Deadline: 3600e9, IgnoreSystemJobs: true },
      Meta: { message: "drain for maintenance" },
    });
    expect(drain.status).toBe(200);
    expect(Object.keys(drain.body).sort()).toEqual([
      "EvalCreateIndex",
      "EvalIDs",
      "Index",
      "NodeModifyIndex",
    ]);
    await nomad.settle();

    const node = await readNode(nodeId);
    expect(node).toMatchObject({ Drain: false, DrainStrategy: null, SchedulingEligibility: "ineligible" });
    expect(node.LastDrain).toMatchObject({ Status: "complete", Meta: { message: "drain for maintenance" } });
    expect(node.Events.map((e) => e.Message)).toEqual(
      expect.arrayContaining(["Node drain strategy set", "Node drain complete"]),
    );
    const migrated = (await api.get<Allocation>(`/v1/allocation/${synapse?.ID ?? ""}`)).body;
    expect(migrated).toMatchObject({
      DesiredStatus: "stop",
      DesiredDescription: "alloc is being migrated",
      ClientStatus: "complete",
    });
    expect(migrated.DesiredTransition.Migrate).toBe(true);
    const live = (await allocations("chat")).filter((a) => a.DesiredStatus === "run");
    expect(live.every((a) => a.NodeID !== nodeId && a.ClientStatus === "running")).toBe(true);

    const eligible = await api.post(`/v1/node/${nodeId}/eligibility`, { Eligibility: "eligible" });
    expect(eligible.status).toBe(200);
    expect((await readNode(nodeId)).SchedulingEligibility).toBe("eligible");
    const bad = await api.post(`/v1/node/${nodeId}/eligibility`, { Eligibility: "maybe" });
    expect([bad.status, bad.text]).toEqual([400, 'invalid scheduling eligibility "maybe"']);
  });

  it("queues what does not fit (blocked evaluation, FailedTGAllocs) and places it when a node comes back", async () => {
    // Synapse (1000 MHz) fits on one node only while the other one holds the rest.
    await start({
      nodes: [
        { name: "small-1", cpuMhz: 1100, memoryMb: 4096 },
        { name: "small-2", cpuMhz: 1100, memoryMb: 4096 },
      ],
    });
    await api.run("chat.hcl");
    await nomad.settle();
    const synapseNode = (await allocations("chat")).find((a) => a.TaskGroup === "synapse")?.NodeName ?? "";
    nomad.nodeDown(synapseNode);
    await nomad.settle();

    const evals = (await api.get<Evaluation[]>("/v1/job/chat/evaluations")).body;
    const blocked = evals.find((e) => e.Status === "blocked");
    expect(blocked).toMatchObject({
      TriggeredBy: "queued-allocs",
      StatusDescription: "created to place remaining allocations",
    });
    expect(blocked?.FailedTGAllocs?.synapse).toMatchObject({
      NodesEvaluated: 1,
      NodesExhausted: 1,
      DimensionExhausted: { cpu: 1 },
    });
    const summary = (await api.get<JobSummary>("/v1/job/chat/summary")).body;
    expect(summary.Summary.synapse).toMatchObject({ Queued: 1, Lost: 1, Running: 0 });

    nomad.nodeUp(synapseNode);
    await nomad.settle();
    const afterEvals = (await api.get<Evaluation[]>("/v1/job/chat/evaluations")).body;
    expect(afterEvals.find((e) => e.ID === blocked?.ID)?.Status).toBe("complete");
    const live = (await allocations("chat")).filter(
      (a) => a.DesiredStatus === "run" && a.ClientStatus === "running",
    );
    expect(live).toHaveLength(4);
  });
});
