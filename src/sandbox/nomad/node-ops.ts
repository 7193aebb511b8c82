import { rfc3339 } from "./clock.js";
import type { Cluster } from "./cluster.js";
import { badRequest, serverError } from "./errors.js";
import { nodeEvent } from "./nodes.js";
import { newEval } from "./objects.js";
import { isLive } from "./reconcile.js";
import { jobKey, type MsgType } from "./store.js";
import type { Evaluation, Node } from "./types.js";

/** api.NodeDrainUpdateResponse / NodeEligibilityUpdateResponse. */
export interface NodeUpdateResponse {
  EvalCreateIndex: number;
  EvalIDs: string[] | null;
  Index: number;
  NodeModifyIndex: number;
}

export interface DrainRequest {
  deadlineNs: number;
  ignoreSystemJobs: boolean;
  markEligible: boolean;
  meta: Record<string, string> | null;
}

/**
 * Node status, eligibility and drains (nomad/node_endpoint.go, nomad/drainer): a node going down
 * makes its allocations lost and the scheduler replaces them; a drain marks its allocations for
 * migration and completes once none is left running.
 */
export class NodeService {
  constructor(private readonly cluster: Cluster) {}

  setStatus(node: Node, status: "ready" | "down"): void {
    if (node.Status === status) return;
    const message = status === "down" ? "Node heartbeat missed" : "Node reregistered by heartbeat";
    this.updateNode("NodeStreamEvent", node, (n, time) => {
      n.Status = status;
      n.StatusUpdatedAt = Math.floor(this.cluster.clock.nowNs() / 1e9);
      n.Events = [...n.Events, nodeEvent(message, "Cluster", time)].slice(-10);
    });
    this.nodeEvals(node);
    if (status === "ready") this.cluster.capacityChanged();
  }

  drain(node: Node, request: DrainRequest | undefined): NodeUpdateResponse {
    const now = this.cluster.clock.nowNs();
    const index = this.updateNode("NodeDrain", node, (n, time) => {
      if (request === undefined) return this.cancelDrain(n, time);
      n.DrainStrategy = {
        DrainSpec: { Deadline: request.deadlineNs, IgnoreSystemJobs: request.ignoreSystemJobs },
        ForceDeadline: request.deadlineNs > 0 ? rfc3339(now + request.deadlineNs) : null,
        StartedAt: time,
      };
      n.Drain = true;
      n.SchedulingEligibility = "ineligible";
      n.LastDrain = {
        Status: "draining",
        StartedAt: time,
        UpdatedAt: time,
        AccessorID: "",
        Meta: request.meta,
      };
      n.Events = [...n.Events, nodeEvent("Node drain strategy set", "Drain", time)].slice(-10);
    });
    if (request !== undefined) this.cluster.ticker.after(1, () => this.migrate(node.ID));
    else if (node.SchedulingEligibility === "eligible") this.cluster.capacityChanged();
    return { EvalCreateIndex: 0, EvalIDs: null, Index: index, NodeModifyIndex: index };
  }

  private cancelDrain(n: Node, time: string): void {
    n.DrainStrategy = null;
    n.Drain = false;
    n.LastDrain = {
      ...(n.LastDrain ?? { StartedAt: time, AccessorID: "", Meta: null }),
      Status: "canceled",
      UpdatedAt: time,
    };
    n.Events = [...n.Events, nodeEvent("Node drain strategy unset", "Drain", time)].slice(-10);
  }

  setEligibility(node: Node, eligibility: string): NodeUpdateResponse {
    if (eligibility !== "eligible" && eligibility !== "ineligible") {
      throw badRequest(`invalid scheduling eligibility "${eligibility}"`);
    }
    if (node.DrainStrategy !== null && eligibility === "eligible") {
      throw serverError("can not set node's scheduling eligibility to eligible while it is draining");
    }
    // NodeUpdateEligibilityRequestType maps to the NodeDrain event type (nomad/state/events.go).
    const index = this.updateNode("NodeDrain", node, (n, time) => {
      n.SchedulingEligibility = eligibility;
      n.Events = [
        ...n.Events,
        nodeEvent(`Node marked as ${eligibility} for scheduling`, "Cluster", time),
      ].slice(-10);
    });
    if (eligibility === "eligible") this.cluster.capacityChanged();
    return { EvalCreateIndex: 0, EvalIDs: null, Index: index, NodeModifyIndex: index };
  }

  /** The drainer: flag every allocation of the node for migration, one evaluation per job. */
  private migrate(nodeId: string): void {
    const store = this.cluster.store;
    const node = store.nodes.get(nodeId);
    if (node?.DrainStrategy == null) return;
    const allocs = [...store.allocs.values()].filter(
      (a) => a.NodeID === nodeId && isLive(a) && !this.skipSystem(a.Job?.Type, node),
    );
    if (allocs.length === 0) return this.completeDrain(nodeId);
    const evals = new Map<string, Evaluation>();
    store.write("AllocationUpdateDesiredStatus", (tx) => {
      for (const alloc of allocs) {
        alloc.DesiredTransition = { ...alloc.DesiredTransition, Migrate: true };
        tx.upsertAlloc(alloc, true);
        const key = jobKey(alloc.Namespace, alloc.JobID);
        if (alloc.Job !== null && !evals.has(key)) {
          const evaluation = newEval(alloc.Job, {
            triggeredBy: "node-drain",
            nodeId,
            nodeModifyIndex: node.ModifyIndex,
          });
          evals.set(key, evaluation);
          tx.upsertEval(evaluation);
        }
      }
    });
    for (const evaluation of evals.values()) this.cluster.enqueue(evaluation.ID);
  }

  private skipSystem(type: string | undefined, node: Node): boolean {
    return type === "system" && node.DrainStrategy?.DrainSpec.IgnoreSystemJobs === true;
  }

  /** After allocations stop: finish the drains that have nothing left running. */
  progressDrains(): void {
    const store = this.cluster.store;
    for (const node of store.nodes.values()) {
      if (node.DrainStrategy === null) continue;
      const flagged = [...store.allocs.values()].filter(
        (a) => a.NodeID === node.ID && isLive(a) && !this.skipSystem(a.Job?.Type, node),
      );
      if (flagged.length === 0) this.completeDrain(node.ID);
    }
  }

  private completeDrain(nodeId: string): void {
    const node = this.cluster.store.nodes.get(nodeId);
    if (node?.DrainStrategy == null) return;
    this.updateNode("NodeDrain", node, (n, time) => {
      n.DrainStrategy = null;
      n.Drain = false;
      n.LastDrain = {
        ...(n.LastDrain ?? { StartedAt: time, AccessorID: "", Meta: null }),
        Status: "complete",
        UpdatedAt: time,
      };
      n.Events = [...n.Events, nodeEvent("Node drain complete", "Drain", time)].slice(-10);
    });
  }

  /** Evaluations for every job with allocations on the node (TriggeredBy node-update). */
  private nodeEvals(node: Node): void {
    const store = this.cluster.store;
    const jobs = new Map<string, NonNullable<ReturnType<typeof store.jobs.get>>>();
    for (const alloc of store.allocs.values()) {
      if (alloc.NodeID !== node.ID || !isLive(alloc)) continue;
      const job = store.jobs.get(jobKey(alloc.Namespace, alloc.JobID));
      if (job !== undefined) jobs.set(jobKey(job.Namespace, job.ID), job);
    }
    if (jobs.size === 0) return;
    const evals = [...jobs.values()].map((job) =>
      newEval(job, {
        triggeredBy: "node-update",
        nodeId: node.ID,
        nodeModifyIndex: node.ModifyIndex,
        jobModifyIndex: job.JobModifyIndex,
      }),
    );
    store.write("EvaluationUpdated", (tx) => evals.forEach((e) => tx.upsertEval(e)));
    for (const evaluation of evals) this.cluster.enqueue(evaluation.ID);
  }

  private updateNode(type: MsgType, node: Node, mutate: (n: Node, time: string) => void): number {
    return this.cluster.store.write(type, (tx) => {
      mutate(node, rfc3339(tx.now));
      tx.upsertNode(node);
      return tx.index;
    });
  }
}
