import { serverError } from "./errors.js";
import type { Allocation, Evaluation, EvaluationStub, Job, JobSummary } from "./types.js";

/** The list forms of the API (structs.AllocListStub, JobListStub, EvaluationStub). */

export function allocStub(a: Allocation, options: { taskStates?: boolean; resources?: boolean } = {}) {
  return {
    ID: a.ID,
    EvalID: a.EvalID,
    Name: a.Name,
    Namespace: a.Namespace,
    NodeID: a.NodeID,
    NodeName: a.NodeName,
    JobID: a.JobID,
    JobType: a.Job?.Type ?? "",
    JobVersion: a.Job?.Version ?? 0,
    TaskGroup: a.TaskGroup,
    ...(options.resources === true ? { AllocatedResources: a.AllocatedResources } : {}),
    DesiredStatus: a.DesiredStatus,
    DesiredDescription: a.DesiredDescription,
    ClientStatus: a.ClientStatus,
    ClientDescription: a.ClientDescription,
    DesiredTransition: a.DesiredTransition,
    TaskStates: options.taskStates === false ? null : a.TaskStates,
    DeploymentStatus: a.DeploymentStatus,
    FollowupEvalID: a.FollowupEvalID,
    NextAllocation: a.NextAllocation,
    RescheduleTracker: a.RescheduleTracker,
    PreemptedAllocations: a.PreemptedAllocations,
    PreemptedByAllocation: a.PreemptedByAllocation,
    CreateIndex: a.CreateIndex,
    ModifyIndex: a.ModifyIndex,
    CreateTime: a.CreateTime,
    ModifyTime: a.ModifyTime,
  };
}

/** An element of GET /v1/allocations, /v1/job/:id/allocations and /v1/deployment/allocations/:id. */
export type AllocationListStub = ReturnType<typeof allocStub>;

export function jobStub(job: Job, summary: JobSummary | undefined, withMeta: boolean) {
  return {
    ID: job.ID,
    ParentID: job.ParentID,
    Name: job.Name,
    Namespace: job.Namespace,
    Datacenters: job.Datacenters,
    Multiregion: job.Multiregion,
    Type: job.Type,
    Priority: job.Priority,
    Periodic: job.Periodic !== null,
    ParameterizedJob: job.ParameterizedJob !== null,
    Stop: job.Stop,
    Status: job.Status,
    StatusDescription: job.StatusDescription,
    JobSummary: summary ?? null,
    CreateIndex: job.CreateIndex,
    ModifyIndex: job.ModifyIndex,
    JobModifyIndex: job.JobModifyIndex,
    SubmitTime: job.SubmitTime ?? 0,
    NodePool: job.NodePool,
    ...(withMeta ? { Meta: job.Meta } : {}),
  };
}

export function evalStub(e: Evaluation): EvaluationStub {
  return {
    ID: e.ID,
    Namespace: e.Namespace,
    Priority: e.Priority,
    Type: e.Type,
    TriggeredBy: e.TriggeredBy,
    JobID: e.JobID,
    NodeID: e.NodeID,
    DeploymentID: e.DeploymentID,
    Status: e.Status,
    StatusDescription: e.StatusDescription,
    WaitUntil: e.WaitUntil,
    NextEval: e.NextEval,
    PreviousEval: e.PreviousEval,
    BlockedEval: e.BlockedEval,
    CreateIndex: e.CreateIndex,
    ModifyIndex: e.ModifyIndex,
    CreateTime: e.CreateTime,
    ModifyTime: e.ModifyTime,
  };
}

/** Go's strconv.ParseBool, with the agent's error text. */
export function parseBool(name: string, raw: string | null): boolean {
  if (raw === null || raw === "") return false;
  if (["1", "t", "T", "TRUE", "true", "True"].includes(raw)) return true;
  if (["0", "f", "F", "FALSE", "false", "False"].includes(raw)) return false;
  throw serverError(
    `Failed to parse value of "${name}" (${raw}) as a bool: strconv.ParseBool: parsing "${raw}": invalid syntax`,
  );
}

export const inNamespace = (namespace: string, objectNamespace: string): boolean =>
  namespace === "*" || namespace === objectNamespace;

export const byId = <T extends { ID: string }>(a: T, b: T): number =>
  a.ID < b.ID ? -1 : a.ID > b.ID ? 1 : 0;
