import type { NanoClock } from "./clock.js";
import { copy } from "./json.js";
import { summarize } from "./summary.js";
import type { Allocation, Deployment, Evaluation, Job, JobSubmission, JobSummary, Node } from "./types.js";

/**
 * The double's state, written the way Nomad's FSM applies raft entries: every write is one
 * transaction at a new index, of one message type. That type becomes the Type of every stream event
 * the transaction produces, whatever the object's topic (nomad/state/events.go eventsFromChanges),
 * so a client update yields Allocation, Deployment and Job events all typed AllocationUpdated.
 */

export type MsgType =
  | "NodeRegistration"
  | "NodeStreamEvent"
  | "NodeDrain"
  | "JobRegistered"
  | "JobDeregistered"
  | "EvaluationUpdated"
  | "PlanResult"
  | "AllocationUpdated"
  | "AllocationUpdateDesiredStatus"
  | "DeploymentStatusUpdate"
  | "DeploymentPromotion"
  | "DeploymentAllocHealth";

export type Table = "jobs" | "job_summary" | "job_version" | "evals" | "allocs" | "deployment" | "nodes";

export interface StreamEvent {
  Topic: "Job" | "Evaluation" | "Allocation" | "Deployment" | "Node";
  Type: MsgType;
  Key: string;
  Namespace: string;
  FilterKeys: string[] | null;
  Index: number;
  Payload: Record<string, unknown>;
}

export interface EventBatch {
  Index: number;
  Events: StreamEvent[];
}

export const jobKey = (namespace: string, id: string): string => `${namespace}\u0000${id}`;

/** Job versions Nomad keeps (structs.JobTrackedVersions). */
const TRACKED_VERSIONS = 6;

export class StateStore {
  private index = 0;
  private readonly tableIndexes = new Map<Table, number>();
  readonly jobs = new Map<string, Job>();
  /** Newest first. */
  readonly versions = new Map<string, Job[]>();
  readonly summaries = new Map<string, JobSummary>();
  readonly submissions = new Map<string, JobSubmission>();
  readonly evals = new Map<string, Evaluation>();
  readonly allocs = new Map<string, Allocation>();
  readonly deployments = new Map<string, Deployment>();
  readonly nodes = new Map<string, Node>();
  /** Per job key and group: allocations the scheduler could not place (JobSummary.Queued). */
  readonly queued = new Map<string, Record<string, number>>();
  private readonly watchers = new Set<() => void>();

  constructor(
    readonly clock: NanoClock,
    private readonly publish: (batch: EventBatch) => void,
  ) {}

  latestIndex(): number {
    return this.index;
  }

  tableIndex(...tables: Table[]): number {
    return Math.max(0, ...tables.map((t) => this.tableIndexes.get(t) ?? 0));
  }

  /** Runs `fn` as one raft entry; nothing is indexed or published when it changed nothing. */
  write<T>(type: MsgType, fn: (tx: Txn) => T): T {
    const tx = new Txn(this, this.index + 1, this.clock.nowNs());
    const result = fn(tx);
    if (tx.isEmpty()) return result;
    this.index += 1;
    const events = tx.commit(type);
    for (const table of tx.tables) this.tableIndexes.set(table, this.index);
    this.publish({ Index: this.index, Events: events });
    for (const watcher of [...this.watchers]) watcher();
    return result;
  }

  /** Called after every write (blocking queries). Returns the unsubscribe function. */
  watch(fn: () => void): () => void {
    this.watchers.add(fn);
    return () => this.watchers.delete(fn);
  }

  allocsOfJob(namespace: string, jobId: string): Allocation[] {
    return [...this.allocs.values()].filter((a) => a.Namespace === namespace && a.JobID === jobId);
  }

  evalsOfJob(namespace: string, jobId: string): Evaluation[] {
    return [...this.evals.values()].filter((e) => e.Namespace === namespace && e.JobID === jobId);
  }

  deploymentsOfJob(namespace: string, jobId: string): Deployment[] {
    return [...this.deployments.values()]
      .filter((d) => d.Namespace === namespace && d.JobID === jobId)
      .sort((a, b) => b.CreateIndex - a.CreateIndex);
  }

  latestDeployment(namespace: string, jobId: string): Deployment | undefined {
    return this.deploymentsOfJob(namespace, jobId)[0];
  }

  jobVersion(namespace: string, jobId: string, version: number): Job | undefined {
    return this.versions.get(jobKey(namespace, jobId))?.find((j) => j.Version === version);
  }

  /** Internal to Txn.commit. */
  storeVersion(job: Job): void {
    const key = jobKey(job.Namespace, job.ID);
    const list = (this.versions.get(key) ?? []).filter((j) => j.Version !== job.Version);
    list.unshift(copy(job));
    list.sort((a, b) => b.Version - a.Version);
    this.versions.set(key, list.slice(0, TRACKED_VERSIONS));
  }
}

type Change =
  | { kind: "job"; value: Job }
  | { kind: "jobDeleted"; value: Job }
  | { kind: "eval"; value: Evaluation }
  | { kind: "alloc"; value: Allocation }
  | { kind: "deployment"; value: Deployment }
  | { kind: "node"; value: Node };

/** One write. Objects passed in become the stored objects; their indexes are set on commit. */
export class Txn {
  private readonly changes = new Map<string, Change>();
  readonly tables = new Set<Table>();
  private readonly touchedJobs = new Set<string>();

  constructor(
    readonly store: StateStore,
    readonly index: number,
    /** Unix nanoseconds of this write. */
    readonly now: number,
  ) {}

  isEmpty(): boolean {
    return this.changes.size === 0;
  }

  upsertJob(job: Job, options: { newVersion?: boolean } = {}): void {
    const existing = this.store.jobs.get(jobKey(job.Namespace, job.ID));
    job.CreateIndex = existing?.CreateIndex ?? this.index;
    job.ModifyIndex = this.index;
    if (options.newVersion ?? false) job.JobModifyIndex = this.index;
    this.store.jobs.set(jobKey(job.Namespace, job.ID), job);
    if (options.newVersion ?? false) {
      this.store.storeVersion(job);
      this.tables.add("job_version");
    }
    this.touch(job.Namespace, job.ID);
    this.record(`job/${jobKey(job.Namespace, job.ID)}`, { kind: "job", value: job }, "jobs");
  }

  /** Marks a stored version stable (deployment success) and the job if it is that version. */
  setStable(job: Job, version: number, stable: boolean): void {
    const stored = this.store.jobVersion(job.Namespace, job.ID, version);
    if (stored !== undefined) stored.Stable = stable;
    this.tables.add("job_version");
    if (job.Version === version) {
      job.Stable = stable;
      this.upsertJob(job);
    }
  }

  deleteJob(job: Job): void {
    const key = jobKey(job.Namespace, job.ID);
    this.store.jobs.delete(key);
    this.store.versions.delete(key);
    this.store.summaries.delete(key);
    this.store.queued.delete(key);
    this.tables.add("job_version").add("job_summary");
    this.record(`job/${key}`, { kind: "jobDeleted", value: job }, "jobs");
  }

  upsertEval(evaluation: Evaluation): void {
    evaluation.CreateIndex ||= this.index;
    evaluation.ModifyIndex = this.index;
    evaluation.CreateTime ||= this.now;
    evaluation.ModifyTime = this.now;
    this.store.evals.set(evaluation.ID, evaluation);
    this.touch(evaluation.Namespace, evaluation.JobID);
    this.record(`eval/${evaluation.ID}`, { kind: "eval", value: evaluation }, "evals");
  }

  /** `server` is true when the scheduler changed the allocation (AllocModifyIndex moves). */
  upsertAlloc(alloc: Allocation, server: boolean): void {
    alloc.CreateIndex ||= this.index;
    alloc.ModifyIndex = this.index;
    if (server) alloc.AllocModifyIndex = this.index;
    alloc.CreateTime ||= this.now;
    alloc.ModifyTime = this.now;
    this.store.allocs.set(alloc.ID, alloc);
    this.touch(alloc.Namespace, alloc.JobID);
    this.record(`alloc/${alloc.ID}`, { kind: "alloc", value: alloc }, "allocs");
  }

  upsertDeployment(deployment: Deployment): void {
    deployment.CreateIndex ||= this.index;
    deployment.ModifyIndex = this.index;
    deployment.CreateTime ||= this.now;
    deployment.ModifyTime = this.now;
    this.store.deployments.set(deployment.ID, deployment);
    this.record(`deployment/${deployment.ID}`, { kind: "deployment", value: deployment }, "deployment");
  }

  upsertNode(node: Node): void {
    node.CreateIndex ||= this.index;
    node.ModifyIndex = this.index;
    this.store.nodes.set(node.ID, node);
    this.record(`node/${node.ID}`, { kind: "node", value: node }, "nodes");
  }

  touch(namespace: string, jobId: string): void {
    this.touchedJobs.add(jobKey(namespace, jobId));
  }

  /** Applies the derived changes (job status and summary) and returns the stream events. */
  commit(type: MsgType): StreamEvent[] {
    for (const key of this.touchedJobs) this.deriveJobState(key);
    return [...this.changes.values()].map((change) => toEvent(change, type, this.index));
  }

  private deriveJobState(key: string): void {
    const job = this.store.jobs.get(key);
    if (job === undefined) return;
    const allocs = this.store.allocsOfJob(job.Namespace, job.ID);
    const status = jobStatus(job, allocs, this.store.evalsOfJob(job.Namespace, job.ID));
    if (status !== job.Status) {
      job.Status = status;
      this.upsertJob(job);
    }
    const summary = summarize(job, allocs, this.store.queued.get(key) ?? {}, this.store.summaries.get(key));
    if (summary !== undefined) {
      summary.CreateIndex ||= this.index;
      summary.ModifyIndex = this.index;
      this.store.summaries.set(key, summary);
      this.tables.add("job_summary");
    }
  }

  private record(key: string, change: Change, table: Table): void {
    this.changes.set(key, change);
    this.tables.add(table);
  }
}

/** nomad/state/state_store.go getJobStatus. */
function jobStatus(job: Job, allocs: Allocation[], evals: Evaluation[]): string {
  if (job.Type === "system" || job.Periodic !== null || (job.ParameterizedJob !== null && !job.Dispatched)) {
    return job.Stop ? "dead" : "running";
  }
  if (allocs.some((a) => !terminalAlloc(a))) return "running";
  if (evals.some((e) => e.Status === "pending" || e.Status === "blocked")) return "pending";
  return allocs.length > 0 || evals.length > 0 ? "dead" : "pending";
}

export const terminalAlloc = (a: Allocation): boolean =>
  a.DesiredStatus !== "run" || ["complete", "failed", "lost"].includes(a.ClientStatus);

function toEvent(change: Change, type: MsgType, index: number): StreamEvent {
  const event = (
    topic: StreamEvent["Topic"],
    key: string,
    namespace: string,
    filterKeys: string[] | null,
    payload: Record<string, unknown>,
  ): StreamEvent => ({
    Topic: topic,
    Type: type,
    Key: key,
    Namespace: namespace,
    FilterKeys: filterKeys,
    Index: index,
    Payload: payload,
  });
  switch (change.kind) {
    case "job":
    case "jobDeleted":
      return event("Job", change.value.ID, change.value.Namespace, null, { Job: copy(change.value) });
    case "eval": {
      const e = change.value;
      return event("Evaluation", e.ID, e.Namespace, [e.JobID, e.DeploymentID], { Evaluation: copy(e) });
    }
    case "alloc": {
      const a = change.value;
      // Alloc events carry no embedded job (nomad/structs Allocation.Event strips it).
      return event("Allocation", a.ID, a.Namespace, [a.JobID, a.DeploymentID], {
        Allocation: { ...copy(a), Job: null },
      });
    }
    case "deployment": {
      const d = change.value;
      return event("Deployment", d.ID, d.Namespace, [d.JobID], { Deployment: copy(d) });
    }
    case "node":
      return event("Node", change.value.ID, "", null, { Node: copy(change.value) });
  }
}
