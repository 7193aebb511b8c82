import { STEPS, type Cluster } from "./cluster.js";
import { serverError } from "./errors.js";
import { copy } from "./json.js";
import { newEval } from "./objects.js";
import { DEPLOYMENT_DESC, deploymentActive, isLive } from "./reconcile.js";
import { jobKey, type MsgType, type Txn } from "./store.js";
import type { Allocation, Deployment, Job } from "./types.js";
import { specChanged } from "./updates.js";

export interface DeploymentUpdateResponse {
  EvalID: string;
  EvalCreateIndex: number;
  DeploymentModifyIndex: number;
  /** A *uint64 in Nomad: null unless the failure rolled the job back. */
  RevertedJobVersion: number | null;
  Index: number;
}

/**
 * nomad/deploymentwatcher in small: watches a running deployment's allocations; fails it on an
 * unhealthy allocation or when no progress is made, succeeds it (marking the job version stable)
 * when every group is healthy, rolls back on failure when auto_revert is set, and asks the
 * scheduler to continue a rolling update as allocations become healthy.
 */
export class DeploymentWatcher {
  private readonly healthySeen = new Map<string, number>();

  constructor(private readonly cluster: Cluster) {}

  changed(deploymentId: string): void {
    const d = this.cluster.store.deployments.get(deploymentId);
    if (d === undefined || !deploymentActive(d)) return;
    if (this.allocs(d).some((a) => a.DeploymentStatus?.Healthy === false)) {
      this.fail(d, DEPLOYMENT_DESC.unhealthy);
      return;
    }
    if (complete(d)) {
      this.succeed(d);
      return;
    }
    if (readyToAutoPromote(d, this.allocs(d))) {
      this.promote(d.ID, { DeploymentID: d.ID, All: true, Groups: null });
      return;
    }
    this.progress(d);
  }

  promote(
    deploymentId: string,
    request: { DeploymentID: string; All: boolean; Groups: string[] | null },
  ): DeploymentUpdateResponse {
    const d = this.require(deploymentId);
    if (!deploymentActive(d)) throw serverError("can't promote terminal deployment");
    const groups = Object.entries(d.TaskGroups).filter(
      ([name, state]) => state.DesiredCanaries > 0 && (request.All || (request.Groups ?? []).includes(name)),
    );
    if (groups.length === 0) throw serverError("no canaries to promote");
    for (const [name, state] of groups) {
      const healthy = this.allocs(d).filter(
        (a) => (state.PlacedCanaries ?? []).includes(a.ID) && a.DeploymentStatus?.Healthy === true,
      ).length;
      if (healthy < state.DesiredCanaries) {
        throw serverError(`Task group "${name}" has ${healthy}/${state.DesiredCanaries} healthy allocations`);
      }
    }
    return this.statusUpdate("DeploymentPromotion", d, (next) => {
      for (const [name] of groups) {
        const state = next.TaskGroups[name];
        if (state !== undefined) state.Promoted = true;
      }
      next.StatusDescription = DEPLOYMENT_DESC.running;
    });
  }

  /** POST /v1/deployment/fail/:id. */
  failByUser(deploymentId: string): DeploymentUpdateResponse {
    const d = this.require(deploymentId);
    if (!deploymentActive(d)) throw serverError("can't fail terminal deployment");
    return this.fail(d, DEPLOYMENT_DESC.failedByUser);
  }

  private require(deploymentId: string): Deployment {
    const d = this.cluster.store.deployments.get(deploymentId);
    if (d === undefined) throw serverError("deployment not found");
    return d;
  }

  private allocs(d: Deployment) {
    return [...this.cluster.store.allocs.values()].filter((a) => a.DeploymentID === d.ID);
  }

  /** A new healthy allocation is progress: continue the rolling update, push the deadline back. */
  private progress(d: Deployment): void {
    const healthy = totalHealthy(d);
    const seen = this.healthySeen.get(d.ID);
    if (seen === healthy) return;
    this.healthySeen.set(d.ID, healthy);
    if (seen !== undefined && this.olderAllocsRemain(d)) this.continueUpdate(d);
    this.cluster.ticker.after(STEPS.progressDeadline, () => this.checkDeadline(d.ID, healthy));
  }

  private olderAllocsRemain(d: Deployment): boolean {
    return this.cluster.store
      .allocsOfJob(d.Namespace, d.JobID)
      .some((a) => isLive(a) && a.DeploymentID !== d.ID);
  }

  private continueUpdate(d: Deployment): void {
    const job = this.cluster.store.jobs.get(jobKey(d.Namespace, d.JobID));
    if (job === undefined) return;
    const evaluation = newEval(job, {
      triggeredBy: "deployment-watcher",
      deploymentId: d.ID,
      jobModifyIndex: job.JobModifyIndex,
    });
    this.cluster.store.write("EvaluationUpdated", (tx) => tx.upsertEval(evaluation));
    this.cluster.enqueue(evaluation.ID);
  }

  private checkDeadline(deploymentId: string, healthyThen: number): void {
    const d = this.cluster.store.deployments.get(deploymentId);
    if (d === undefined || !deploymentActive(d) || totalHealthy(d) !== healthyThen || awaitingPromotion(d))
      return;
    this.fail(d, DEPLOYMENT_DESC.progressDeadline);
  }

  private succeed(d: Deployment): void {
    const job = this.cluster.store.jobs.get(jobKey(d.Namespace, d.JobID));
    this.cluster.store.write("DeploymentStatusUpdate", (tx) => {
      tx.upsertDeployment({
        ...copy(d),
        Status: "successful",
        StatusDescription: DEPLOYMENT_DESC.successful,
      });
      if (job !== undefined) tx.setStable(job, d.JobVersion, true);
    });
  }

  private fail(d: Deployment, description: string): DeploymentUpdateResponse {
    const rollback = this.rollbackTarget(d);
    const suffix = rollback?.suffix ?? "";
    const response = this.statusUpdate("DeploymentStatusUpdate", d, (next, tx) => {
      next.Status = "failed";
      next.StatusDescription = description + suffix;
      if (rollback?.job !== undefined) registerRollback(tx, rollback.job, rollback.current);
    });
    return rollback?.job === undefined ? response : { ...response, RevertedJobVersion: rollback.job.Version };
  }

  /** deploymentwatcher latestStableJob: the most recent stable version, if auto_revert is on. */
  private rollbackTarget(d: Deployment): { job: Job | undefined; current: Job; suffix: string } | undefined {
    if (!Object.values(d.TaskGroups).some((s) => s.AutoRevert)) return undefined;
    const store = this.cluster.store;
    const current = store.jobs.get(jobKey(d.Namespace, d.JobID));
    const versions = store.versions.get(jobKey(d.Namespace, d.JobID)) ?? [];
    const stable = versions.find((v) => v.Stable && v.Version < d.JobVersion);
    if (current === undefined || stable === undefined) return undefined;
    if (!specChanged(current, stable)) {
      return {
        job: undefined,
        current,
        suffix: ` - not rolling back to stable job version ${stable.Version} as current job has same specification`,
      };
    }
    return { job: stable, current, suffix: ` - rolling back to job version ${stable.Version}` };
  }

  /** One DeploymentStatusUpdate/Promotion entry: the deployment, an evaluation, maybe a job. */
  private statusUpdate(
    type: MsgType,
    d: Deployment,
    mutate: (next: Deployment, tx: Txn) => void,
  ): DeploymentUpdateResponse {
    const job = this.cluster.store.jobs.get(jobKey(d.Namespace, d.JobID));
    const next = copy(d);
    const evaluation =
      job === undefined
        ? undefined
        : newEval(job, {
            triggeredBy: "deployment-watcher",
            deploymentId: d.ID,
            jobModifyIndex: job.JobModifyIndex,
          });
    const index = this.cluster.store.write(type, (tx) => {
      mutate(next, tx);
      tx.upsertDeployment(next);
      if (evaluation !== undefined) tx.upsertEval(evaluation);
      return tx.index;
    });
    if (evaluation !== undefined) this.cluster.enqueue(evaluation.ID);
    return {
      EvalID: evaluation?.ID ?? "",
      EvalCreateIndex: index,
      DeploymentModifyIndex: index,
      RevertedJobVersion: null,
      Index: index,
    };
  }
}

function registerRollback(tx: Txn, stable: Job, current: Job): void {
  const job: Job = {
    ...copy(stable),
    Version: current.Version + 1,
    Stable: false,
    Stop: false,
    SubmitTime: tx.now,
    Status: current.Status,
  };
  tx.upsertJob(job, { newVersion: true });
}

const totalHealthy = (d: Deployment): number =>
  Object.values(d.TaskGroups).reduce((n, s) => n + s.HealthyAllocs, 0);

const complete = (d: Deployment): boolean =>
  Object.values(d.TaskGroups).every(
    (s) => s.HealthyAllocs >= s.DesiredTotal && (s.DesiredCanaries === 0 || s.Promoted),
  );

/** All canaries healthy and waiting for a person: the progress deadline does not apply. */
const awaitingPromotion = (d: Deployment): boolean =>
  Object.values(d.TaskGroups).some(
    (s) => s.DesiredCanaries > 0 && !s.Promoted && s.HealthyAllocs >= s.DesiredCanaries,
  );

function readyToAutoPromote(d: Deployment, allocs: readonly Allocation[]): boolean {
  const groups = Object.values(d.TaskGroups).filter((s) => s.DesiredCanaries > 0 && !s.Promoted);
  if (groups.length === 0 || !groups.every((s) => s.AutoPromote)) return false;
  return groups.every(
    (s) =>
      allocs.filter((a) => (s.PlacedCanaries ?? []).includes(a.ID) && a.DeploymentStatus?.Healthy === true)
        .length >= s.DesiredCanaries,
  );
}
