import type {
  Allocation,
  Deployment,
  JobListStub,
  NodeStub,
  NomadStreamEvent,
  TaskEvent,
  TaskState,
} from "../../backends/nomad/types.js";
import type { Signal, SignalKind, Subject } from "../signal.js";

/**
 * Nomad's events turned into signals. Pure: no I/O, no timers; time comes in as arguments. The rules
 * remember what they reported firing and not yet resolved (the "open conditions"), so the same
 * problem seen in many events (a failed allocation is updated several times) is reported once, and a
 * recovery resolves exactly what was reported. Dispatch is on the wire's (Topic, Type): see
 * nomad-enums.json (`NodeStreamEvent`, drains under topic `Node`, new allocations as `PlanResult`).
 */

export interface NomadRulesOptions {
  /** alloc-restart-loop fires when an allocation's tasks restart more than this many times… */
  restartLoopCount: number;
  /** …within this window (task event times). */
  restartLoopWindowMs: number;
  /** Allocations whose task events are tracked at most; the oldest are forgotten first. */
  maxTrackedAllocs: number;
}

export const DEFAULT_NOMAD_RULES: NomadRulesOptions = {
  restartLoopCount: 3,
  restartLoopWindowMs: 10 * 60_000,
  maxTrackedAllocs: 5_000,
};

/** A problem reported firing and not resolved yet. Persisted, so a restart resolves what it reported. */
export interface OpenCondition {
  /** `<kind>/<namespace>/<object>`: one open condition per kind and object. */
  key: string;
  kind: SignalKind;
  namespace: string;
  subject: Subject;
  reason: string;
  since: number;
  /** Allocation conditions: the allocation's CreateIndex ("a later allocation" was created after it). */
  createIndex?: number;
}

export interface NomadRulesState {
  open: OpenCondition[];
}

/** Current state read from the list endpoints after a gap in the stream. */
export interface NomadSnapshot {
  allocations: Allocation[];
  nodes: NodeStub[];
  deployments: Deployment[];
  jobs: JobListStub[];
  /** X-Nomad-Index of the allocation list (ids of resolutions for objects that no longer exist). */
  index: number;
}

export interface ReconcileOptions {
  at: number;
  /**
   * The last stream index processed before the gap; undefined on a first start (nothing persisted).
   * Objects modified at or before it were already seen: they may resolve conditions but not raise
   * new ones. On a first start, only what is still wrong at the end is reported.
   */
  changedAfter: number | undefined;
  /** Task events up to this time (ms) were already seen before the gap (0: none). */
  seenUntil: number;
}

const ALLOC_KINDS: ReadonlySet<SignalKind> = new Set([
  "alloc-failed",
  "alloc-lost",
  "alloc-oom",
  "alloc-restart-loop",
  "alloc-not-restarting",
]);
const NODE_KINDS: ReadonlySet<SignalKind> = new Set(["node-down", "node-draining", "node-ineligible"]);
/** Every kind this source raises (the incidents it answers for). */
export const NOMAD_KINDS: ReadonlySet<SignalKind> = new Set([
  ...ALLOC_KINDS,
  ...NODE_KINDS,
  "deployment-failed",
  "job-dead",
]);
/** Stopping a job ends these. */
const JOB_SCOPED_KINDS: ReadonlySet<SignalKind> = new Set([...ALLOC_KINDS, "deployment-failed", "job-dead"]);
/** Job types that are expected to keep running (batch jobs end "dead" when they succeed). */
const LONG_RUNNING_JOB_TYPES = new Set(["service", "system"]);
const HANDLED_TOPICS = new Set(["Allocation", "Deployment", "Job", "Node"]);
const REASON_LIMIT = 300;

interface Context {
  at: number;
  /** Prefix of the ids of the signals this input produces (built only when one is: most inputs give none). */
  idBase: () => string;
  /** Seen before the gap: may resolve, may not raise. */
  quiet: boolean;
  out: Emitted[];
}

/** A signal and the open condition it is about. */
interface Emitted {
  key: string;
  signal: Signal;
}

interface TaskCursor {
  /** Task events up to this time (ns) are seen… */
  time: number;
  /** …and this many of those at exactly `time`. */
  atTime: number;
  /** Between a "Restart Signaled" and the next "Started": restarts someone asked for, not crashes. */
  signaled: boolean;
}

interface AllocTrack {
  tasks: Map<string, TaskCursor>;
  /** Times (ms) of crash restarts within the window, oldest first. */
  restarts: number[];
  /** Time (ns) of the last OOM kill not yet followed by a start. */
  oomAt: number | undefined;
  /** Whether the allocation was running and healthy when last seen. */
  healthy: boolean;
}

export class NomadRules {
  private readonly options: NomadRulesOptions;
  private readonly open = new Map<string, OpenCondition>();
  /**
   * How many open conditions each job and each allocation has: most updates are healthy ones about
   * objects with nothing open, and these answer that without a scan of the open conditions.
   */
  private readonly openOfJob = new Map<string, number>();
  private readonly openOfAlloc = new Map<string, number>();
  private readonly allocs = new Map<string, AllocTrack>();
  /**
   * The newest stream index processed. Nomad's stream is in index order, so an event older than it is
   * a stale replay (the source drops those too; this keeps the rules right on their own).
   */
  private newestIndex = 0;

  constructor(options: Partial<NomadRulesOptions> = {}, state?: NomadRulesState) {
    this.options = { ...DEFAULT_NOMAD_RULES, ...options };
    for (const condition of state?.open ?? []) this.addOpen(condition);
  }

  openConditions(): OpenCondition[] {
    return [...this.open.values()];
  }

  exportState(): NomadRulesState {
    return { open: this.openConditions() };
  }

  /** How much the rules hold in memory (the trackers are bounded by the options). */
  sizes(): { open: number; trackedAllocs: number } {
    return { open: this.open.size, trackedAllocs: this.allocs.size };
  }

  /** The signals one stream event gives (none for most). */
  onEvent(event: NomadStreamEvent, at: number): readonly Signal[] {
    if (event.Index < this.newestIndex) return NO_SIGNALS;
    this.newestIndex = event.Index;
    const ctx: Context = {
      at,
      idBase: () => `nomad/${event.Index}/${event.Topic}/${event.Key}/${event.Type}`,
      quiet: false,
      out: [],
    };
    this.dispatch(event.Topic, event.Type, event.Payload, ctx, 0);
    return ctx.out.length === 0 ? NO_SIGNALS : ctx.out.map((e) => e.signal);
  }

  /**
   * Restart loops that ended: the allocation was last seen running and healthy, and its last restart
   * is now older than the window. Nothing in the stream says so (a loop ends by nothing happening), so
   * the source calls this as time passes (on each heartbeat).
   */
  expire(at: number): Signal[] {
    const ctx: Context = { at, idBase: () => `nomad-quiet/${at}`, quiet: false, out: [] };
    for (const condition of [...this.open.values()]) {
      if (condition.kind !== "alloc-restart-loop") continue;
      const track = this.allocs.get(condition.subject.alloc ?? "");
      const lastRestart = track?.restarts.at(-1);
      if (
        !track?.healthy ||
        lastRestart === undefined ||
        at - lastRestart <= this.options.restartLoopWindowMs
      )
        continue;
      this.resolve(ctx, condition.key, "no restart within the window: running and healthy");
    }
    return ctx.out.map((e) => e.signal);
  }

  /**
   * After a gap: the current state, compared with what was reported. Raises what went wrong during
   * the gap (even if it recovered since: then both firing and resolved), resolves what recovered.
   */
  reconcile(snapshot: NomadSnapshot, options: ReconcileOptions): Signal[] {
    const out: Emitted[] = [];
    const before = new Set(this.open.keys());
    const firstStart = options.changedAfter === undefined;
    const input = (topic: string, payload: Record<string, unknown>, key: string, index: number) => {
      const ctx: Context = {
        at: options.at,
        idBase: () => `nomad-sync/${index}/${topic}/${key}`,
        quiet: !firstStart && index <= (options.changedAfter ?? 0),
        out,
      };
      this.dispatch(topic, "Snapshot", payload, ctx, options.seenUntil * 1e6);
    };
    const byIndex = <T extends { CreateIndex?: number; ModifyIndex?: number }>(a: T, b: T) =>
      (a.CreateIndex ?? 0) - (b.CreateIndex ?? 0) || (a.ModifyIndex ?? 0) - (b.ModifyIndex ?? 0);
    for (const node of snapshot.nodes) input("Node", { Node: node }, node.ID, node.ModifyIndex ?? 0);
    for (const job of snapshot.jobs) input("Job", { Job: job }, job.ID, job.ModifyIndex ?? 0);
    for (const d of [...snapshot.deployments].sort(byIndex))
      input("Deployment", { Deployment: d }, d.ID, d.ModifyIndex ?? 0);
    for (const a of [...snapshot.allocations].sort(byIndex))
      input("Allocation", { Allocation: a }, a.ID, a.ModifyIndex ?? 0);
    this.resolveVanished(snapshot, {
      at: options.at,
      idBase: () => `nomad-sync/${snapshot.index}`,
      quiet: false,
      out,
    });
    // A first start reports what is wrong now, not the history the lists still show.
    const transient = (key: string) => firstStart && !before.has(key) && !this.open.has(key);
    return out.filter((e) => !transient(e.key)).map((e) => e.signal);
  }

  private dispatch(
    topic: string,
    type: string,
    payload: Record<string, unknown>,
    ctx: Context,
    seenUntilNs: number,
  ): void {
    if (!HANDLED_TOPICS.has(topic)) return;
    const object = payload[topic];
    if (typeof object !== "object" || object === null || typeof (object as { ID?: unknown }).ID !== "string")
      return;
    const namespace = (object as { Namespace?: string }).Namespace || "default";
    switch (topic) {
      case "Allocation":
        return this.onAllocation(object as Allocation, namespace, ctx, seenUntilNs);
      case "Deployment":
        return this.onDeployment(object as Deployment, namespace, ctx);
      case "Job":
        return this.onJob(object as JobPayload, type, namespace, ctx);
      case "Node":
        return this.onNode(object as NodePayload, type, ctx);
    }
  }

  private onAllocation(alloc: Allocation, namespace: string, ctx: Context, seenUntilNs: number): void {
    // Built only when something fires: most allocation updates are quiet.
    const condition = (kind: SignalKind): Omit<OpenCondition, "reason" | "since"> => ({
      kind,
      key: `${kind}/${namespace}/${alloc.ID}`,
      namespace,
      subject: allocSubject(alloc),
      createIndex: alloc.CreateIndex ?? 0,
    });
    const track = this.track(alloc.ID);
    let restartedAfterOom = false;
    const isHealthy = healthy(alloc);
    track.healthy = isHealthy;
    const states = alloc.TaskStates ?? {};
    for (const task in states) {
      let cursor = track.tasks.get(task);
      if (cursor === undefined) {
        cursor = { time: seenUntilNs, atTime: Infinity, signaled: false };
        track.tasks.set(task, cursor);
      }
      for (const event of unseen(states[task]!.Events ?? [], cursor)) {
        switch (event.Type) {
          case "Restart Signaled":
            cursor.signaled = true;
            break;
          case "Started":
            cursor.signaled = false;
            if (track.oomAt !== undefined && event.Time >= track.oomAt) {
              restartedAfterOom = true;
              track.oomAt = undefined;
            }
            break;
          case "Terminated":
            if (event.Details?.oom_killed === "true") {
              track.oomAt = event.Time;
              restartedAfterOom = false;
              this.fire(ctx, condition("alloc-oom"), [`task "${task}" was OOM-killed${exitCodeOf(event)}`]);
            }
            break;
          case "Restarting":
            if (!cursor.signaled) this.countRestart(track, task, event, alloc, condition, ctx);
            break;
          case "Not Restarting":
            this.fire(ctx, condition("alloc-not-restarting"), [
              `task "${task}" will not be restarted: ${event.DisplayMessage || restartReason(event)}`,
            ]);
            break;
        }
      }
    }
    if (alloc.ClientStatus === "failed") {
      this.fire(ctx, condition("alloc-failed"), [failureReason(alloc)]);
    } else if (alloc.ClientStatus === "lost") {
      this.fire(ctx, condition("alloc-lost"), [
        alloc.ClientDescription ||
          `allocation lost (node ${alloc.NodeName ?? alloc.NodeID} stopped answering)`,
      ]);
    } else if (isHealthy) {
      if (this.openOfJob.has(alloc.JobID))
        this.resolveWhere(
          ctx,
          (c) =>
            ALLOC_KINDS.has(c.kind) &&
            c.namespace === namespace &&
            c.subject.job === alloc.JobID &&
            c.subject.group === alloc.TaskGroup &&
            c.subject.alloc !== alloc.ID &&
            (c.createIndex ?? 0) < (alloc.CreateIndex ?? 0),
          `a later allocation of ${alloc.JobID}/${alloc.TaskGroup} (${short(alloc.ID)}) is running and healthy`,
        );
      if (!this.openOfAlloc.has(alloc.ID)) return;
      if (restartedAfterOom || track.oomAt === undefined)
        this.resolve(ctx, `alloc-oom/${namespace}/${alloc.ID}`, "the task was restarted and runs again");
      const lastRestart = track.restarts.at(-1);
      if (lastRestart === undefined || ctx.at - lastRestart > this.options.restartLoopWindowMs)
        this.resolve(
          ctx,
          `alloc-restart-loop/${namespace}/${alloc.ID}`,
          "no restart within the window: running and healthy",
        );
    }
    if (
      alloc.DesiredStatus !== "run" &&
      alloc.ClientStatus === "complete" &&
      this.openOfAlloc.has(alloc.ID)
    ) {
      for (const kind of ["alloc-oom", "alloc-restart-loop"] as const)
        this.resolve(ctx, `${kind}/${namespace}/${alloc.ID}`, "the allocation was stopped");
    }
  }

  private countRestart(
    track: AllocTrack,
    task: string,
    event: TaskEvent,
    alloc: Allocation,
    condition: (kind: SignalKind) => Omit<OpenCondition, "reason" | "since">,
    ctx: Context,
  ): void {
    const window = this.options.restartLoopWindowMs;
    const time = event.Time / 1e6;
    track.restarts.push(time);
    track.restarts = track.restarts.filter((t) => t > time - window);
    const count = track.restarts.length;
    if (count <= this.options.restartLoopCount) return;
    // Old restarts replayed from an allocation's history are not a loop happening now.
    if (ctx.at - time > window) return;
    const minutes = Math.round(window / 60_000);
    this.fire(ctx, condition("alloc-restart-loop"), [
      `task "${task}" restarted ${count} times within ${minutes} min`,
      lastExit(alloc.TaskStates?.[task]),
    ]);
  }

  private onDeployment(deployment: Deployment, namespace: string, ctx: Context): void {
    if (deployment.Status === "failed") {
      this.fire(
        ctx,
        {
          kind: "deployment-failed",
          key: `deployment-failed/${namespace}/${deployment.ID}`,
          namespace,
          subject: { job: deployment.JobID, deployment: deployment.ID },
        },
        [
          `deployment of ${deployment.JobID} version ${deployment.JobVersion} failed`,
          deployment.StatusDescription,
        ],
      );
    } else if (deployment.Status === "successful" && this.openOfJob.has(deployment.JobID)) {
      this.resolveWhere(
        ctx,
        (c) =>
          c.kind === "deployment-failed" && c.namespace === namespace && c.subject.job === deployment.JobID,
        `deployment of ${deployment.JobID} version ${deployment.JobVersion} succeeded`,
      );
    }
  }

  private onJob(job: JobPayload, eventType: string, namespace: string, ctx: Context): void {
    const ofJob = (c: OpenCondition) => c.namespace === namespace && c.subject.job === job.ID;
    const anyOpen = this.openOfJob.has(job.ID);
    if (eventType === "JobDeregistered" || job.Stop === true) {
      if (!anyOpen) return;
      this.resolveWhere(ctx, (c) => ofJob(c) && JOB_SCOPED_KINDS.has(c.kind), `job ${job.ID} was stopped`);
      return;
    }
    const groups = job.TaskGroups?.map((g) => g.Name) ?? Object.keys(job.JobSummary?.Summary ?? {});
    if (groups.length > 0 && anyOpen) {
      this.resolveWhere(
        ctx,
        (c) => ofJob(c) && ALLOC_KINDS.has(c.kind) && !groups.includes(c.subject.group ?? ""),
        `the group is no longer part of job ${job.ID}`,
      );
    }
    if (job.Status === "dead" && LONG_RUNNING_JOB_TYPES.has(job.Type ?? "")) {
      this.fire(
        ctx,
        { kind: "job-dead", key: `job-dead/${namespace}/${job.ID}`, namespace, subject: { job: job.ID } },
        [`job ${job.ID} is dead and nobody stopped it`],
      );
    } else if (job.Status === "running") {
      this.resolve(ctx, `job-dead/${namespace}/${job.ID}`, `job ${job.ID} is running again`);
    }
  }

  private onNode(node: NodePayload, eventType: string, ctx: Context): void {
    const key = (kind: SignalKind) => `${kind}/-/${node.ID}`;
    if (eventType === "NodeDeregistration") {
      this.resolveWhere(
        ctx,
        (c) => NODE_KINDS.has(c.kind) && c.subject.nodeId === node.ID,
        `node ${node.Name} left the cluster`,
      );
      return;
    }
    const base = {
      namespace: "-",
      subject: node.Name ? { node: node.Name, nodeId: node.ID } : { nodeId: node.ID },
    };
    if (node.Status === "down" || node.Status === "disconnected") {
      this.fire(ctx, { ...base, kind: "node-down", key: key("node-down") }, [
        `node ${node.Name} is ${node.Status}`,
        node.StatusDescription || lastNodeMessage(node) || "it stopped heartbeating",
      ]);
    } else if (node.Status === "ready") {
      this.resolve(ctx, key("node-down"), `node ${node.Name} is ready again`);
    }
    const draining = node.Drain === true || (node.DrainStrategy ?? null) !== null;
    if (draining) {
      this.fire(ctx, { ...base, kind: "node-draining", key: key("node-draining") }, [
        `node ${node.Name} is being drained`,
      ]);
    } else {
      const how = node.LastDrain?.Status === "canceled" ? "was canceled" : "is over";
      this.resolve(ctx, key("node-draining"), `the drain of node ${node.Name} ${how}`);
    }
    // A drain makes the node ineligible: that is said by node-draining, not twice.
    if (node.SchedulingEligibility === "ineligible" && !draining) {
      this.fire(ctx, { ...base, kind: "node-ineligible", key: key("node-ineligible") }, [
        `node ${node.Name} is not eligible for scheduling`,
      ]);
    } else if (node.SchedulingEligibility === "eligible") {
      this.resolve(ctx, key("node-ineligible"), `node ${node.Name} is eligible again`);
    }
  }

  /** Conditions about objects the lists no longer show end: there is nothing left to recover. */
  private resolveVanished(snapshot: NomadSnapshot, ctx: Context): void {
    const allocs = new Set(snapshot.allocations.map((a) => a.ID));
    const nodes = new Set(snapshot.nodes.map((n) => n.ID));
    const jobs = new Set(snapshot.jobs.map((j) => `${j.Namespace || "default"}/${j.ID}`));
    for (const c of [...this.open.values()]) {
      const jobGone = c.subject.job !== undefined && !jobs.has(`${c.namespace}/${c.subject.job}`);
      if (ALLOC_KINDS.has(c.kind) && (jobGone || !allocs.has(c.subject.alloc ?? "")))
        this.resolve(ctx, c.key, `allocation ${short(c.subject.alloc ?? "")} no longer exists`);
      else if (NODE_KINDS.has(c.kind) && !nodes.has(c.subject.nodeId ?? ""))
        this.resolve(ctx, c.key, `node ${c.subject.node ?? c.subject.nodeId ?? ""} left the cluster`);
      else if ((c.kind === "job-dead" || c.kind === "deployment-failed") && jobGone)
        this.resolve(ctx, c.key, `job ${c.subject.job ?? ""} no longer exists`);
    }
  }

  private fire(
    ctx: Context,
    condition: Omit<OpenCondition, "reason" | "since">,
    reasonParts: Array<string | undefined>,
  ): void {
    if (ctx.quiet || this.open.has(condition.key)) return;
    const reason = clip(reasonParts.filter((p) => p !== undefined && p !== "").join(": "));
    this.addOpen({ ...condition, reason, since: ctx.at });
    const signal: Signal = {
      kind: condition.kind,
      status: "firing",
      subject: condition.subject,
      reason,
      at: ctx.at,
      id: `${ctx.idBase()}/firing/${condition.key}`,
    };
    ctx.out.push({ key: condition.key, signal });
  }

  private resolve(ctx: Context, key: string, reason: string): void {
    const condition = this.open.get(key);
    if (condition === undefined) return;
    this.removeOpen(condition);
    const signal: Signal = {
      kind: condition.kind,
      status: "resolved",
      subject: condition.subject,
      reason: clip(reason),
      at: ctx.at,
      id: `${ctx.idBase()}/resolved/${key}`,
    };
    ctx.out.push({ key, signal });
  }

  private addOpen(condition: OpenCondition): void {
    this.open.set(condition.key, condition);
    const { job, alloc } = condition.subject;
    if (job !== undefined) count(this.openOfJob, job, 1);
    if (alloc !== undefined) count(this.openOfAlloc, alloc, 1);
  }

  private removeOpen(condition: OpenCondition): void {
    this.open.delete(condition.key);
    const { job, alloc } = condition.subject;
    if (job !== undefined) count(this.openOfJob, job, -1);
    if (alloc !== undefined) count(this.openOfAlloc, alloc, -1);
  }

  /** (A Map's iteration allows deleting the entries it has passed: resolve does.) */
  private resolveWhere(ctx: Context, match: (c: OpenCondition) => boolean, reason: string): void {
    for (const condition of this.open.values())
      if (match(condition)) this.resolve(ctx, condition.key, reason);
  }

  private track(allocId: string): AllocTrack {
    let track = this.allocs.get(allocId);
    if (track !== undefined) return track;
    track = { tasks: new Map<string, TaskCursor>(), restarts: [], oomAt: undefined, healthy: false };
    remember(this.allocs, allocId, track, this.options.maxTrackedAllocs);
    return track;
  }
}

/** What Job and Node payloads carry beyond the list stubs' fields. */
type JobPayload = JobListStub & { TaskGroups?: Array<{ Name: string }> | null };
type NodePayload = NodeStub & {
  DrainStrategy?: unknown;
  LastDrain?: { Status?: string } | null;
  Events?: Array<{ Message?: string }> | null;
};

/** Task events after the cursor (the list is in time order; Nomad keeps only the latest ones). */
function unseen(events: readonly TaskEvent[], cursor: TaskCursor): readonly TaskEvent[] {
  // Most updates repeat the events already seen: answered from the end of the list.
  const lastTime = events.at(-1)?.Time;
  if (lastTime === undefined || lastTime < cursor.time) return NO_EVENTS;
  if (lastTime === cursor.time) {
    let atTime = 0;
    for (let i = events.length - 1; i >= 0 && events[i]!.Time === lastTime; i--) atTime++;
    if (atTime <= cursor.atTime) return NO_EVENTS;
  }
  const fresh: TaskEvent[] = [];
  let atCursor = 0;
  for (const event of events) {
    if (event.Time < cursor.time) continue;
    if (event.Time === cursor.time && ++atCursor <= cursor.atTime) continue;
    fresh.push(event);
  }
  const last = fresh.at(-1);
  if (last !== undefined) {
    const sameTime = events.filter((e) => e.Time === last.Time).length;
    cursor.time = last.Time;
    cursor.atTime = sameTime;
  }
  return fresh;
}

/** Running, every task up, and healthy by its deployment's health check when it has one. */
function healthy(alloc: Allocation): boolean {
  if (alloc.ClientStatus !== "running" || alloc.DesiredStatus !== "run") return false;
  const tasks = Object.values(alloc.TaskStates ?? {});
  const up = tasks.every((t) => t.State === "running" || (t.State === "dead" && !t.Failed));
  return up && (alloc.DeploymentID ? alloc.DeploymentStatus?.Healthy === true : true);
}

/** The failure in words from the failed tasks' last events: driver error, OOM, exit code, restart verdict. */
export function failureReason(alloc: Allocation): string {
  const states = Object.entries(alloc.TaskStates ?? {});
  const failed = states.filter(([, state]) => state.Failed);
  const parts = (failed.length > 0 ? failed : states).flatMap(([task, state]) => {
    const events = state.Events ?? [];
    const lastOf = (...types: string[]) => events.findLast((e) => types.includes(e.Type));
    const problem = lastOf(
      "Driver Failure",
      "Setup Failure",
      "Failed Artifact Download",
      "Failed Validation",
      "Task hook failed",
      "Disk Resources Exceeded",
      "Terminated",
    );
    const verdict = lastOf("Not Restarting");
    const said = [
      problem && describe(problem),
      verdict && (verdict.DisplayMessage || restartReason(verdict)),
    ];
    const text = said.filter((s): s is string => typeof s === "string" && s !== "").join("; ");
    return text === "" ? [] : [`task "${task}": ${text}`];
  });
  return clip(parts.join(" — ") || alloc.ClientDescription || "allocation failed");
}

function describe(event: TaskEvent): string {
  if (event.Type !== "Terminated") return event.DriverError || event.DisplayMessage || event.Type;
  if (event.Details?.oom_killed === "true") return `OOM-killed${exitCodeOf(event)}`;
  const code = event.Details?.exit_code ?? String(event.ExitCode ?? "");
  const signal = event.Details?.signal;
  const message = event.Details?.exit_message;
  return [
    `exit code ${code}`,
    signal && signal !== "0" ? `signal ${signal}` : "",
    message && message !== "" ? message : "",
  ]
    .filter((s) => s !== "")
    .join(", ");
}

function lastExit(state: TaskState | undefined): string | undefined {
  const terminated = state?.Events?.findLast((e) => e.Type === "Terminated");
  return terminated && `last ${describe(terminated)}`;
}

const exitCodeOf = (event: TaskEvent): string => {
  const code =
    event.Details?.exit_code ?? (event.ExitCode === undefined ? undefined : String(event.ExitCode));
  return code === undefined ? "" : ` (exit code ${code})`;
};

const restartReason = (event: TaskEvent): string => event.Details?.restart_reason ?? "";

const lastNodeMessage = (node: NodePayload): string | undefined => node.Events?.at(-1)?.Message;

const short = (id: string): string => id.slice(0, 8);

const NO_SIGNALS: readonly Signal[] = [];
const NO_EVENTS: readonly TaskEvent[] = [];

function count(counts: Map<string, number>, key: string, delta: number): void {
  const n = (counts.get(key) ?? 0) + delta;
  if (n > 0) counts.set(key, n);
  else counts.delete(key);
}

const clip = (text: string): string =>
  text.length > REASON_LIMIT ? `${text.slice(0, REASON_LIMIT - 1)}…` : text;

function allocSubject(alloc: Allocation): Subject {
  const subject: Subject = { job: alloc.JobID, group: alloc.TaskGroup, alloc: alloc.ID };
  if (alloc.NodeName) subject.node = alloc.NodeName;
  if (alloc.NodeID) subject.nodeId = alloc.NodeID;
  if (alloc.DeploymentID) subject.deployment = alloc.DeploymentID;
  return subject;
}

/**
 * Map.set that keeps the map to `limit` entries, forgetting the oldest first (first in, first out:
 * cheaper than true LRU, and forgetting an object only costs re-reading its history once).
 */
function remember<K, V>(map: Map<K, V>, key: K, value: V, limit: number): void {
  const known = map.has(key);
  map.set(key, value);
  if (known || map.size <= limit) return;
  const oldest = map.keys().next();
  if (!oldest.done) map.delete(oldest.value);
}
