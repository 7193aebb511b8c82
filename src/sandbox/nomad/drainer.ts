import { rfc3339 } from "./clock.js";
import type { Cluster } from "./cluster.js";
import { nodeEvent } from "./nodes.js";
import { newEval } from "./objects.js";
import { jobKey, terminalAlloc } from "./store.js";
import type { Allocation, Evaluation, Node } from "./types.js";

/** Node event details of nomad/drainer (NodeDrainEventComplete, NodeDrainEventDetailDeadlined). */
export const DRAIN_COMPLETE = "Node drain complete";
const DEADLINE_REACHED = "deadline_reached";

/** How often (real time) pending drain deadlines are compared with the simulation's clock. */
const DEADLINE_POLL_MS = 20;

const clientTerminal = (a: Allocation): boolean => ["complete", "failed", "lost"].includes(a.ClientStatus);

/**
 * nomad/drainer in small. While a node drains, each task group of a service job on it has allocations
 * flagged for migration in batches: no more than the group's migrate max_parallel may be on their way
 * at once, counted as Nomad does (handleTaskGroup: allocations with a health verdict, minus count −
 * max_parallel). Batch allocations are left to finish; system ones are stopped once the rest is off
 * (unless IgnoreSystemJobs). The drain completes when nothing but those is left running on the node;
 * at its deadline, whatever is left is flagged at once and the drain is marked complete.
 */
export class Drainer {
  private checkScheduled = false;
  /** Unix nanoseconds at which each draining node's deadline forces the rest off. */
  private readonly forceAt = new Map<string, number>();
  private deadlinePoll: NodeJS.Timeout | undefined;

  constructor(private readonly cluster: Cluster) {
    // The drainer watches the state store, as Nomad's does: any change may let a batch go.
    cluster.store.watch(() => this.scheduleCheck());
  }

  /** A drain was set (deadlineNs > 0: forced then; < 0: forced now; 0: no deadline). */
  started(nodeId: string, deadlineNs: number): void {
    this.forceAt.delete(nodeId);
    if (deadlineNs !== 0) {
      this.forceAt.set(nodeId, this.cluster.clock.nowNs() + Math.max(0, deadlineNs));
      this.pollDeadlines();
    }
    this.scheduleCheck();
  }

  cancelled(nodeId: string): void {
    this.forceAt.delete(nodeId);
  }

  close(): void {
    clearInterval(this.deadlinePoll);
    this.deadlinePoll = undefined;
  }

  /** One pass of the drainer over every draining node. */
  progress(): void {
    const draining = [...this.cluster.store.nodes.values()].filter((n) => n.DrainStrategy !== null);
    if (draining.length === 0) return;
    const now = this.cluster.clock.nowNs();
    const deadlined = draining.filter((n) => (this.forceAt.get(n.ID) ?? Infinity) <= now);
    for (const node of deadlined) this.forceOff(node);
    const live = draining.filter((n) => !deadlined.includes(n));
    this.markForMigration(
      live.length === 0 ? [] : this.nextBatch(new Set(live.map((n) => n.ID))),
      "node-drain",
    );
    for (const node of live) if (this.isDone(node)) this.finish(node);
  }

  private scheduleCheck(): void {
    if (this.checkScheduled) return;
    if (![...this.cluster.store.nodes.values()].some((n) => n.DrainStrategy !== null)) return;
    this.checkScheduled = true;
    this.cluster.ticker.after(1, () => {
      this.checkScheduled = false;
      this.progress();
    });
  }

  /** drainer/watch_jobs.go handleTaskGroup, for every service group with allocations on a draining node. */
  private nextBatch(drainingNodes: ReadonlySet<string>): Allocation[] {
    const store = this.cluster.store;
    const groups = new Map<string, Allocation[]>();
    for (const alloc of store.allocs.values()) {
      if (alloc.Job?.Type !== "service") continue;
      const key = `${jobKey(alloc.Namespace, alloc.JobID)}\u0000${alloc.TaskGroup}`;
      groups.set(key, [...(groups.get(key) ?? []), alloc]);
    }
    const batch: Allocation[] = [];
    for (const allocs of groups.values()) {
      const onDraining = (a: Allocation) => drainingNodes.has(a.NodeID);
      if (!allocs.some((a) => onDraining(a) && !clientTerminal(a))) continue;
      const first = allocs[0]!;
      const job = store.jobs.get(jobKey(first.Namespace, first.JobID)) ?? first.Job;
      const group = job?.TaskGroups?.find((g) => g.Name === first.TaskGroup);
      // Groups without a migrate block are left alone until the deadline (handleJob).
      if (group?.Migrate == null) continue;
      // A verdict either way counts (DeploymentStatus.HasHealth), as in Nomad. One already flagged is on
      // its way out: Nomad's watcher sees it stopped by the time it looks again (it waits for the plan's
      // index), so it does not count here, whatever order the simulation's steps run in.
      const healthy = allocs.filter(
        (a) =>
          !terminalAlloc(a) && a.DesiredTransition.Migrate !== true && a.DeploymentStatus?.Healthy != null,
      ).length;
      const drainable = allocs.filter(
        (a) =>
          onDraining(a) &&
          !clientTerminal(a) &&
          a.DesiredStatus === "run" &&
          a.DesiredTransition.Migrate !== true,
      );
      const room = Math.min(drainable.length, healthy - (group.Count - group.Migrate.MaxParallel));
      if (room > 0) batch.push(...drainable.slice(0, room));
    }
    return batch;
  }

  /** IsDone: nothing but system allocations still running on the node (batch ones count). */
  private isDone(node: Node): boolean {
    return ![...this.cluster.store.allocs.values()].some(
      (a) => a.NodeID === node.ID && a.Job?.Type !== "system" && !clientTerminal(a),
    );
  }

  /** RemainingAllocs: what still runs there and is the drain's to stop. */
  private remaining(node: Node): Allocation[] {
    const ignoreSystem = node.DrainStrategy?.DrainSpec.IgnoreSystemJobs === true;
    return [...this.cluster.store.allocs.values()].filter(
      (a) =>
        a.NodeID === node.ID &&
        !terminalAlloc(a) &&
        a.DesiredTransition.Migrate !== true &&
        !(ignoreSystem && a.Job?.Type === "system"),
    );
  }

  private finish(node: Node): void {
    this.markForMigration(this.remaining(node), "node-drain");
    this.complete(node, false);
  }

  /** handleDeadlinedNodes: everything left is flagged at once and the drain is over. */
  private forceOff(node: Node): void {
    this.markForMigration(this.remaining(node), "node-drain");
    this.complete(node, true);
  }

  private markForMigration(allocs: readonly Allocation[], triggeredBy: string): void {
    if (allocs.length === 0) return;
    const store = this.cluster.store;
    const evals = new Map<string, Evaluation>();
    store.write("AllocationUpdateDesiredStatus", (tx) => {
      for (const alloc of allocs) {
        alloc.DesiredTransition = { ...alloc.DesiredTransition, Migrate: true };
        tx.upsertAlloc(alloc, true);
        const key = jobKey(alloc.Namespace, alloc.JobID);
        if (alloc.Job !== null && !evals.has(key)) {
          const node = store.nodes.get(alloc.NodeID);
          const evaluation = newEval(alloc.Job, {
            triggeredBy,
            nodeId: alloc.NodeID,
            nodeModifyIndex: node?.ModifyIndex ?? 0,
          });
          evals.set(key, evaluation);
          tx.upsertEval(evaluation);
        }
      }
    });
    for (const evaluation of evals.values()) this.cluster.enqueue(evaluation.ID);
  }

  private complete(node: Node, deadlineReached: boolean): void {
    if (node.DrainStrategy === null) return;
    this.forceAt.delete(node.ID);
    this.cluster.store.write("NodeDrain", (tx) => {
      const time = rfc3339(tx.now);
      node.DrainStrategy = null;
      node.Drain = false;
      node.LastDrain = {
        ...(node.LastDrain ?? { StartedAt: time, AccessorID: "", Meta: null }),
        Status: "complete",
        UpdatedAt: time,
      };
      const event = nodeEvent(DRAIN_COMPLETE, "Drain", time);
      if (deadlineReached) event.Details = { [DEADLINE_REACHED]: "true" };
      node.Events = [...node.Events, event].slice(-10);
      tx.upsertNode(node);
    });
  }

  /** Deadlines are in the simulation's time, which may run faster than real time or be set by a test. */
  private pollDeadlines(): void {
    if (this.deadlinePoll !== undefined) return;
    this.deadlinePoll = setInterval(() => {
      if (this.forceAt.size === 0) return this.close();
      const now = this.cluster.clock.nowNs();
      if ([...this.forceAt.values()].some((at) => at <= now))
        this.cluster.ticker.after(0, () => this.progress());
    }, DEADLINE_POLL_MS);
    this.deadlinePoll.unref();
  }
}
