/**
 * The parts of Nomad's API objects majordome reads (field names as on the wire). Nomad sends more;
 * what is not listed here is passed through untouched (e.g. a parsed Job goes back to plan and register).
 */
export type Job = Record<string, unknown> & {
  ID: string;
  Name?: string;
  Type?: string;
  Status?: string;
  Version?: number;
  Stable?: boolean;
  JobModifyIndex?: number;
  SubmitTime?: number;
  TaskGroups?: TaskGroup[];
};

export type TaskGroup = Record<string, unknown> & { Name: string; Count?: number; Tasks?: Task[] };
export type Task = Record<string, unknown> & {
  Name: string;
  Driver?: string;
  Config?: Record<string, unknown>;
};

export interface JobListStub {
  ID: string;
  Name: string;
  Namespace?: string;
  Type: string;
  Status: string;
  Version?: number;
  Stop?: boolean;
  ModifyIndex?: number;
  JobSummary?: { Summary?: Record<string, GroupSummary> };
}

export interface GroupSummary {
  Queued: number;
  Complete: number;
  Failed: number;
  Running: number;
  Starting: number;
  Lost: number;
  Unknown?: number;
}

export interface FieldDiff {
  Type: string;
  Name: string;
  Old: string;
  New: string;
  Annotations: string[] | null;
}

export interface ObjectDiff {
  Type: string;
  Name: string;
  Fields: FieldDiff[] | null;
  Objects: ObjectDiff[] | null;
}

export interface TaskDiff extends ObjectDiff {
  Annotations: string[] | null;
}

export interface TaskGroupDiff extends ObjectDiff {
  Tasks: TaskDiff[] | null;
  Updates: Record<string, number> | null;
}

export interface JobDiff {
  Type: string;
  ID: string;
  Fields: FieldDiff[] | null;
  Objects: ObjectDiff[] | null;
  TaskGroups: TaskGroupDiff[] | null;
}

export interface AllocMetric {
  NodesEvaluated?: number;
  NodesExhausted?: number;
  NodesFiltered?: number;
  DimensionExhausted?: Record<string, number> | null;
  ConstraintFiltered?: Record<string, number> | null;
  ClassExhausted?: Record<string, number> | null;
  CoalescedFailures?: number;
}

export interface PlanResponse {
  JobModifyIndex: number;
  Diff: JobDiff | null;
  Annotations: { DesiredTGUpdates: Record<string, Record<string, number>> | null } | null;
  FailedTGAllocs: Record<string, AllocMetric> | null;
  Warnings: string;
}

export interface RegisterResponse {
  EvalID: string;
  EvalCreateIndex: number;
  JobModifyIndex: number;
  Warnings?: string;
}

export interface Evaluation {
  ID: string;
  Status: string;
  StatusDescription?: string;
  DeploymentID?: string;
  FailedTGAllocs?: Record<string, AllocMetric> | null;
  BlockedEval?: string;
}

export interface TaskEvent {
  Type: string;
  Time: number;
  DisplayMessage?: string;
  Details?: Record<string, string>;
  ExitCode?: number;
  DriverError?: string;
}

export interface TaskState {
  State: string;
  Failed: boolean;
  Restarts: number;
  Events: TaskEvent[] | null;
}

export interface Allocation {
  ID: string;
  Name: string;
  Namespace?: string;
  NodeID: string;
  NodeName?: string;
  JobID: string;
  JobVersion?: number;
  TaskGroup: string;
  DesiredStatus: string;
  ClientStatus: string;
  ClientDescription?: string;
  DeploymentID?: string;
  DeploymentStatus?: { Healthy?: boolean | null; Canary?: boolean } | null;
  TaskStates?: Record<string, TaskState> | null;
  CreateTime?: number;
  ModifyTime?: number;
  CreateIndex?: number;
  ModifyIndex?: number;
  /** The replacement, once one is placed (in the list stub too). */
  NextAllocation?: string;
  /** In the list stub only (a full allocation has Job.Type). */
  JobType?: string;
}

export interface DeploymentGroupState {
  DesiredTotal: number;
  PlacedAllocs: number;
  HealthyAllocs: number;
  UnhealthyAllocs: number;
  DesiredCanaries: number;
  PlacedCanaries: string[] | null;
  Promoted: boolean;
  AutoRevert?: boolean;
  RequireProgressBy?: string;
}

export interface Deployment {
  ID: string;
  Namespace?: string;
  JobID: string;
  JobVersion: number;
  Status: string;
  StatusDescription: string;
  TaskGroups: Record<string, DeploymentGroupState> | null;
  CreateIndex?: number;
  ModifyIndex?: number;
}

export interface NodeStub {
  ID: string;
  Name: string;
  Datacenter: string;
  Status: string;
  SchedulingEligibility: string;
  Drain: boolean;
  NodeClass?: string;
  StatusDescription?: string;
  ModifyIndex?: number;
}

/** One event of /v1/event/stream (Topic and Type as on the wire: see nomad-enums.json). */
export interface NomadStreamEvent {
  Topic: string;
  Type: string;
  Key: string;
  Namespace?: string;
  FilterKeys?: string[] | null;
  Index: number;
  Payload: Record<string, unknown>;
}

/** One NDJSON line of the event stream: the events of one raft index, or a `{}` heartbeat. */
export type NomadStreamLine =
  { kind: "heartbeat" } | { kind: "frame"; index: number; events: NomadStreamEvent[] };

/** CPU and memory as Nomad reports a node's (NodeResources, ReservedResources). */
export interface NodeCapacity {
  Cpu?: { CpuShares?: number } | null;
  Memory?: { MemoryMB?: number } | null;
}

export interface DrainStrategy {
  DrainSpec: { Deadline: number; IgnoreSystemJobs: boolean };
  /** RFC 3339; Nomad's zero time when the drain has no deadline. */
  ForceDeadline?: string | null;
  StartedAt?: string;
}

export interface LastDrain {
  Status: "draining" | "complete" | "canceled" | string;
  StartedAt?: string;
  UpdatedAt?: string;
  Meta?: Record<string, string> | null;
}

export interface NodeEvent {
  Message: string;
  Subsystem?: string;
  Details?: Record<string, string> | null;
  Timestamp?: string;
}

/** GET /v1/node/:id (and /v1/nodes?resources=true for the resources). */
export interface NomadNode extends NodeStub {
  NodePool?: string;
  NodeResources?: NodeCapacity | null;
  ReservedResources?: NodeCapacity | null;
  DrainStrategy?: DrainStrategy | null;
  LastDrain?: LastDrain | null;
  Events?: NodeEvent[] | null;
  ModifyIndex?: number;
}

/** What drain and eligibility changes answer. */
export interface NodeUpdateResponse {
  EvalIDs: string[] | null;
  EvalCreateIndex: number;
  NodeModifyIndex: number;
  Index?: number;
}

/** A full allocation's resources (GET /v1/allocation/:id, /v1/node/:id/allocations). */
export interface AllocatedResources {
  Tasks?: Record<
    string,
    { Cpu?: { CpuShares?: number } | null; Memory?: { MemoryMB?: number } | null }
  > | null;
}

/** The fields of a full allocation (not the list stub) that node commands read. */
export interface FullAllocation extends Allocation {
  Job?: {
    Type?: string;
    Datacenters?: string[] | null;
    NodePool?: string;
    TaskGroups?: Array<{
      Name: string;
      Tasks?: Array<{
        Name: string;
        Env?: Record<string, string> | null;
        Templates?: Array<{ EmbeddedTmpl?: string }> | null;
      }> | null;
    }> | null;
  } | null;
  AllocatedResources?: AllocatedResources | null;
  DesiredTransition?: { Migrate?: boolean | null } | null;
  PreviousAllocation?: string;
}

/** How a node name or ID prefix someone typed resolved. */
export type NodeLookup =
  | { kind: "found"; node: NodeStub }
  | { kind: "ambiguous"; matches: NodeStub[] }
  | { kind: "unknown"; suggestions: string[] };
