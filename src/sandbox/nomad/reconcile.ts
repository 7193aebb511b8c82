import { rfc3339 } from "./clock.js";
import { newId } from "./objects.js";
import type {
  Allocation,
  Deployment,
  DeploymentState,
  Job,
  Node,
  TaskGroup,
  UpdateStrategy,
} from "./types.js";
import { destructiveChange } from "./updates.js";

/**
 * scheduler/reconcile.go in small: for each group, which allocations to keep, stop, update in place
 * or replace, what to place, and whether a deployment starts. Pure: the scheduler applies the result,
 * the plan endpoint only reports it.
 */

/** Desired-status descriptions of scheduler/generic_sched.go and reconcile.go. */
export const ALLOC_NOT_NEEDED = "alloc not needed due to job update";
export const ALLOC_UPDATING = "alloc is being updated due to job update";
export const ALLOC_LOST = "alloc is lost since its node is down";
export const ALLOC_MIGRATING = "alloc is being migrated";
export const ALLOC_RESCHEDULED = "alloc was rescheduled because it failed";

export const DEPLOYMENT_DESC = {
  running: "Deployment is running",
  needsPromotion: "Deployment is running but requires manual promotion",
  autoPromotion: "Deployment is running pending automatic promotion",
  successful: "Deployment completed successfully",
  stoppedJob: "Cancelled because job is stopped",
  newerJob: "Cancelled due to newer version of job",
  unhealthy: "Failed due to unhealthy allocations",
  progressDeadline: "Failed due to progress deadline",
  failedByUser: "Deployment marked as failed",
} as const;

/** The simulation stops rescheduling a chain of failures after this many (Nomad's default is unlimited). */
export const SIM_RESCHEDULE_CAP = 5;

export interface DesiredUpdates {
  Ignore: number;
  Place: number;
  Migrate: number;
  Stop: number;
  InPlaceUpdate: number;
  DestructiveUpdate: number;
  Canary: number;
  Preemptions: number;
  Disconnect: number;
  Reconnect: number;
  RescheduleNow: number;
  RescheduleLater: number;
}

export interface Placement {
  group: TaskGroup;
  name: string;
  canary: boolean;
  previous: Allocation | undefined;
  reschedule: boolean;
}

export interface StopAction {
  alloc: Allocation;
  description: string;
  lost: boolean;
}

export interface ReconcileResult {
  place: Placement[];
  stop: StopAction[];
  inplace: Allocation[];
  desired: Record<string, DesiredUpdates>;
  /** The deployment new placements belong to (created by this evaluation, or the active one). */
  deployment: Deployment | undefined;
  created: boolean;
  cancel: { deployment: Deployment; description: string }[];
}

export interface ReconcileInput {
  /** Undefined once the job is purged. */
  job: Job | undefined;
  allocs: readonly Allocation[];
  latestDeployment: Deployment | undefined;
  deployments: ReadonlyMap<string, Deployment>;
  nodes: ReadonlyMap<string, Node>;
  /** Unix nanoseconds. */
  now: number;
}

const ACTIVE = ["running", "paused", "initializing", "pending", "blocked", "unblocking"];
export const deploymentActive = (d: Deployment): boolean => ACTIVE.includes(d.Status);

const emptyUpdates = (): DesiredUpdates => ({
  Ignore: 0,
  Place: 0,
  Migrate: 0,
  Stop: 0,
  InPlaceUpdate: 0,
  DestructiveUpdate: 0,
  Canary: 0,
  Preemptions: 0,
  Disconnect: 0,
  Reconnect: 0,
  RescheduleNow: 0,
  RescheduleLater: 0,
});

export const isLive = (a: Allocation): boolean =>
  a.DesiredStatus === "run" && !["complete", "failed", "lost"].includes(a.ClientStatus);

export function reconcile(input: ReconcileInput): ReconcileResult {
  const result: ReconcileResult = {
    place: [],
    stop: [],
    inplace: [],
    desired: {},
    deployment: undefined,
    created: false,
    cancel: [],
  };
  const job = input.job;
  if (job === undefined || job.Stop) return stopAll(input, result);
  const current = currentDeployment(job, input.latestDeployment, result);
  result.deployment = current.deployment;
  const names = new Set((job.TaskGroups ?? []).map((g) => g.Name));
  for (const alloc of input.allocs.filter((a) => isLive(a) && !names.has(a.TaskGroup))) {
    stop(result, alloc, ALLOC_NOT_NEEDED, false);
    updates(result, alloc.TaskGroup).Stop += 1;
  }
  for (const group of job.TaskGroups ?? [])
    new GroupReconciler(input, job, group, result, current.failed).run();
  return result;
}

function stopAll(input: ReconcileInput, result: ReconcileResult): ReconcileResult {
  for (const alloc of input.allocs.filter(isLive)) {
    stop(result, alloc, ALLOC_NOT_NEEDED, false);
    updates(result, alloc.TaskGroup).Stop += 1;
  }
  const latest = input.latestDeployment;
  if (latest !== undefined && deploymentActive(latest)) {
    result.cancel.push({ deployment: latest, description: DEPLOYMENT_DESC.stoppedJob });
  }
  return result;
}

/** reconcile.go cancelUnneededDeployments: the deployment of this job version, if it still matters. */
function currentDeployment(job: Job, latest: Deployment | undefined, result: ReconcileResult) {
  if (latest === undefined) return { deployment: undefined, failed: false };
  if (latest.JobVersion !== job.Version || latest.JobCreateIndex !== job.CreateIndex) {
    if (deploymentActive(latest))
      result.cancel.push({ deployment: latest, description: DEPLOYMENT_DESC.newerJob });
    return { deployment: undefined, failed: false };
  }
  if (latest.Status === "successful" || latest.Status === "cancelled")
    return { deployment: undefined, failed: false };
  return { deployment: latest, failed: latest.Status === "failed" };
}

const updates = (result: ReconcileResult, group: string): DesiredUpdates =>
  (result.desired[group] ??= emptyUpdates());

function stop(result: ReconcileResult, alloc: Allocation, description: string, lost: boolean): void {
  result.stop.push({ alloc, description, lost });
}

const nameIndex = (name: string): number => Number(/\[(\d+)\]$/.exec(name)?.[1] ?? "0");

class GroupReconciler {
  private readonly d: DesiredUpdates;
  private readonly covered = new Set<string>();
  private readonly oldDestructive: Allocation[] = [];
  private readonly canaries: Allocation[] = [];
  private placedCanaries = 0;
  private updating = false;

  constructor(
    private readonly input: ReconcileInput,
    private readonly job: Job,
    private readonly group: TaskGroup,
    private readonly result: ReconcileResult,
    private readonly deploymentFailed: boolean,
  ) {
    this.d = updates(result, group.Name);
  }

  private get strategy(): UpdateStrategy | undefined {
    const update = this.group.Update;
    return update !== null && update.MaxParallel > 0 && this.job.Type === "service" ? update : undefined;
  }

  run(): void {
    const mine = this.input.allocs.filter((a) => a.TaskGroup === this.group.Name);
    const hadCurrent = mine.some((a) => this.isCurrent(a));
    for (const alloc of mine) this.classify(alloc);
    this.destructive();
    this.missing();
    this.attachDeployment(hadCurrent);
  }

  private isCurrent(a: Allocation): boolean {
    return a.Job !== null && a.Job.Version === this.job.Version && a.Job.CreateIndex === this.job.CreateIndex;
  }

  private classify(alloc: Allocation): void {
    if (alloc.DesiredStatus !== "run" || alloc.ClientStatus === "complete" || alloc.ClientStatus === "lost")
      return;
    if (alloc.ClientStatus === "failed") return this.failed(alloc);
    if (nameIndex(alloc.Name) >= this.group.Count) return this.stopOne(alloc, ALLOC_NOT_NEEDED);
    const node = this.input.nodes.get(alloc.NodeID);
    if (node === undefined || node.Status === "down") {
      stop(this.result, alloc, ALLOC_LOST, true);
      this.d.Stop += 1;
      return this.replace(alloc, "Place");
    }
    if (alloc.DesiredTransition.Migrate === true) {
      stop(this.result, alloc, ALLOC_MIGRATING, false);
      return this.replace(alloc, "Migrate");
    }
    this.covered.add(alloc.Name);
    if (this.isCurrent(alloc)) {
      if (alloc.DeploymentStatus?.Canary === true) this.canaries.push(alloc);
      else this.d.Ignore += 1;
      return;
    }
    if (alloc.Job !== null && !destructiveChange(alloc.Job, this.job, this.group.Name)) {
      this.result.inplace.push(alloc);
      this.d.InPlaceUpdate += 1;
      this.updating = true;
      return;
    }
    this.oldDestructive.push(alloc);
  }

  private failed(alloc: Allocation): void {
    // A failed allocation of an older version (e.g. before a rollback) holds no slot: it is replaced.
    if (nameIndex(alloc.Name) >= this.group.Count || !this.isCurrent(alloc)) return;
    this.covered.add(alloc.Name);
    if (alloc.NextAllocation !== "" || !this.rescheduleEligible(alloc)) return;
    stop(this.result, alloc, ALLOC_RESCHEDULED, false);
    this.place(alloc.Name, false, alloc, true);
    this.d.Place += 1;
    this.d.RescheduleNow += 1;
  }

  private rescheduleEligible(alloc: Allocation): boolean {
    const policy = this.group.ReschedulePolicy;
    if (policy === null) return false;
    const deployment = this.input.deployments.get(alloc.DeploymentID);
    if (deployment?.Status === "failed") return false;
    const events = alloc.RescheduleTracker?.Events ?? [];
    if (events.length >= SIM_RESCHEDULE_CAP) return false;
    if (policy.Unlimited) return true;
    return events.filter((e) => this.input.now - e.RescheduleTime < policy.Interval).length < policy.Attempts;
  }

  private stopOne(alloc: Allocation, description: string): void {
    stop(this.result, alloc, description, false);
    this.d.Stop += 1;
  }

  private replace(alloc: Allocation, counter: "Place" | "Migrate"): void {
    this.covered.add(alloc.Name);
    this.place(alloc.Name, false, alloc, false);
    this.d[counter] += 1;
  }

  private place(name: string, canary: boolean, previous: Allocation | undefined, reschedule: boolean): void {
    this.result.place.push({ group: this.group, name, canary, previous, reschedule });
  }

  private destructive(): void {
    const strategy = this.strategy;
    const old = this.oldDestructive;
    if (old.length > 0) this.updating = true;
    if (this.deploymentFailed) {
      this.d.Ignore += old.length;
      return;
    }
    const state = this.result.deployment?.TaskGroups[this.group.Name];
    if (strategy !== undefined && strategy.Canary > 0 && old.length > 0 && state?.Promoted !== true) {
      return this.placeCanaries(strategy.Canary, old);
    }
    const canaryNames = new Set(this.canaries.map((a) => a.Name));
    for (const alloc of old.filter((a) => canaryNames.has(a.Name))) this.stopOne(alloc, ALLOC_NOT_NEEDED);
    const remaining = old.filter((a) => !canaryNames.has(a.Name));
    const limit =
      strategy === undefined ? remaining.length : Math.max(0, strategy.MaxParallel - this.inFlight());
    for (const alloc of remaining.slice(0, limit)) {
      stop(this.result, alloc, ALLOC_UPDATING, false);
      this.place(alloc.Name, false, alloc, false);
      this.d.DestructiveUpdate += 1;
    }
    this.d.Ignore += Math.max(0, remaining.length - limit) + this.canaries.length;
  }

  private placeCanaries(wanted: number, old: Allocation[]): void {
    const taken = new Set(this.canaries.map((a) => a.Name));
    const names = old.map((a) => a.Name).filter((n) => !taken.has(n));
    const missing = Math.max(0, wanted - this.canaries.length);
    for (const name of names.slice(0, missing)) this.place(name, true, undefined, false);
    this.placedCanaries = Math.min(missing, names.length);
    this.d.Canary += this.placedCanaries;
    this.d.Ignore += old.length + this.canaries.length;
  }

  /** Allocations of the deployment not yet healthy: max_parallel bounds these. */
  private inFlight(): number {
    const id = this.result.deployment?.ID;
    if (id === undefined) return 0;
    return this.input.allocs.filter(
      (a) =>
        a.DeploymentID === id &&
        a.TaskGroup === this.group.Name &&
        isLive(a) &&
        a.DeploymentStatus?.Healthy !== true,
    ).length;
  }

  private missing(): void {
    const placed = new Set(this.result.place.filter((p) => p.group === this.group).map((p) => p.name));
    for (let i = 0; i < this.group.Count; i++) {
      const name = `${this.job.ID}.${this.group.Name}[${i}]`;
      if (this.covered.has(name) || placed.has(name)) continue;
      this.place(name, false, undefined, false);
      this.d.Place += 1;
    }
  }

  /** reconcile.go computeDeploymentUpdates: a deployment starts for a new version with an update block. */
  private attachDeployment(hadCurrent: boolean): void {
    const strategy = this.strategy;
    if (strategy === undefined || this.group.Count === 0 || this.deploymentFailed) return;
    let deployment = this.result.deployment;
    if (deployment === undefined) {
      if (hadCurrent && !this.updating) return;
      deployment = newDeployment(this.job, this.input.now);
      this.result.deployment = deployment;
      this.result.created = true;
    }
    deployment.TaskGroups[this.group.Name] ??= groupState(this.group, strategy, this.input.now);
    const state = deployment.TaskGroups[this.group.Name];
    if (state !== undefined && this.placedCanaries > 0) {
      state.DesiredCanaries = strategy.Canary;
      deployment.StatusDescription = strategy.AutoPromote
        ? DEPLOYMENT_DESC.autoPromotion
        : DEPLOYMENT_DESC.needsPromotion;
    }
  }
}

export function newDeployment(job: Job, now: number): Deployment {
  return {
    ID: newId(),
    Namespace: job.Namespace,
    JobID: job.ID,
    JobVersion: job.Version,
    JobModifyIndex: job.JobModifyIndex,
    JobSpecModifyIndex: job.JobModifyIndex,
    JobCreateIndex: job.CreateIndex,
    IsMultiregion: false,
    TaskGroups: {},
    Status: "running",
    StatusDescription: DEPLOYMENT_DESC.running,
    EvalPriority: job.Priority,
    CreateIndex: 0,
    ModifyIndex: 0,
    CreateTime: now,
    ModifyTime: now,
  };
}

function groupState(group: TaskGroup, strategy: UpdateStrategy, now: number): DeploymentState {
  return {
    AutoRevert: strategy.AutoRevert,
    AutoPromote: strategy.AutoPromote,
    ProgressDeadline: strategy.ProgressDeadline,
    RequireProgressBy: rfc3339(now + strategy.ProgressDeadline),
    Promoted: false,
    PlacedCanaries: null,
    DesiredCanaries: 0,
    DesiredTotal: group.Count,
    PlacedAllocs: 0,
    HealthyAllocs: 0,
    UnhealthyAllocs: 0,
  };
}
