import { capacityOf, nodeIp, type Capacity } from "./nodes.js";
import { emptyMetric, groupDemand } from "./objects.js";
import type { AllocMetric, Constraint, Job, NetworkResource, Node, Port, TaskGroup } from "./types.js";

/**
 * Picks a node for one allocation as Nomad's stack does, in small: feasibility (status, eligibility,
 * datacenter, drivers, constraints), then bin-packing with a job anti-affinity penalty. The metric
 * explains the choice or the failure (FailedTGAllocs).
 */
export class NodeUsage {
  private readonly used = new Map<string, Capacity>();
  private readonly groupCount = new Map<string, number>();
  private readonly ports = new Map<string, Set<number>>();

  add(nodeId: string, demand: Capacity, group: string, portValues: readonly number[]): void {
    const current = this.used.get(nodeId) ?? { cpu: 0, memory: 0 };
    this.used.set(nodeId, { cpu: current.cpu + demand.cpu, memory: current.memory + demand.memory });
    this.groupCount.set(`${nodeId}/${group}`, (this.groupCount.get(`${nodeId}/${group}`) ?? 0) + 1);
    const ports = this.ports.get(nodeId) ?? new Set<number>();
    for (const port of portValues) ports.add(port);
    this.ports.set(nodeId, ports);
  }

  usedOn(nodeId: string): Capacity {
    return this.used.get(nodeId) ?? { cpu: 0, memory: 0 };
  }

  sameGroupOn(nodeId: string, group: string): number {
    return this.groupCount.get(`${nodeId}/${group}`) ?? 0;
  }

  portsOn(nodeId: string): Set<number> {
    return this.ports.get(nodeId) ?? new Set();
  }
}

export interface Choice {
  node: Node | undefined;
  metric: AllocMetric;
  ports: NetworkResource[] | null;
}

export function selectNode(nodes: readonly Node[], usage: NodeUsage, job: Job, tg: TaskGroup): Choice {
  const pool = nodes.filter((n) => n.NodePool === job.NodePool || job.NodePool === "all");
  const inDc = pool.filter((n) => datacenterMatches(job.Datacenters, n.Datacenter));
  const metric = emptyMetric(pool.length, availableByDc(inDc));
  const demand = groupDemand(tg);
  const group = `${job.Namespace}/${job.ID}/${tg.Name}`;
  let best: { node: Node; score: number } | undefined;
  for (const node of inDc) {
    if (!feasible(node, job, tg, metric, usage, group)) continue;
    metric.NodesEvaluated += 1;
    if (!fits(node, demand, usage, tg, metric)) continue;
    const score = binpackScore(node, demand, usage) - usage.sameGroupOn(node.ID, group) * 0.5;
    (metric.Scores ??= {})[`${node.ID}.binpack`] = score;
    if (best === undefined || score > best.score) best = { node, score };
  }
  metric.NodesFiltered += pool.length - inDc.length;
  metric.AllocationTime = 20_000 + Math.floor(Math.random() * 40_000);
  if (best === undefined) return { node: undefined, metric, ports: null };
  return { node: best.node, metric, ports: assignPorts(tg, best.node, usage) };
}

export function datacenterMatches(datacenters: readonly string[] | null, dc: string): boolean {
  return (datacenters ?? ["*"]).some((pattern) => globMatch(pattern, dc));
}

const globMatch = (pattern: string, value: string): boolean =>
  new RegExp(`^${pattern.replace(/[.+?^${}()|[\]\\]/g, "\\$&").replace(/\*/g, ".*")}$`).test(value);

function availableByDc(nodes: readonly Node[]): Record<string, number> {
  const out: Record<string, number> = {};
  for (const node of nodes) {
    out[node.Datacenter] = (out[node.Datacenter] ?? 0) + (schedulable(node) ? 1 : 0);
  }
  return out;
}

export const schedulable = (node: Node): boolean =>
  node.Status === "ready" && node.SchedulingEligibility === "eligible" && !node.Drain;

function feasible(
  node: Node,
  job: Job,
  tg: TaskGroup,
  metric: AllocMetric,
  usage: NodeUsage,
  group: string,
): boolean {
  if (!schedulable(node)) {
    metric.NodesFiltered += 1;
    return false;
  }
  const missingDriver = tg.Tasks.some((t) => node.Drivers[t.Driver] === undefined);
  if (missingDriver) return filtered(metric, "missing drivers");
  const constraints = [
    ...(job.Constraints ?? []),
    ...(tg.Constraints ?? []),
    ...tg.Tasks.flatMap((t) => t.Constraints ?? []),
  ];
  for (const c of constraints) {
    if (c.Operand === "distinct_hosts" && usage.sameGroupOn(node.ID, group) > 0)
      return filtered(metric, "distinct_hosts");
    if (!satisfies(node, c)) return filtered(metric, `${c.LTarget} ${c.Operand} ${c.RTarget}`);
  }
  return true;
}

function filtered(metric: AllocMetric, reason: string): false {
  metric.NodesFiltered += 1;
  (metric.ConstraintFiltered ??= {})[reason] = (metric.ConstraintFiltered[reason] ?? 0) + 1;
  return false;
}

function fits(node: Node, demand: Capacity, usage: NodeUsage, tg: TaskGroup, metric: AllocMetric): boolean {
  const capacity = capacityOf(node);
  const used = usage.usedOn(node.ID);
  const taken = usage.portsOn(node.ID);
  const collision = reservedPorts(tg).find((p) => taken.has(p.Value));
  let dimension: string | undefined;
  if (used.cpu + demand.cpu > capacity.cpu) dimension = "cpu";
  else if (used.memory + demand.memory > capacity.memory) dimension = "memory";
  else if (collision !== undefined)
    dimension = `network: reserved port collision ${collision.Label}=${collision.Value}`;
  if (dimension === undefined) return true;
  metric.NodesExhausted += 1;
  (metric.DimensionExhausted ??= {})[dimension] = (metric.DimensionExhausted[dimension] ?? 0) + 1;
  return false;
}

function binpackScore(node: Node, demand: Capacity, usage: NodeUsage): number {
  const capacity = capacityOf(node);
  const used = usage.usedOn(node.ID);
  const cpu = (used.cpu + demand.cpu) / Math.max(1, capacity.cpu);
  const memory = (used.memory + demand.memory) / Math.max(1, capacity.memory);
  return Math.round(((cpu + memory) / 2) * 1e6) / 1e6;
}

const reservedPorts = (tg: TaskGroup): Port[] => (tg.Networks ?? []).flatMap((n) => n.ReservedPorts ?? []);

function assignPorts(tg: TaskGroup, node: Node, usage: NodeUsage): NetworkResource[] | null {
  if (tg.Networks === null) return null;
  const taken = new Set(usage.portsOn(node.ID));
  return tg.Networks.map((network) => ({
    ...network,
    IP: nodeIp(node),
    DynamicPorts: network.DynamicPorts?.map((p) => ({ ...p, Value: freePort(taken) })) ?? null,
  }));
}

function freePort(taken: Set<number>): number {
  for (let attempt = 0; attempt < 100; attempt++) {
    const port = 20000 + Math.floor(Math.random() * 12000);
    if (!taken.has(port)) {
      taken.add(port);
      return port;
    }
  }
  return 31999;
}

export const allocPortValues = (networks: readonly NetworkResource[] | null): number[] =>
  (networks ?? []).flatMap((n) =>
    [...(n.ReservedPorts ?? []), ...(n.DynamicPorts ?? [])].map((p) => p.Value),
  );

/** Resolves `${attr.kernel.name}`, `${node.unique.name}`, `${meta.x}`... against a node. */
function resolve(node: Node, target: string): string | undefined {
  const match = /^\$\{(.+)\}$/.exec(target);
  if (match?.[1] === undefined) return target;
  const path = match[1];
  if (path.startsWith("attr.")) return node.Attributes[path.slice(5)];
  if (path.startsWith("meta.")) return node.Meta[path.slice(5)];
  const fixed: Record<string, string> = {
    "node.unique.id": node.ID,
    "node.unique.name": node.Name,
    "node.datacenter": node.Datacenter,
    "node.class": node.NodeClass,
    "node.pool": node.NodePool,
  };
  return fixed[path];
}

function satisfies(node: Node, c: Constraint): boolean {
  const left = resolve(node, c.LTarget);
  const right = resolve(node, c.RTarget) ?? "";
  switch (c.Operand) {
    case "=":
    case "==":
    case "is":
      return left === right;
    case "!=":
    case "not":
      return left !== right;
    case "regexp":
      return left !== undefined && new RegExp(right).test(left);
    case "set_contains":
    case "set_contains_all":
      return right.split(",").every((v) =>
        (left ?? "")
          .split(",")
          .map((s) => s.trim())
          .includes(v.trim()),
      );
    case "set_contains_any":
      return right.split(",").some((v) =>
        (left ?? "")
          .split(",")
          .map((s) => s.trim())
          .includes(v.trim()),
      );
    case "is_set":
      return left !== undefined;
    case "is_not_set":
      return left === undefined;
    case "<":
    case "<=":
    case ">":
    case ">=":
      return compare(left, right, c.Operand);
    default:
      return true;
  }
}

function compare(left: string | undefined, right: string, op: string): boolean {
  if (left === undefined) return false;
  const [a, b] = [Number(left), Number(right)];
  const diff = Number.isNaN(a) || Number.isNaN(b) ? left.localeCompare(right) : a - b;
  return op === "<" ? diff < 0 : op === "<=" ? diff <= 0 : op === ">" ? diff > 0 : diff >= 0;
}
