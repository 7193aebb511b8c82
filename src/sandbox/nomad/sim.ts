import { NanoClock } from "./clock.js";
import { ClientSim } from "./client.js";
import type { Cluster } from "./cluster.js";
import { DeploymentWatcher } from "./deployments.js";
import { EventBroker } from "./events.js";
import { JobService } from "./jobs.js";
import { LogStore } from "./logs.js";
import { NodeService } from "./node-ops.js";
import { createNode } from "./nodes.js";
import { isLive } from "./reconcile.js";
import { Scheduler } from "./scheduler.js";
import { StateStore } from "./store.js";
import { Ticker } from "./ticker.js";
import type { Allocation, FailureKind, Node, SimNodeSpec } from "./types.js";

export interface SimulationOptions {
  region: string;
  datacenter: string;
  nodes: SimNodeSpec[];
  stepMs: number;
  now: () => number;
}

/** The simulated cluster: one server (state, scheduler, deployment watcher, drainer) and its clients. */
export class Simulation implements Cluster {
  readonly clock: NanoClock;
  readonly broker = new EventBroker(100);
  readonly store: StateStore;
  readonly ticker: Ticker;
  readonly logs = new LogStore();
  readonly region: string;
  readonly jobs: JobService;
  readonly nodeService: NodeService;
  readonly deployments: DeploymentWatcher;
  readonly client: ClientSim;
  private readonly scheduler: Scheduler;
  private readonly failurePlans = new Map<string, FailureKind>();
  private readonly retrying = new Set<string>();

  constructor(options: SimulationOptions) {
    this.clock = new NanoClock(options.now);
    this.ticker = new Ticker(options.stepMs);
    this.region = options.region;
    this.store = new StateStore(this.clock, (batch) => this.broker.publish(batch));
    this.scheduler = new Scheduler(this);
    this.client = new ClientSim(this);
    this.deployments = new DeploymentWatcher(this);
    this.jobs = new JobService(this);
    this.nodeService = new NodeService(this);
    options.nodes.forEach((spec, i) =>
      this.registerNode(createNode(spec, i, options.datacenter, this.clock.nowNs())),
    );
  }

  private registerNode(node: Node): void {
    this.store.write("NodeRegistration", (tx) => tx.upsertNode(node));
  }

  failureFor(_namespace: string, jobId: string, group: string): FailureKind | undefined {
    return this.failurePlans.get(`${jobId}/${group}`);
  }

  enqueue(evalId: string): void {
    this.ticker.after(1, () => this.scheduler.process(evalId));
  }

  placed(allocIds: readonly string[]): void {
    for (const id of allocIds) this.client.start(id);
  }

  updatedInPlace(allocIds: readonly string[]): void {
    for (const id of allocIds) this.client.recheckHealth(id);
  }

  stopped(allocIds: readonly string[]): void {
    for (const id of allocIds) this.client.kill(id);
  }

  deploymentChanged(deploymentId: string): void {
    this.ticker.after(0, () => this.deployments.changed(deploymentId));
  }

  capacityChanged(): void {
    this.ticker.after(0, () => {
      this.nodeService.progressDrains();
      for (const evaluation of this.store.evals.values()) {
        if (evaluation.Status !== "blocked" || this.retrying.has(evaluation.ID)) continue;
        this.retrying.add(evaluation.ID);
        this.ticker.after(1, () => {
          this.retrying.delete(evaluation.ID);
          this.scheduler.process(evaluation.ID);
        });
      }
    });
  }

  // Simulation controls (the sandbox's `sim:` lines).

  failNextPlacement(jobId: string, group: string, kind: FailureKind): void {
    this.failurePlans.set(`${jobId}/${group}`, kind);
  }

  clearFailures(jobId?: string): void {
    for (const key of [...this.failurePlans.keys()]) {
      if (jobId === undefined || key.startsWith(`${jobId}/`)) this.failurePlans.delete(key);
    }
  }

  /** A running allocation by ID prefix, or the first running one of a job. */
  runningAlloc(prefixOrJob: string): Allocation {
    const running = [...this.store.allocs.values()]
      .filter((a) => isLive(a) && a.ClientStatus === "running")
      .sort((a, b) => (a.Name < b.Name ? -1 : a.Name > b.Name ? 1 : a.CreateIndex - b.CreateIndex));
    const byJob = running.find((a) => a.JobID === prefixOrJob);
    if (byJob !== undefined) return byJob;
    const byId = running.filter((a) => a.ID.startsWith(prefixOrJob));
    if (byId.length === 1 && byId[0] !== undefined) return byId[0];
    const problem = byId.length === 0 ? "no running allocation or job" : "ambiguous allocation prefix";
    throw new Error(`nomad double: ${problem} "${prefixOrJob}"`);
  }

  nodeByName(name: string): Node {
    const node = [...this.store.nodes.values()].find((n) => n.Name === name || n.ID === name);
    if (node === undefined) throw new Error(`nomad double: no node named "${name}"`);
    return node;
  }

  close(): void {
    this.ticker.close();
    this.nodeService.close();
  }
}
