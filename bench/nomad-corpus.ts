/**
 * A Nomad event stream for the alert pipeline's throughput benchmark: NDJSON lines as
 * /v1/event/stream sends them, at least 100,000 by default.
 *
 * Constructed, not captured. The payload shapes follow the documented samples of the shared reference
 * (nomad/samples: allocations-list-response.json for allocations and their task events,
 * event-stream-NodeRegistration.json and nodes-list-response.json for nodes,
 * deployment-read-response.json, evaluation-read-response.json, jobs-list-response.json, and
 * event-stream.framing-example.ndjson for the framing and the `{}` heartbeat). Topics, event types,
 * task event types and statuses are the real wire strings of nomad-enums.json: `NodeStreamEvent` for
 * node status changes, drains as topic `Node` type `NodeDrain`, new allocations as `PlanResult` (there
 * is no `AllocationCreated`), an OOM kill as a `Terminated` task event with `oom_killed`.
 *
 * Deterministic: the same options give the same lines. The mix is a busy cluster's: mostly allocation
 * updates, heartbeats, evaluations, some job, deployment and node events, and a few failures (driver
 * failures, crashes, OOM kills, restarts, nodes going down) so the rules have something to say.
 */
import { seededRandom } from "../test/support/random.js";

export interface NomadCorpusOptions {
  /** Lines to produce. Default 100,000. */
  lines?: number;
  seed?: number;
  nodes?: number;
  jobs?: number;
}

/** Share of lines by kind (cumulative thresholds are derived from it). */
const MIX: Array<[LineKind, number]> = [
  ["heartbeat", 0.08],
  ["alloc-update", 0.55],
  ["alloc-failure", 0.03],
  ["alloc-placed", 0.08],
  ["evaluation", 0.12],
  ["job", 0.05],
  ["deployment", 0.05],
  ["node", 0.04],
];

type LineKind =
  | "heartbeat"
  | "alloc-update"
  | "alloc-failure"
  | "alloc-placed"
  | "evaluation"
  | "job"
  | "deployment"
  | "node";

/** When the corpus's first event happens. */
export const CORPUS_START_MS = Date.parse("2026-03-01T12:00:00Z");
const T0_NS = CORPUS_START_MS * 1e6;

export function nomadEventCorpus(options: NomadCorpusOptions = {}): string[] {
  // Seeded: the corpus is the same on every run.
  const random = seededRandom(options.seed ?? 6);
  const cluster = new Cluster(random, options.nodes ?? 12, options.jobs ?? 40);
  const lines: string[] = [];
  const total = options.lines ?? 100_000;
  while (lines.length < total) {
    const kind = pick(random);
    lines.push(kind === "heartbeat" ? "{}" : JSON.stringify(cluster.frame(kind)));
  }
  return lines;
}

/** How many events of each Topic/Type the lines carry (for the benchmark's report). */
export function corpusMix(lines: readonly string[]): Record<string, number> {
  const mix: Record<string, number> = {};
  for (const line of lines) {
    const frame = JSON.parse(line) as { Events?: Array<{ Topic: string; Type: string }> };
    if (frame.Events === undefined) mix.heartbeat = (mix.heartbeat ?? 0) + 1;
    for (const e of frame.Events ?? []) mix[`${e.Topic}/${e.Type}`] = (mix[`${e.Topic}/${e.Type}`] ?? 0) + 1;
  }
  return mix;
}

function pick(random: () => number): LineKind {
  let roll = random();
  for (const [kind, share] of MIX) {
    if (roll < share) return kind;
    roll -= share;
  }
  return "alloc-update";
}

interface Frame {
  Index: number;
  Events: StreamEvent[];
}

interface StreamEvent {
  Topic: string;
  Type: string;
  Key: string;
  Namespace: string;
  FilterKeys: string[] | null;
  Index: number;
  Payload: Record<string, unknown>;
}

interface SimAlloc {
  id: string;
  job: SimJob;
  group: string;
  index: number;
  node: SimNode;
  createIndex: number;
  deploymentId: string;
  restarts: number;
  events: Array<Record<string, unknown>>;
}

interface SimJob {
  id: string;
  version: number;
  groups: string[];
}

interface SimNode {
  id: string;
  name: string;
  status: "ready" | "down";
  drain: boolean;
  eligible: boolean;
}

/** Just enough cluster state for the events to be consistent (allocations on nodes, of jobs). */
class Cluster {
  private index = 1000;
  private readonly nodes: SimNode[];
  private readonly jobs: SimJob[];
  private readonly allocs: SimAlloc[] = [];

  constructor(
    private readonly random: () => number,
    nodeCount: number,
    jobCount: number,
  ) {
    this.nodes = Array.from({ length: nodeCount }, (_, i) => ({
      id: this.uuid(),
      name: `nomad-${i + 1}`,
      status: "ready",
      drain: false,
      eligible: true,
    }));
    this.jobs = Array.from({ length: jobCount }, (_, i) => ({
      id: `app-${i + 1}`,
      version: 0,
      groups: i % 3 === 0 ? ["web", "worker"] : ["web"],
    }));
    for (const job of this.jobs)
      for (const group of job.groups) for (let n = 0; n < 3; n++) this.place(job, group, n);
  }

  frame(kind: Exclude<LineKind, "heartbeat">): Frame {
    this.index += 1;
    const events = this.events(kind);
    return { Index: this.index, Events: events };
  }

  private events(kind: Exclude<LineKind, "heartbeat">): StreamEvent[] {
    switch (kind) {
      case "alloc-update": {
        // Most client updates report health or a status change; some add a task event.
        const alloc = this.anyAlloc();
        if (this.random() < 0.3) {
          const started = taskEvent("Started", this.now(), {}, "Task started by client");
          alloc.events = [...alloc.events, started].slice(-10);
        }
        return [
          this.allocEvent("AllocationUpdated", alloc, "running"),
          this.deploymentEvent("AllocationUpdated", alloc),
        ];
      }
      case "alloc-failure":
        return this.failure(this.anyAlloc());
      case "alloc-placed": {
        const job = this.oneOf(this.jobs);
        const alloc = this.place(job, this.oneOf(job.groups), Math.floor(this.random() * 3));
        return [
          this.allocEvent("PlanResult", alloc, "pending"),
          this.deploymentEvent("PlanResult", alloc),
          this.jobEvent("PlanResult", job, "running"),
        ];
      }
      case "evaluation":
        return [this.evaluationEvent()];
      case "job": {
        const job = this.oneOf(this.jobs);
        job.version += 1;
        return [this.jobEvent("JobRegistered", job, "running"), this.evaluationEvent("JobRegistered", job)];
      }
      case "deployment": {
        const alloc = this.anyAlloc();
        const roll = this.random();
        const status = roll < 0.1 ? "failed" : roll < 0.6 ? "successful" : "running";
        return [this.deploymentEvent("DeploymentStatusUpdate", alloc, status)];
      }
      case "node":
        return [this.nodeEvent()];
    }
  }

  private failure(alloc: SimAlloc): StreamEvent[] {
    const now = this.now();
    const roll = this.random();
    if (roll < 0.3) {
      alloc.restarts += 1;
      alloc.events.push(
        taskEvent("Terminated", now, { exit_code: "1", signal: "0", oom_killed: "false" }, "Exit Code: 1"),
        taskEvent("Restarting", now, { restart_reason: "Restart within policy", start_delay: "15000000000" }),
      );
      return [this.allocEvent("AllocationUpdated", alloc, "running", "pending")];
    }
    if (roll < 0.55) {
      alloc.restarts += 1;
      alloc.events.push(
        taskEvent("Terminated", now, { exit_code: "137", signal: "0", oom_killed: "true" }, "Exit Code: 137"),
        taskEvent("Restarting", now, { restart_reason: "Restart within policy" }),
      );
      return [this.allocEvent("AllocationUpdated", alloc, "running", "pending")];
    }
    const error = "Failed to pull `registry.example.org/app:missing`: manifest unknown";
    alloc.events.push(
      { ...taskEvent("Driver Failure", now, { driver_error: error }, error), DriverError: error },
      taskEvent("Not Restarting", now, { restart_reason: "Error was unrecoverable", fails_task: "true" }),
    );
    return [
      this.allocEvent("AllocationUpdated", alloc, "failed", "dead"),
      this.deploymentEvent("AllocationUpdated", alloc),
    ];
  }

  private place(job: SimJob, group: string, index: number): SimAlloc {
    const node = this.oneOf(this.nodes);
    const alloc: SimAlloc = {
      id: this.uuid(),
      job,
      group,
      index,
      node,
      createIndex: this.index,
      deploymentId: this.uuid(),
      restarts: 0,
      events: [
        taskEvent("Received", this.now(), {}, "Task received by client"),
        taskEvent(
          "Task Setup",
          this.now(),
          { message: "Building Task Directory" },
          "Building Task Directory",
        ),
      ],
    };
    this.allocs.push(alloc);
    if (this.allocs.length > 2_000) this.allocs.shift();
    return alloc;
  }

  private allocEvent(
    type: string,
    alloc: SimAlloc,
    clientStatus: string,
    taskState = "running",
  ): StreamEvent {
    const now = this.now();
    const payload = {
      ClientDescription: clientStatus === "failed" ? "Failed tasks" : "Tasks are running",
      ClientStatus: clientStatus,
      CreateIndex: alloc.createIndex,
      CreateTime: now - 60e9,
      DeploymentStatus: {
        Canary: false,
        Healthy: clientStatus === "running",
        ModifyIndex: this.index,
        Timestamp: rfc3339(now),
      },
      DesiredDescription: "",
      DesiredStatus: "run",
      DesiredTransition: { ForceReschedule: null, Migrate: null, Reschedule: null },
      DeploymentID: alloc.deploymentId,
      EvalID: this.uuid(),
      FollowupEvalID: "",
      ID: alloc.id,
      Job: null,
      JobID: alloc.job.id,
      JobType: "service",
      JobVersion: alloc.job.version,
      ModifyIndex: this.index,
      ModifyTime: now,
      Name: `${alloc.job.id}.${alloc.group}[${alloc.index}]`,
      Namespace: "default",
      NodeID: alloc.node.id,
      NodeName: alloc.node.name,
      PreemptedAllocations: null,
      PreemptedByAllocation: "",
      RescheduleTracker: null,
      TaskGroup: alloc.group,
      TaskStates: {
        [alloc.group === "web" ? "nginx" : "worker"]: {
          Events: alloc.events.slice(-10),
          Failed: clientStatus === "failed",
          FinishedAt: taskState === "dead" ? rfc3339(now) : null,
          LastRestart: alloc.restarts > 0 ? rfc3339(now) : null,
          Restarts: alloc.restarts,
          StartedAt: rfc3339(now - 60e9),
          State: taskState,
          TaskHandle: null,
        },
      },
    };
    return this.event("Allocation", type, alloc.id, [alloc.job.id, alloc.deploymentId], {
      Allocation: payload,
    });
  }

  private deploymentEvent(type: string, alloc: SimAlloc, status = "running"): StreamEvent {
    const payload = {
      ID: alloc.deploymentId,
      Namespace: "default",
      JobID: alloc.job.id,
      JobVersion: alloc.job.version,
      JobModifyIndex: this.index - 5,
      JobSpecModifyIndex: this.index - 5,
      JobCreateIndex: alloc.createIndex,
      TaskGroups: {
        [alloc.group]: {
          Promoted: false,
          DesiredCanaries: 0,
          DesiredTotal: 3,
          PlacedAllocs: 3,
          HealthyAllocs: status === "successful" ? 3 : 2,
          UnhealthyAllocs: status === "failed" ? 1 : 0,
        },
      },
      Status: status,
      StatusDescription:
        status === "failed"
          ? "Failed due to unhealthy allocations"
          : status === "successful"
            ? "Deployment completed successfully"
            : "Deployment is running",
      CreateIndex: alloc.createIndex,
      ModifyIndex: this.index,
    };
    return this.event("Deployment", type, alloc.deploymentId, [alloc.job.id], { Deployment: payload });
  }

  private jobEvent(type: string, job: SimJob, status: string): StreamEvent {
    const payload = {
      ID: job.id,
      ParentID: "",
      Name: job.id,
      Namespace: "default",
      Type: "service",
      Priority: 50,
      Status: status,
      StatusDescription: "",
      Stop: false,
      Version: job.version,
      TaskGroups: job.groups.map((name) => ({ Name: name, Count: 3 })),
      CreateIndex: 900,
      ModifyIndex: this.index,
      JobModifyIndex: this.index,
    };
    return this.event("Job", type, job.id, null, { Job: payload });
  }

  private evaluationEvent(type = "EvaluationUpdated", job = this.oneOf(this.jobs)): StreamEvent {
    const id = this.uuid();
    const payload = {
      CreateIndex: this.index,
      CreateTime: this.now(),
      FailedTGAllocs: null,
      ID: id,
      JobID: job.id,
      ModifyIndex: this.index,
      ModifyTime: this.now(),
      Namespace: "default",
      PreviousEval: "",
      Priority: 50,
      RelatedEvals: null,
      SnapshotIndex: this.index - 1,
      Status: this.random() < 0.5 ? "pending" : "complete",
      StatusDescription: "",
      TriggeredBy: "job-register",
      Type: "service",
    };
    return this.event("Evaluation", type, id, [job.id, ""], { Evaluation: payload });
  }

  private nodeEvent(): StreamEvent {
    const node = this.oneOf(this.nodes);
    const roll = this.random();
    let type = "NodeStreamEvent";
    let message: string;
    if (roll < 0.5) {
      node.status = node.status === "ready" ? "down" : "ready";
      message = node.status === "down" ? "Node heartbeat missed" : "Node reregistered by heartbeat";
    } else if (roll < 0.8) {
      type = "NodeDrain";
      node.drain = !node.drain;
      node.eligible = !node.drain;
      message = node.drain ? "Node drain strategy set" : "Node drain complete";
    } else {
      // An eligibility change is raft NodeUpdateEligibility, whose events are typed NodeDrain.
      type = "NodeDrain";
      if (!node.drain) node.eligible = !node.eligible;
      message = `Node marked as ${node.eligible ? "eligible" : "ineligible"} for scheduling`;
    }
    const payload = {
      ID: node.id,
      Datacenter: "dc1",
      Name: node.name,
      HTTPAddr: "10.0.0.1:4646",
      TLSEnabled: false,
      Attributes: { "kernel.name": "linux", "nomad.version": "1.10.0", "os.name": "debian" },
      NodeClass: "",
      Drain: node.drain,
      DrainStrategy: node.drain ? { DrainSpec: { Deadline: 3600e9, IgnoreSystemJobs: false } } : null,
      SchedulingEligibility: node.eligible ? "eligible" : "ineligible",
      Status: node.status,
      StatusDescription: "",
      StatusUpdatedAt: Math.floor(this.now() / 1e9),
      Events: [
        {
          Message: message,
          Subsystem: type === "NodeDrain" ? "Drain" : "Cluster",
          Details: null,
          Timestamp: rfc3339(this.now()),
        },
      ],
      CreateIndex: 10,
      ModifyIndex: this.index,
    };
    return this.event("Node", type, node.id, null, { Node: payload });
  }

  private event(
    topic: string,
    type: string,
    key: string,
    filterKeys: string[] | null,
    payload: Record<string, unknown>,
  ): StreamEvent {
    const namespace = topic === "Node" ? "" : "default";
    return {
      Topic: topic,
      Type: type,
      Key: key,
      Namespace: namespace,
      FilterKeys: filterKeys,
      Index: this.index,
      Payload: payload,
    };
  }

  private anyAlloc(): SimAlloc {
    return this.oneOf(this.allocs);
  }

  private oneOf<T>(items: readonly T[]): T {
    const item = items[Math.floor(this.random() * items.length)];
    if (item === undefined) throw new Error("empty");
    return item;
  }

  /** Nanoseconds, advancing ~50 ms per raft entry. */
  private now(): number {
    return T0_NS + this.index * 50e6;
  }

  private uuid(): string {
    const hex = () =>
      Math.floor(this.random() * 0x10000)
        .toString(16)
        .padStart(4, "0");
    return `${hex()}${hex()}-${hex()}-${hex()}-${hex()}-${hex()}${hex()}${hex()}`;
  }
}

/** A task event with every field the documented sample carries. */
function taskEvent(
  type: string,
  timeNs: number,
  details: Record<string, string> = {},
  display = "",
): Record<string, unknown> {
  return {
    Details: details,
    DiskLimit: 0,
    DisplayMessage: display,
    DownloadError: "",
    DriverError: "",
    DriverMessage: "",
    ExitCode: Number(details.exit_code ?? 0),
    FailedSibling: "",
    FailsTask: details.fails_task === "true",
    GenericSource: "",
    KillError: "",
    KillReason: "",
    KillTimeout: 0,
    Message: "",
    RestartReason: details.restart_reason ?? "",
    SetupError: "",
    Signal: 0,
    StartDelay: Number(details.start_delay ?? 0),
    TaskSignal: "",
    TaskSignalReason: "",
    Time: timeNs,
    Type: type,
    ValidationError: "",
    VaultError: "",
  };
}

const rfc3339 = (ns: number): string => new Date(Math.floor(ns / 1e6)).toISOString();
