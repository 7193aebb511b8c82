import { randomUUID } from "node:crypto";
import type {
  AllocMetric,
  Allocation,
  Evaluation,
  Job,
  NetworkResource,
  Node,
  SimpleResources,
  TaskGroup,
} from "./types.js";

/** Constructors for the objects the server creates, with every field the API serializes. */

export const newId = (): string => randomUUID();

export interface EvalInit {
  triggeredBy: string;
  jobModifyIndex?: number;
  nodeId?: string;
  nodeModifyIndex?: number;
  deploymentId?: string;
  status?: Evaluation["Status"];
  previousEval?: string;
  statusDescription?: string;
}

export function newEval(
  job: Pick<Job, "ID" | "Namespace" | "Priority" | "Type">,
  init: EvalInit,
): Evaluation {
  return {
    ID: newId(),
    Namespace: job.Namespace,
    Priority: job.Priority,
    Type: job.Type,
    TriggeredBy: init.triggeredBy,
    JobID: job.ID,
    JobModifyIndex: init.jobModifyIndex ?? 0,
    NodeID: init.nodeId ?? "",
    NodeModifyIndex: init.nodeModifyIndex ?? 0,
    DeploymentID: init.deploymentId ?? "",
    Status: init.status ?? "pending",
    StatusDescription: init.statusDescription ?? "",
    Wait: 0,
    WaitUntil: null,
    NextEval: "",
    PreviousEval: init.previousEval ?? "",
    BlockedEval: "",
    RelatedEvals: null,
    FailedTGAllocs: null,
    ClassEligibility: null,
    QuotaLimitReached: "",
    EscapedComputedClass: false,
    AnnotatePlan: false,
    QueuedAllocations: null,
    LeaderACL: "",
    SnapshotIndex: 0,
    CreateIndex: 0,
    ModifyIndex: 0,
    CreateTime: 0,
    ModifyTime: 0,
  };
}

export function emptyMetric(nodesInPool: number, available: Record<string, number>): AllocMetric {
  return {
    NodesEvaluated: 0,
    NodesFiltered: 0,
    NodesInPool: nodesInPool,
    NodesAvailable: available,
    ClassFiltered: null,
    ConstraintFiltered: null,
    NodesExhausted: 0,
    ClassExhausted: null,
    DimensionExhausted: null,
    QuotaExhausted: null,
    ResourcesExhausted: null,
    Scores: null,
    ScoreMetaData: null,
    AllocationTime: 0,
    CoalescedFailures: 0,
  };
}

/** CPU (MHz) and memory (MB) a group asks for: the sum of its tasks. */
export function groupDemand(tg: TaskGroup): { cpu: number; memory: number } {
  return tg.Tasks.reduce(
    (sum, t) => ({ cpu: sum.cpu + t.Resources.CPU, memory: sum.memory + t.Resources.MemoryMB }),
    { cpu: 0, memory: 0 },
  );
}

export interface AllocInit {
  job: Job;
  tg: TaskGroup;
  name: string;
  node: Node;
  evalId: string;
  deploymentId: string;
  canary: boolean;
  metric: AllocMetric;
  previous?: Allocation;
  ports: NetworkResource[] | null;
}

export function newAllocation(init: AllocInit): Allocation {
  const { job, tg, node } = init;
  const resources = sharedResources(tg, init.ports);
  return {
    ID: newId(),
    Namespace: job.Namespace,
    EvalID: init.evalId,
    Name: init.name,
    NodeID: node.ID,
    NodeName: node.Name,
    JobID: job.ID,
    Job: job,
    TaskGroup: tg.Name,
    Resources: { ...taskTotal(tg), DiskMB: tg.EphemeralDisk.SizeMB, Networks: init.ports },
    SharedResources: resources,
    TaskResources: Object.fromEntries(tg.Tasks.map((t) => [t.Name, taskResources(t.Resources)])),
    AllocatedResources: allocated(tg, init.ports),
    Metrics: init.metric,
    DesiredStatus: "run",
    DesiredDescription: "",
    DesiredTransition: { Migrate: null, Reschedule: null, ForceReschedule: null, NoShutdownDelay: null },
    ClientStatus: "pending",
    ClientDescription: "",
    TaskStates: null,
    AllocStates: null,
    PreviousAllocation: init.previous?.ID ?? "",
    NextAllocation: "",
    DeploymentID: init.deploymentId,
    DeploymentStatus: init.canary
      ? { Healthy: null, Timestamp: "0001-01-01T00:00:00Z", Canary: true, ModifyIndex: 0 }
      : null,
    RescheduleTracker: null,
    NetworkStatus: null,
    FollowupEvalID: "",
    PreemptedAllocations: null,
    PreemptedByAllocation: "",
    CreateIndex: 0,
    ModifyIndex: 0,
    AllocModifyIndex: 0,
    CreateTime: 0,
    ModifyTime: 0,
  };
}

function taskResources(r: {
  CPU: number;
  Cores: number;
  MemoryMB: number;
  MemoryMaxMB: number;
}): SimpleResources {
  return {
    CPU: r.CPU,
    Cores: r.Cores,
    MemoryMB: r.MemoryMB,
    MemoryMaxMB: r.MemoryMaxMB,
    DiskMB: 0,
    IOPS: 0,
    Networks: null,
    Devices: null,
  };
}

function taskTotal(tg: TaskGroup): SimpleResources {
  const demand = groupDemand(tg);
  return taskResources({ CPU: demand.cpu, Cores: 0, MemoryMB: demand.memory, MemoryMaxMB: 0 });
}

function sharedResources(tg: TaskGroup, ports: NetworkResource[] | null): SimpleResources {
  return {
    ...taskResources({ CPU: 0, Cores: 0, MemoryMB: 0, MemoryMaxMB: 0 }),
    DiskMB: tg.EphemeralDisk.SizeMB,
    Networks: ports,
  };
}

function allocated(tg: TaskGroup, ports: NetworkResource[] | null) {
  return {
    Tasks: Object.fromEntries(
      tg.Tasks.map((t) => [
        t.Name,
        {
          Cpu: { CpuShares: t.Resources.CPU, ReservedCores: null },
          Memory: { MemoryMB: t.Resources.MemoryMB, MemoryMaxMB: t.Resources.MemoryMaxMB },
          Networks: null,
          Devices: null,
        },
      ]),
    ),
    TaskLifecycles: Object.fromEntries(tg.Tasks.map((t) => [t.Name, t.Lifecycle])),
    Shared: {
      DiskMB: tg.EphemeralDisk.SizeMB,
      Networks: ports,
      Ports: (ports ?? []).flatMap((n) =>
        [...(n.ReservedPorts ?? []), ...(n.DynamicPorts ?? [])].map((p) => ({
          Label: p.Label,
          Value: p.Value,
          To: p.To,
          HostIP: n.IP,
        })),
      ),
    },
  };
}
