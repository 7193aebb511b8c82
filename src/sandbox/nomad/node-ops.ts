import { rfc3339 } from "./clock.js";
import type { Cluster } from "./cluster.js";
import { Drainer } from "./drainer.js";
import { badRequest, serverError } from "./errors.js";
import { nodeEvent } from "./nodes.js";
import { newEval } from "./objects.js";
import { isLive } from "./reconcile.js";
import { jobKey, type MsgType } from "./store.js";
import type { Node } from "./types.js";

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
 * makes its allocations lost and the scheduler replaces them; a drain hands the node to the Drainer.
 */
export class NodeService {
  private readonly drainer: Drainer;

  constructor(private readonly cluster: Cluster) {
    this.drainer = new Drainer(cluster);
  }

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
    if (request !== undefined) this.drainer.started(node.ID, request.deadlineNs);
    else {
      this.drainer.cancelled(node.ID);
      if (node.SchedulingEligibility === "eligible") this.cluster.capacityChanged();
    }
    return { EvalCreateIndex: 0, EvalIDs: null, Index: index, NodeModifyIndex: index };
  }

  private cancelDrain(n: Node, time: string): void {
    // Not draining: nothing to cancel, and LastDrain stays as it was (state_store.go drainNoop).
    if (n.DrainStrategy === null) return;
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

  /** After allocations change or capacity frees: drains go on (see Drainer). */
  progressDrains(): void {
    this.drainer.progress();
  }

  close(): void {
    this.drainer.close();
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
