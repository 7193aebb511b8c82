import type { Cluster } from "./cluster.js";
import { canonicalJson, copy } from "./json.js";
import { newAllocation, newEval, groupDemand } from "./objects.js";
import { allocPortValues, NodeUsage, selectNode } from "./placement.js";
import { deploymentActive, reconcile, type Placement, type ReconcileResult } from "./reconcile.js";
import { jobKey, terminalAlloc, type Txn } from "./store.js";
import type { AllocMetric, Allocation, Deployment, Evaluation, Job, Node } from "./types.js";
import { refreshDeploymentCounts } from "./deployment-counts.js";

/** Placements of one plan: new allocations, and the metrics of what could not be placed. */
export interface PlacementOutcome {
  allocs: Allocation[];
  failed: Record<string, AllocMetric>;
  queued: Record<string, number>;
}

/** One scheduler worker: dequeues an evaluation, reconciles, places, applies the plan (PlanResult). */
export class Scheduler {
  constructor(private readonly cluster: Cluster) {}

  process(evalId: string): void {
    const store = this.cluster.store;
    const evaluation = store.evals.get(evalId);
    if (evaluation === undefined || (evaluation.Status !== "pending" && evaluation.Status !== "blocked"))
      return;
    const job = store.jobs.get(jobKey(evaluation.Namespace, evaluation.JobID));
    const result = reconcileJob(this.cluster, evaluation.Namespace, evaluation.JobID, job);
    const outcome =
      job === undefined
        ? { allocs: [], failed: {}, queued: {} }
        : placeAll(this.cluster, job, result, evaluation);
    this.applyPlan(evaluation, job, result, outcome);
    this.completeEval(evaluation, job, result, outcome);
    this.notify(result, outcome);
  }

  private applyPlan(
    evaluation: Evaluation,
    job: Job | undefined,
    result: ReconcileResult,
    outcome: PlacementOutcome,
  ): void {
    const store = this.cluster.store;
    store.write("PlanResult", (tx) => {
      for (const { deployment, description } of result.cancel) {
        tx.upsertDeployment({ ...deployment, Status: "cancelled", StatusDescription: description });
      }
      const deployment = result.deployment;
      if (
        deployment !== undefined &&
        (result.created || changed(deployment, store.deployments.get(deployment.ID)))
      ) {
        tx.upsertDeployment(deployment);
      }
      for (const { alloc, description, lost } of result.stop) stopAlloc(tx, alloc, description, lost);
      if (job !== undefined) this.inplace(tx, job, result);
      for (const alloc of outcome.allocs) this.addAlloc(tx, alloc);
      if (deployment !== undefined) refreshDeploymentCounts(tx, deployment, outcome.allocs);
      if (job !== undefined) {
        store.queued.set(jobKey(job.Namespace, job.ID), outcome.queued);
        tx.touch(job.Namespace, job.ID);
      }
      evaluation.SnapshotIndex = store.latestIndex();
    });
  }

  private inplace(tx: Txn, job: Job, result: ReconcileResult): void {
    const deployment = activeDeployment(result);
    for (const alloc of result.inplace) {
      alloc.Job = job;
      if (deployment !== undefined) {
        alloc.DeploymentID = deployment.ID;
        alloc.DeploymentStatus = null;
      }
      tx.upsertAlloc(alloc, true);
    }
  }

  private addAlloc(tx: Txn, alloc: Allocation): void {
    tx.upsertAlloc(alloc, true);
    const previous = this.cluster.store.allocs.get(alloc.PreviousAllocation);
    if (previous !== undefined) {
      previous.NextAllocation = alloc.ID;
      tx.upsertAlloc(previous, true);
    }
  }

  private completeEval(
    evaluation: Evaluation,
    job: Job | undefined,
    result: ReconcileResult,
    outcome: PlacementOutcome,
  ): void {
    const store = this.cluster.store;
    const failed = Object.keys(outcome.failed).length > 0;
    store.write("EvaluationUpdated", (tx) => {
      evaluation.QueuedAllocations = { ...queuedZero(job), ...outcome.queued };
      evaluation.FailedTGAllocs = failed ? outcome.failed : null;
      evaluation.DeploymentID = activeDeployment(result)?.ID ?? evaluation.DeploymentID;
      if (failed && evaluation.Status !== "blocked" && job !== undefined) {
        evaluation.BlockedEval = this.blockedEval(tx, job, evaluation, outcome);
      }
      evaluation.Status = failed && evaluation.Status === "blocked" ? "blocked" : "complete";
      tx.upsertEval(evaluation);
    });
  }

  /** One blocked evaluation per job waits for capacity ("created to place remaining allocations"). */
  private blockedEval(tx: Txn, job: Job, evaluation: Evaluation, outcome: PlacementOutcome): string {
    const existing = this.cluster.store.evalsOfJob(job.Namespace, job.ID).find((e) => e.Status === "blocked");
    if (existing !== undefined) return existing.ID;
    const blocked = newEval(job, {
      triggeredBy: "queued-allocs",
      status: "blocked",
      statusDescription: "created to place remaining allocations",
      previousEval: evaluation.ID,
      jobModifyIndex: evaluation.JobModifyIndex,
    });
    blocked.FailedTGAllocs = outcome.failed;
    blocked.ClassEligibility = { "v1:1234567890123456789": true };
    blocked.QueuedAllocations = outcome.queued;
    tx.upsertEval(blocked);
    return blocked.ID;
  }

  private notify(result: ReconcileResult, outcome: PlacementOutcome): void {
    this.cluster.placed(outcome.allocs.map((a) => a.ID));
    this.cluster.updatedInPlace(result.inplace.map((a) => a.ID));
    this.cluster.stopped(result.stop.filter((s) => !s.lost).map((s) => s.alloc.ID));
    const deployment = activeDeployment(result);
    if (deployment !== undefined) this.cluster.deploymentChanged(deployment.ID);
    if (result.stop.length > 0) this.cluster.capacityChanged();
  }
}

export function reconcileJob(
  cluster: Cluster,
  namespace: string,
  jobId: string,
  job: Job | undefined,
): ReconcileResult {
  const store = cluster.store;
  const latest = store.latestDeployment(namespace, jobId);
  return reconcile({
    job,
    allocs: store.allocsOfJob(namespace, jobId),
    latestDeployment: latest === undefined ? undefined : copy(latest),
    deployments: store.deployments,
    nodes: store.nodes,
    now: cluster.clock.nowNs(),
  });
}

const activeDeployment = (result: ReconcileResult): Deployment | undefined =>
  result.deployment !== undefined && deploymentActive(result.deployment) ? result.deployment : undefined;

const changed = (next: Deployment, stored: Deployment | undefined): boolean =>
  stored === undefined || canonicalJson(next) !== canonicalJson(stored);

const queuedZero = (job: Job | undefined): Record<string, number> =>
  Object.fromEntries((job?.TaskGroups ?? []).map((g) => [g.Name, 0]));

function stopAlloc(tx: Txn, alloc: Allocation, description: string, lost: boolean): void {
  alloc.DesiredStatus = "stop";
  alloc.DesiredDescription = description;
  if (lost) {
    alloc.ClientStatus = "lost";
    alloc.ClientDescription = "";
  }
  tx.upsertAlloc(alloc, true);
}

/** Chooses nodes for every placement of the plan (without writing anything). */
export function placeAll(
  cluster: Cluster,
  job: Job,
  result: ReconcileResult,
  evaluation: Evaluation,
): PlacementOutcome {
  const placer = new Placer(cluster, job, result, evaluation);
  for (const placement of result.place) placer.place(placement);
  return placer.outcome;
}

class Placer {
  readonly outcome: PlacementOutcome = { allocs: [], failed: {}, queued: {} };
  private readonly usage = new NodeUsage();
  private readonly nodes: Node[];
  private readonly deployment: Deployment | undefined;

  constructor(
    private readonly cluster: Cluster,
    private readonly job: Job,
    result: ReconcileResult,
    private readonly evaluation: Evaluation,
  ) {
    this.nodes = [...cluster.store.nodes.values()];
    this.deployment = activeDeployment(result);
    const stopping = new Set(result.stop.map((s) => s.alloc.ID));
    for (const alloc of cluster.store.allocs.values()) {
      if (!terminalAlloc(alloc) && !stopping.has(alloc.ID)) this.account(alloc);
    }
  }

  /** Resources of the allocations that stay (the ones this plan stops are freed). */
  private account(alloc: Allocation): void {
    const group = alloc.Job?.TaskGroups?.find((g) => g.Name === alloc.TaskGroup);
    if (group === undefined) return;
    const key = `${alloc.Namespace}/${alloc.JobID}/${alloc.TaskGroup}`;
    this.usage.add(alloc.NodeID, groupDemand(group), key, allocPortValues(alloc.Resources.Networks));
  }

  place(placement: Placement): void {
    const group = placement.group;
    const choice = selectNode(this.nodes, this.usage, this.job, group);
    if (choice.node === undefined) return this.fail(group.Name, choice.metric);
    const alloc = newAllocation({
      job: this.job,
      tg: group,
      name: placement.name,
      node: choice.node,
      evalId: this.evaluation.ID,
      deploymentId: this.deployment?.ID ?? "",
      canary: placement.canary,
      metric: choice.metric,
      previous: placement.previous,
      ports: choice.ports,
    });
    if (placement.reschedule && placement.previous !== undefined) {
      alloc.RescheduleTracker = rescheduleTracker(
        this.cluster,
        group.ReschedulePolicy?.Delay ?? 0,
        placement.previous,
      );
    }
    this.account(alloc);
    this.outcome.allocs.push(alloc);
    const state = this.deployment?.TaskGroups[group.Name];
    if (placement.canary && state !== undefined)
      state.PlacedCanaries = [...(state.PlacedCanaries ?? []), alloc.ID];
  }

  /** Failures of one group coalesce into its first metric (AllocMetric.CoalescedFailures). */
  private fail(group: string, metric: AllocMetric): void {
    const previous = this.outcome.failed[group];
    if (previous === undefined) this.outcome.failed[group] = metric;
    else previous.CoalescedFailures += 1;
    this.outcome.queued[group] = (this.outcome.queued[group] ?? 0) + 1;
  }
}

function rescheduleTracker(cluster: Cluster, delay: number, previous: Allocation) {
  const events = previous.RescheduleTracker?.Events ?? [];
  return {
    Events: [
      ...events,
      {
        RescheduleTime: cluster.clock.nowNs(),
        PrevAllocID: previous.ID,
        PrevNodeID: previous.NodeID,
        Delay: delay,
      },
    ],
  };
}
