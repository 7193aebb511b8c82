import type { Cluster } from "./cluster.js";
import { toStoredJob } from "./canonical.js";
import { multiError, notFound, badRequest, serverError } from "./errors.js";
import { copy } from "./json.js";
import { newEval } from "./objects.js";
import { deploymentActive } from "./reconcile.js";
import { jobKey, type MsgType } from "./store.js";
import type { Evaluation, Job, JobSubmission, ScalingPolicy } from "./types.js";
import { specChanged } from "./updates.js";

/** The server's job RPCs (nomad/job_endpoint.go): register, deregister, scale, revert, evaluate. */

/** api.JobRegisterResponse (also the answer of revert, scale and evaluate). */
export interface RegisterResponse {
  EvalID: string;
  EvalCreateIndex: number;
  JobModifyIndex: number;
  Warnings: string;
  Index: number;
  LastContact: number;
  KnownLeader: boolean;
}

export interface RegisterOptions {
  enforceIndex: boolean;
  jobModifyIndex: number;
  submission: Omit<JobSubmission, "Namespace" | "JobID" | "Version" | "JobModifyIndex"> | undefined;
  preserveCounts: boolean;
}

/** api.RegisterEnforceIndexErrPrefix. */
export const ENFORCE_INDEX_PREFIX = "Enforcing job modify index";

export class JobService {
  constructor(private readonly cluster: Cluster) {}

  register(apiJob: Job, options: RegisterOptions): RegisterResponse {
    const job = toStoredJob(apiJob);
    validate(job);
    const store = this.cluster.store;
    const existing = store.jobs.get(jobKey(job.Namespace, job.ID));
    if (options.enforceIndex) checkIndex(existing, options.jobModifyIndex);
    if (existing !== undefined && options.preserveCounts) preserveCounts(existing, job);
    return this.commit(job, existing, options.submission, "job-register");
  }

  private commit(
    job: Job,
    existing: Job | undefined,
    submission: RegisterOptions["submission"],
    trigger: string,
  ): RegisterResponse {
    const store = this.cluster.store;
    const changed = existing === undefined || specChanged(existing, job);
    const evaluation = runsEvals(job) ? newEval(job, { triggeredBy: trigger }) : undefined;
    if (!changed && existing !== undefined) return this.evalOnly(existing, evaluation, "EvaluationUpdated");
    job.Version = existing === undefined ? 0 : existing.Version + 1;
    job.Stable = false;
    job.SubmitTime = this.cluster.clock.nowNs();
    job.Status = existing?.Status ?? "pending";
    const index = store.write("JobRegistered", (tx) => {
      tx.upsertJob(job, { newVersion: true });
      if (evaluation !== undefined) {
        evaluation.JobModifyIndex = tx.index;
        tx.upsertEval(evaluation);
      }
      if (submission !== undefined) {
        store.submissions.set(`${jobKey(job.Namespace, job.ID)}\u0000${job.Version}`, {
          ...submission,
          Namespace: job.Namespace,
          JobID: job.ID,
          Version: job.Version,
          JobModifyIndex: tx.index,
        });
      }
      return tx.index;
    });
    if (evaluation !== undefined) this.cluster.enqueue(evaluation.ID);
    return response(
      evaluation === undefined ? "" : evaluation.ID,
      evaluation === undefined ? 0 : index,
      index,
      index,
    );
  }

  /** An unchanged job only gets a new evaluation (Job.Register with !specChanged). */
  private evalOnly(job: Job, evaluation: Evaluation | undefined, type: MsgType): RegisterResponse {
    if (evaluation === undefined) return response("", 0, job.JobModifyIndex, 0);
    evaluation.JobModifyIndex = job.JobModifyIndex;
    const index = this.cluster.store.write(type, (tx) => {
      tx.upsertEval(evaluation);
      return tx.index;
    });
    this.cluster.enqueue(evaluation.ID);
    return response(evaluation.ID, index, job.JobModifyIndex, index);
  }

  /** DELETE /v1/job/:id: a stopped new version, or the job gone with purge. */
  deregister(namespace: string, jobId: string, purge: boolean) {
    const store = this.cluster.store;
    const job = store.jobs.get(jobKey(namespace, jobId));
    if (job === undefined) return { ...response("", 0, 0, 0), VolumeEvalID: "", VolumeEvalIndex: 0 };
    const evaluation = runsEvals(job)
      ? newEval({ ...job, Type: "service" }, { triggeredBy: "job-deregister" })
      : undefined;
    const index = store.write("JobDeregistered", (tx) => {
      if (purge) tx.deleteJob(job);
      else if (!job.Stop) {
        const stopped: Job = {
          ...copy(job),
          Stop: true,
          Version: job.Version + 1,
          Stable: false,
          SubmitTime: tx.now,
        };
        tx.upsertJob(stopped, { newVersion: true });
      }
      if (evaluation !== undefined) {
        evaluation.JobModifyIndex = tx.index;
        tx.upsertEval(evaluation);
      }
      return tx.index;
    });
    if (evaluation !== undefined) this.cluster.enqueue(evaluation.ID);
    return { ...response(evaluation?.ID ?? "", index, index, index), VolumeEvalID: "", VolumeEvalIndex: 0 };
  }

  /** POST /v1/job/:id/evaluate: a new evaluation (raft AllocUpdateDesiredTransition). */
  evaluate(namespace: string, jobId: string): RegisterResponse {
    const job = this.cluster.store.jobs.get(jobKey(namespace, jobId));
    if (job === undefined) throw serverError("job not found");
    if (job.Periodic !== null) throw serverError("can't evaluate periodic job");
    if (job.ParameterizedJob !== null) throw serverError("can't evaluate parameterized job");
    const evaluation = newEval(job, { triggeredBy: "job-register", jobModifyIndex: job.ModifyIndex });
    const index = this.cluster.store.write("AllocationUpdateDesiredStatus", (tx) => {
      tx.upsertEval(evaluation);
      return tx.index;
    });
    this.cluster.enqueue(evaluation.ID);
    return response(evaluation.ID, index, job.ModifyIndex, index);
  }

  revert(
    namespace: string,
    jobId: string,
    version: number,
    enforcePriorVersion: number | undefined,
  ): RegisterResponse {
    const store = this.cluster.store;
    const current = store.jobs.get(jobKey(namespace, jobId));
    if (current === undefined) throw serverError(`job "${jobId}" not found`);
    if (version === current.Version) throw serverError("can't revert to current version");
    const target = store.jobVersion(namespace, jobId, version);
    if (target === undefined)
      throw serverError(`job "${jobId}" in namespace "${namespace}" at version ${version} not found`);
    if (enforcePriorVersion !== undefined && enforcePriorVersion !== current.Version) {
      throw serverError(
        `Current job has version ${current.Version}; enforcing version ${enforcePriorVersion}`,
      );
    }
    return this.commit({ ...copy(target), Stop: false }, current, undefined, "job-register");
  }

  scale(
    namespace: string,
    jobId: string,
    group: string,
    count: number | undefined,
    event: ScaleEventInput,
  ): RegisterResponse {
    const store = this.cluster.store;
    const job = store.jobs.get(jobKey(namespace, jobId));
    if (job === undefined) throw notFound(`job "${jobId}" not found`);
    if (job.Type === "system") throw badRequest('cannot scale jobs of type "system"');
    const tg = job.TaskGroups?.find((g) => g.Name === group);
    if (tg === undefined)
      throw badRequest(`task group "${group}" specified for scaling does not exist in job`);
    if (count === undefined) return { ...response("", 0, job.ModifyIndex, store.latestIndex()) };
    checkScalingBounds(tg.Scaling, count);
    const deployment = store.latestDeployment(namespace, jobId);
    if (
      deployment !== undefined &&
      deploymentActive(deployment) &&
      deployment.JobCreateIndex === job.CreateIndex
    ) {
      throw badRequest("job scaling blocked due to active deployment");
    }
    const scaled: Job = copy(job);
    const scaledGroup = scaled.TaskGroups?.find((g) => g.Name === group);
    if (scaledGroup !== undefined) scaledGroup.Count = count;
    const previousCount = tg.Count;
    const result = this.commit(scaled, job, undefined, "job-scaling");
    this.recordScaling(namespace, jobId, group, {
      ...event,
      Count: count,
      PreviousCount: previousCount,
      EvalID: result.EvalID,
    });
    return result;
  }

  private readonly scalingEvents = new Map<string, Record<string, ScalingEvent[]>>();

  scalingEventsOf(namespace: string, jobId: string): Record<string, ScalingEvent[]> {
    return this.scalingEvents.get(jobKey(namespace, jobId)) ?? {};
  }

  private recordScaling(
    namespace: string,
    jobId: string,
    group: string,
    event: Omit<ScalingEvent, "Time" | "CreateIndex">,
  ): void {
    const key = jobKey(namespace, jobId);
    const events = this.scalingEvents.get(key) ?? {};
    const list = [
      { ...event, Time: this.cluster.clock.nowNs(), CreateIndex: this.cluster.store.latestIndex() },
      ...(events[group] ?? []),
    ];
    events[group] = list.slice(0, 20);
    this.scalingEvents.set(key, events);
  }
}

export interface ScaleEventInput {
  Message: string;
  Error: boolean;
  Meta: Record<string, unknown> | null;
}

export interface ScalingEvent extends ScaleEventInput {
  Time: number;
  Count: number | null;
  PreviousCount: number;
  EvalID: string | null;
  CreateIndex: number;
}

const response = (
  evalId: string,
  evalCreateIndex: number,
  jobModifyIndex: number,
  index: number,
): RegisterResponse => ({
  EvalID: evalId,
  EvalCreateIndex: evalCreateIndex,
  JobModifyIndex: jobModifyIndex,
  Warnings: "",
  Index: index,
  LastContact: 0,
  KnownLeader: false,
});

const runsEvals = (job: Job): boolean =>
  job.Periodic === null && (job.ParameterizedJob === null || job.Dispatched);

function checkIndex(existing: Job | undefined, index: number): void {
  if (existing === undefined) {
    if (index !== 0) throw serverError(`${ENFORCE_INDEX_PREFIX} ${index}: job does not exist`);
    return;
  }
  if (index === 0) throw serverError(`${ENFORCE_INDEX_PREFIX} 0: job already exists`);
  if (index !== existing.JobModifyIndex) {
    throw serverError(
      `${ENFORCE_INDEX_PREFIX} ${index}: job exists with conflicting job modify index: ${existing.JobModifyIndex}`,
    );
  }
}

function preserveCounts(existing: Job, job: Job): void {
  for (const tg of job.TaskGroups ?? []) {
    const old = existing.TaskGroups?.find((g) => g.Name === tg.Name);
    if (old !== undefined) tg.Count = old.Count;
  }
}

function checkScalingBounds(scaling: ScalingPolicy | null, count: number): void {
  if (scaling === null) return;
  if (count < scaling.Min)
    throw badRequest(`group count was less than scaling policy minimum: ${count} < ${scaling.Min}`);
  if (scaling.Max < count)
    throw badRequest(`group count was greater than scaling policy maximum: ${count} > ${scaling.Max}`);
}

/** structs.Job.Validate, the checks a hand-written job usually trips. */
function validate(job: Job): void {
  const errors: string[] = [];
  if (job.ID === "") errors.push("Missing job ID");
  else if (job.ID.includes(" ")) errors.push("Job ID contains a space");
  if (job.Namespace !== "default")
    errors.push(`job "${job.ID}" is in nonexistent namespace "${job.Namespace}"`);
  if (!["service", "batch", "system", "sysbatch"].includes(job.Type))
    errors.push(`Invalid job type: "${job.Type}"`);
  const groups = job.TaskGroups ?? [];
  if (groups.length === 0) errors.push("Missing job task groups");
  for (const [i, tg] of groups.entries()) {
    if (tg.Name === "") errors.push(`Job task group ${i + 1} missing name`);
    if (tg.Count < 0)
      errors.push(`Task group ${tg.Name} validation failed: Task group count can't be negative`);
    if (tg.Tasks.length === 0)
      errors.push(`Task group ${tg.Name} validation failed: Missing tasks for task group`);
    for (const task of tg.Tasks.filter((t) => t.Driver === "")) {
      errors.push(
        `Task group ${tg.Name} validation failed: Task ${task.Name} validation failed: Missing task driver`,
      );
    }
  }
  if (errors.length > 0) throw multiError(errors);
}
