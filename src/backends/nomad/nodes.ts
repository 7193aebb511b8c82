import { distance } from "fastest-levenshtein";
import type { FullAllocation, NodeCapacity, NodeLookup, NodeStub, NomadNode } from "./types.js";

/** Node logic with no I/O: finding the node someone named, and whether allocations fit elsewhere. */

const ID_PREFIX = /^[0-9a-f][0-9a-f-]*$/i;

/**
 * A node by exact name, exact ID, or unique ID prefix (people type names; Nomad's CLI takes ID
 * prefixes). Two nodes may share a name (a re-registered client): then the name is ambiguous.
 */
export function lookupNode(nodes: readonly NodeStub[], ref: string): NodeLookup {
  const byName = nodes.filter((n) => n.Name === ref);
  if (byName.length === 1) return { kind: "found", node: byName[0]! };
  if (byName.length > 1) return { kind: "ambiguous", matches: byName };
  const byId = ID_PREFIX.test(ref) ? nodes.filter((n) => n.ID.startsWith(ref.toLowerCase())) : [];
  if (byId.length === 1) return { kind: "found", node: byId[0]! };
  if (byId.length > 1) return { kind: "ambiguous", matches: byId };
  const near = nodes
    .map((n) => ({ name: n.Name, d: distance(ref.toLowerCase(), n.Name.toLowerCase()) }))
    .filter((c) => c.d <= Math.max(2, Math.floor(ref.length / 3)))
    .sort((a, b) => a.d - b.d || a.name.localeCompare(b.name));
  return { kind: "unknown", suggestions: [...new Set(near.map((c) => c.name))].slice(0, 3) };
}

export interface Demand {
  /** MHz (CpuShares). */
  cpu: number;
  memoryMb: number;
}

/** An allocation that a drain will move, with what it needs where it lands. */
export interface Mover {
  id: string;
  job: string;
  group: string;
  demand: Demand;
  /** The job's datacenters (glob patterns); empty: any. */
  datacenters: string[];
}

export interface Candidate {
  name: string;
  datacenter: string;
  free: Demand;
}

export interface RoomCheck {
  fits: boolean;
  /** Allocation ID → the node it would land on. */
  placements: Record<string, string>;
  /** What no candidate node has room for. */
  unplaced: Mover[];
}

/** An allocation stops holding resources once it is told to stop or has ended (TerminalStatus). */
export function holdsResources(alloc: FullAllocation): boolean {
  return alloc.DesiredStatus === "run" && !["complete", "failed", "lost"].includes(alloc.ClientStatus);
}

export function allocDemand(alloc: FullAllocation): Demand {
  const tasks = Object.values(alloc.AllocatedResources?.Tasks ?? {});
  return {
    cpu: tasks.reduce((sum, t) => sum + (t.Cpu?.CpuShares ?? 0), 0),
    memoryMb: tasks.reduce((sum, t) => sum + (t.Memory?.MemoryMB ?? 0), 0),
  };
}

const capacity = (c: NodeCapacity | null | undefined): Demand => ({
  cpu: c?.Cpu?.CpuShares ?? 0,
  memoryMb: c?.Memory?.MemoryMB ?? 0,
});

/** NodeResources minus ReservedResources minus what its live allocations hold. */
export function freeOn(node: NomadNode, allocs: readonly FullAllocation[]): Demand {
  const total = capacity(node.NodeResources);
  const reserved = capacity(node.ReservedResources);
  const used = allocs.filter(holdsResources).map(allocDemand);
  return {
    cpu: total.cpu - reserved.cpu - used.reduce((sum, d) => sum + d.cpu, 0),
    memoryMb: total.memoryMb - reserved.memoryMb - used.reduce((sum, d) => sum + d.memoryMb, 0),
  };
}

/** Where new allocations may go: ready, eligible, not draining. */
export function takesAllocations(node: NodeStub): boolean {
  return node.Status === "ready" && node.SchedulingEligibility === "eligible" && !node.Drain;
}

/**
 * A plan-like check on CPU and memory: the movers, biggest first, each on the candidate it fills most
 * (Nomad bin-packs), within the job's datacenters. Constraints, ports and devices are Nomad's to check.
 */
export function checkRoom(movers: readonly Mover[], candidates: readonly Candidate[]): RoomCheck {
  const free = new Map(candidates.map((c) => [c.name, { ...c.free }]));
  const placements: Record<string, string> = {};
  const unplaced: Mover[] = [];
  const size = (d: Demand) => d.memoryMb * 1_000 + d.cpu;
  for (const mover of [...movers].sort(
    (a, b) => size(b.demand) - size(a.demand) || a.id.localeCompare(b.id),
  )) {
    let best: { name: string; left: number } | undefined;
    for (const candidate of candidates) {
      if (!inDatacenters(mover.datacenters, candidate.datacenter)) continue;
      const room = free.get(candidate.name)!;
      if (room.cpu < mover.demand.cpu || room.memoryMb < mover.demand.memoryMb) continue;
      const left =
        (room.cpu - mover.demand.cpu) / Math.max(1, candidate.free.cpu) +
        (room.memoryMb - mover.demand.memoryMb) / Math.max(1, candidate.free.memoryMb);
      if (!best || left < best.left) best = { name: candidate.name, left };
    }
    if (!best) {
      unplaced.push(mover);
      continue;
    }
    const room = free.get(best.name)!;
    room.cpu -= mover.demand.cpu;
    room.memoryMb -= mover.demand.memoryMb;
    placements[mover.id] = best.name;
  }
  return { fits: unplaced.length === 0, placements, unplaced };
}

function inDatacenters(patterns: readonly string[], datacenter: string): boolean {
  if (patterns.length === 0) return true;
  return patterns.some((pattern) =>
    new RegExp(`^${pattern.replace(/[.+?^${}()|[\]\\]/g, "\\$&").replace(/\*/g, ".*")}$`).test(datacenter),
  );
}
