import type { Cluster } from "./cluster.js";
import { jobDiff, type JobDiff, type TaskDiff, type TaskGroupDiff } from "./diff.js";
import { newEval } from "./objects.js";
import type { DesiredUpdates } from "./reconcile.js";
import { placeAll, reconcileJob } from "./scheduler.js";
import { jobKey } from "./store.js";
import type { AllocMetric, Evaluation, Job } from "./types.js";
import { specChanged } from "./updates.js";

/** structs.JobPlanResponse. */
export interface PlanResponse {
  Annotations: { DesiredTGUpdates: Record<string, DesiredUpdates>; PreemptedAllocs: null };
  FailedTGAllocs: Record<string, AllocMetric> | null;
  JobModifyIndex: number;
  CreatedEvals: Evaluation[] | null;
  Diff: JobDiff | null;
  NextPeriodicLaunch: string;
  Warnings: string;
  Index: number;
}

/**
 * Job.Plan: the scheduler run against the state as if the job were registered, nothing written.
 * JobModifyIndex is the registered job's, for a later register with EnforceIndex.
 */
export function planJob(cluster: Cluster, job: Job, withDiff: boolean): PlanResponse {
  const existing = cluster.store.jobs.get(jobKey(job.Namespace, job.ID));
  const candidate: Job = {
    ...job,
    CreateIndex: existing?.CreateIndex ?? 0,
    Version: existing === undefined ? 0 : existing.Version + (specChanged(existing, job) ? 1 : 0),
  };
  const result = reconcileJob(cluster, job.Namespace, job.ID, candidate);
  const evaluation = newEval(candidate, { triggeredBy: "job-register" });
  evaluation.AnnotatePlan = true;
  const outcome = placeAll(cluster, candidate, result, evaluation);
  const failed = Object.keys(outcome.failed).length > 0 ? outcome.failed : null;
  const index = existing?.JobModifyIndex ?? 0;
  return {
    Annotations: { DesiredTGUpdates: result.desired, PreemptedAllocs: null },
    FailedTGAllocs: failed,
    JobModifyIndex: index,
    CreatedEvals: failed === null ? null : [blockedEval(candidate, evaluation, failed)],
    Diff: withDiff ? annotate(jobDiff(existing, job, true), result.desired) : null,
    NextPeriodicLaunch: "0001-01-01T00:00:00Z",
    Warnings: "",
    Index: index,
  };
}

function blockedEval(job: Job, previous: Evaluation, failed: Record<string, AllocMetric>): Evaluation {
  const blocked = newEval(job, {
    triggeredBy: "queued-allocs",
    status: "blocked",
    statusDescription: "created to place remaining allocations",
    previousEval: previous.ID,
  });
  blocked.FailedTGAllocs = failed;
  blocked.ClassEligibility = { "v1:1234567890123456789": true };
  return blocked;
}

/** scheduler/annotate.go: group update counts, count changes, and what each task change forces. */
export function annotate(diff: JobDiff, desired: Record<string, DesiredUpdates>): JobDiff {
  for (const group of diff.TaskGroups ?? []) {
    const updates = desired[group.Name];
    if (updates !== undefined) group.Updates = updateCounts(updates);
    annotateCount(group);
    for (const task of group.Tasks ?? []) annotateTask(task, group);
  }
  return diff;
}

function updateCounts(u: DesiredUpdates): Record<string, number> {
  const pairs: [string, number][] = [
    ["ignore", u.Ignore],
    ["create", u.Place],
    ["migrate", u.Migrate],
    ["destroy", u.Stop],
    ["canary", u.Canary],
    ["in-place update", u.InPlaceUpdate],
    ["create/destroy update", u.DestructiveUpdate],
  ];
  return Object.fromEntries(pairs.filter(([, n]) => n !== 0));
}

function annotateCount(group: TaskGroupDiff): void {
  const count = group.Fields?.find((f) => f.Name === "Count");
  if (count === undefined) return;
  const [oldV, newV] = [Number(count.Old || "0"), Number(count.New || "0")];
  if (oldV < newV) count.Annotations = [...(count.Annotations ?? []), "forces create"];
  else if (newV < oldV) count.Annotations = [...(count.Annotations ?? []), "forces destroy"];
}

const IN_PLACE_OBJECTS = ["Service", "Constraint", "Affinity", "Spread"];

function annotateTask(task: TaskDiff, group: TaskGroupDiff): void {
  if (task.Type === "None") return;
  if ((group.Type === "Added" || group.Type === "Deleted") && task.Type !== "Edited") {
    task.Annotations = [task.Type === "Added" ? "forces create" : "forces destroy"];
    return;
  }
  const destructiveField = (task.Fields ?? []).some((f) => f.Name !== "KillTimeout");
  const destructiveObject = (task.Objects ?? []).some((o) => {
    if (IN_PLACE_OBJECTS.includes(o.Name)) return false;
    if (o.Name === "LogConfig") return (o.Fields ?? []).some((f) => f.Name === "Disabled");
    return true;
  });
  task.Annotations = [
    destructiveField || destructiveObject ? "forces create/destroy update" : "forces in-place update",
  ];
}
