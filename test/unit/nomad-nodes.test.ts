import { describe, expect, it } from "vitest";
import {
  allocDemand,
  checkRoom,
  freeOn,
  lookupNode,
  takesAllocations,
  type Mover,
} from "../../src/backends/nomad/nodes.js";
import type { FullAllocation, NodeStub, NomadNode } from "../../src/backends/nomad/types.js";

const stub = (name: string, id: string, extra: Partial<NodeStub> = {}): NodeStub => ({
  ID: id,
  Name: name,
  Datacenter: "dc1",
  Status: "ready",
  SchedulingEligibility: "eligible",
  Drain: false,
  ...extra,
});

const nodes = [
  stub("node-1", "5a3c0e2b-0000-4000-8000-000000000001"),
  stub("node-2", "5a3c9f11-0000-4000-8000-000000000002"),
  stub("web-3", "c0ffee00-0000-4000-8000-000000000003"),
];

const alloc = (
  id: string,
  cpu: number,
  memory: number,
  extra: Partial<FullAllocation> = {},
): FullAllocation => ({
  ID: id,
  Name: `job.app[${id}]`,
  NodeID: "n",
  JobID: "job",
  TaskGroup: "app",
  DesiredStatus: "run",
  ClientStatus: "running",
  AllocatedResources: {
    Tasks: {
      main: { Cpu: { CpuShares: cpu }, Memory: { MemoryMB: memory } },
      sidecar: { Cpu: { CpuShares: 50 }, Memory: { MemoryMB: 32 } },
    },
  },
  ...extra,
});

const mover = (id: string, cpu: number, memoryMb: number, datacenters: string[] = []): Mover => ({
  id,
  job: "job",
  group: "app",
  demand: { cpu, memoryMb },
  datacenters,
});

describe("lookupNode", () => {
  it("finds a node by exact name, exact ID or unique ID prefix", () => {
    expect(lookupNode(nodes, "web-3")).toEqual({ kind: "found", node: nodes[2] });
    expect(lookupNode(nodes, nodes[1]!.ID)).toEqual({ kind: "found", node: nodes[1] });
    expect(lookupNode(nodes, "C0FF")).toEqual({ kind: "found", node: nodes[2] });
  });

  it("says when a prefix or a name matches several nodes", () => {
    expect(lookupNode(nodes, "5a3c")).toEqual({ kind: "ambiguous", matches: [nodes[0], nodes[1]] });
    const twice = [...nodes, stub("web-3", "d0000000-0000-4000-8000-000000000004", { Status: "down" })];
    expect(lookupNode(twice, "web-3").kind).toBe("ambiguous");
  });

  it("suggests the closest names for an unknown one, none when nothing is close", () => {
    expect(lookupNode(nodes, "node-4")).toEqual({ kind: "unknown", suggestions: ["node-1", "node-2"] });
    expect(lookupNode(nodes, "web3")).toEqual({ kind: "unknown", suggestions: ["web-3"] });
    expect(lookupNode(nodes, "database")).toEqual({ kind: "unknown", suggestions: [] });
  });
});

describe("room on the other nodes", () => {
  it("sums a full allocation's task resources", () => {
    expect(allocDemand(alloc("a", 200, 128))).toEqual({ cpu: 250, memoryMb: 160 });
  });

  it("free room: resources minus reserved minus live allocations (stopped ones hold nothing)", () => {
    const node = {
      ...stub("node-1", "1"),
      NodeResources: { Cpu: { CpuShares: 4000 }, Memory: { MemoryMB: 8192 } },
      ReservedResources: { Cpu: { CpuShares: 100 }, Memory: { MemoryMB: 256 } },
    } satisfies NomadNode;
    const allocs = [
      alloc("a", 200, 128),
      alloc("b", 1000, 1000, { DesiredStatus: "stop" }),
      alloc("c", 1000, 1000, { ClientStatus: "complete" }),
    ];
    expect(freeOn(node, allocs)).toEqual({ cpu: 4000 - 100 - 250, memoryMb: 8192 - 256 - 160 });
  });

  it("only ready, eligible nodes that are not draining take allocations", () => {
    expect(takesAllocations(stub("a", "1"))).toBe(true);
    expect(takesAllocations(stub("a", "1", { Status: "down" }))).toBe(false);
    expect(takesAllocations(stub("a", "1", { SchedulingEligibility: "ineligible" }))).toBe(false);
    expect(takesAllocations(stub("a", "1", { Drain: true }))).toBe(false);
  });

  it("packs the biggest first, on the node it fills most, and names what does not fit", () => {
    const candidates = [
      { name: "roomy", datacenter: "dc1", free: { cpu: 4000, memoryMb: 4096 } },
      { name: "tight", datacenter: "dc1", free: { cpu: 600, memoryMb: 600 } },
    ];
    const fits = checkRoom([mover("small", 500, 500), mover("big", 2500, 3000)], candidates);
    // The small one fills "tight" most; the big one only fits on "roomy".
    expect(fits).toEqual({ fits: true, placements: { big: "roomy", small: "tight" }, unplaced: [] });

    const tooMuch = checkRoom([mover("a", 2500, 100), mover("b", 2500, 100)], candidates);
    expect(tooMuch.fits).toBe(false);
    expect(tooMuch.unplaced.map((m) => m.id)).toEqual(["b"]);
    expect(checkRoom([mover("a", 1, 1)], []).unplaced).toHaveLength(1);
  });

  it("keeps an allocation within its job's datacenters (globs allowed)", () => {
    const candidates = [
      { name: "paris", datacenter: "par1", free: { cpu: 4000, memoryMb: 4096 } },
      { name: "lyon", datacenter: "lyo1", free: { cpu: 100, memoryMb: 100 } },
    ];
    expect(checkRoom([mover("a", 500, 500, ["lyo*"])], candidates).fits).toBe(false);
    expect(checkRoom([mover("a", 500, 500, ["par*", "lyo1"])], candidates).placements).toEqual({
      a: "paris",
    });
  });
});
