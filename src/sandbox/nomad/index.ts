import { closeServer, listenOn } from "../listen.js";
import { createServer, type Server } from "node:http";
import { canonicalizeJob } from "./canonical.js";
import { copy } from "./json.js";
import { parseJobHcl } from "./parse.js";
import { createListener, GET, type Route } from "./http.js";
import { defaultNodes } from "./nodes.js";
import { allocRoutes } from "./routes-allocs.js";
import { deploymentRoutes } from "./routes-deployments.js";
import { eventRoutes, type StreamControl, type StreamFault, type StreamRegistry } from "./routes-events.js";
import { jobRoutes } from "./routes-jobs.js";
import { nodeRoutes } from "./routes-nodes.js";
import { Simulation } from "./sim.js";
import type { FailureKind, SimNodeSpec } from "./types.js";

export type { FailureKind, SimNodeSpec } from "./types.js";
export type { StreamFault } from "./routes-events.js";
export { ENFORCE_INDEX_PREFIX } from "./jobs.js";

export interface NomadDoubleOptions {
  /** Default 127.0.0.1. */
  host?: string;
  /** 0 (the default) picks a free port. */
  port?: number;
  /** ACL token required in X-Nomad-Token; none = no ACLs. */
  token?: string;
  /** Default "global". */
  region?: string;
  /** Default "dc1". */
  datacenter?: string;
  /** Default: node-1..node-3, 4000 MHz / 8192 MB each. */
  nodes?: SimNodeSpec[];
  /** Real milliseconds the simulation takes per step (place, start, health-check...); 0 = as fast as possible. */
  stepMs?: number;
  /** Milliseconds since the epoch, for every timestamp the double writes. Default Date.now. */
  now?: () => number;
  /** Interval of the event stream's `{}` heartbeat. Default 30 000 (Nomad's). */
  heartbeatMs?: number;
  /** Raft entries the event stream can replay. Default 100 (about Nomad's). */
  eventBufferSize?: number;
}

export interface NomadDouble {
  readonly url: string;
  /** The next allocations of that group fail that way (until cleared). */
  failNextPlacement(job: string, group: string, kind: FailureKind): void;
  clearFailures(job?: string): void;
  /** A running allocation's main task is OOM-killed (Terminated, oom_killed), then restarts by policy. */
  oomKill(allocIdPrefixOrJob: string): void;
  /** A running allocation's main task exits with `exitCode` until its restart policy gives up. */
  failAllocation(allocIdPrefixOrJob: string, exitCode?: number): void;
  /** The main task exits `times` times, each time restarted as its restart policy allows, then runs on. */
  restartLoop(allocIdPrefixOrJob: string, times: number, exitCode?: number): void;
  /**
   * A new version of the job is registered from outside (as an operator running `nomad job run`), with
   * images the simulated registry does not have: its deployment fails. Returns the new version.
   */
  failDeployment(job: string): number;
  /** Node status down: its allocations are lost and rescheduled elsewhere. */
  nodeDown(nodeName: string): void;
  nodeUp(nodeName: string): void;
  /** A drain from outside (no deadline: the drainer moves allocations by each group's migrate stanza). */
  drainNode(nodeName: string): void;
  /** Cancels a drain; the node stays ineligible until `setEligibility(name, true)`. */
  cancelDrain(nodeName: string): void;
  setEligibility(nodeName: string, eligible: boolean): void;
  /**
   * A storm: a job (`storm-<node>`) of `count` small allocations pinned to the node is placed, and once
   * they run the node goes down. Resolves when the node is down.
   */
  burst(nodeName: string, count: number): Promise<void>;
  /** Ends every open event stream (as a restarting server or proxy would). */
  cutEventStreams(): void;
  /** Makes the event stream misbehave until set back to "none" (see StreamFault). */
  setEventStreamFault(fault: StreamFault): void;
  /** Event stream requests accepted so far (tests count reconnections). */
  eventStreamsOpened(): number;
  /** Resolves when the simulation has nothing pending. */
  settle(): Promise<void>;
  /** Job IDs known (every namespace). */
  jobs(): string[];
  close(): Promise<void>;
}

export async function startNomadDouble(opts: NomadDoubleOptions = {}): Promise<NomadDouble> {
  const double = new NomadDoubleServer(opts);
  await double.listen(opts.host ?? "127.0.0.1", opts.port ?? 0);
  return double;
}

class NomadDoubleServer implements NomadDouble {
  private readonly sim: Simulation;
  private readonly server: Server;
  private readonly streams: StreamRegistry = new Set();
  private readonly streamControl: StreamControl = { fault: "none", opened: 0 };
  private baseUrl = "";

  constructor(opts: NomadDoubleOptions) {
    const region = opts.region ?? "global";
    this.sim = new Simulation({
      region,
      datacenter: opts.datacenter ?? "dc1",
      nodes: opts.nodes ?? defaultNodes(),
      stepMs: opts.stepMs ?? 0,
      now: opts.now ?? Date.now,
    });
    if (opts.eventBufferSize !== undefined) this.sim.broker.setCapacity(opts.eventBufferSize);
    const routes: Route[] = [
      ...jobRoutes(this.sim),
      ...allocRoutes(this.sim),
      ...deploymentRoutes(this.sim),
      ...nodeRoutes(this.sim),
      ...eventRoutes(
        this.sim,
        { token: opts.token, heartbeatMs: opts.heartbeatMs ?? 30_000, control: this.streamControl },
        this.streams,
      ),
      { methods: GET, path: "/v1/status/leader", handler: () => ({ body: "127.0.0.1:4647" }) },
      { methods: GET, path: "/v1/regions", handler: () => ({ body: [region] }) },
    ];
    this.server = createServer(createListener({ routes, token: opts.token, region }));
  }

  get url(): string {
    return this.baseUrl;
  }

  async listen(host: string, port: number): Promise<void> {
    this.baseUrl = await listenOn(this.server, host, port);
  }

  failNextPlacement(job: string, group: string, kind: FailureKind): void {
    this.sim.failNextPlacement(job, group, kind);
  }

  clearFailures(job?: string): void {
    this.sim.clearFailures(job);
  }

  oomKill(allocIdPrefixOrJob: string): void {
    this.sim.client.oomKill(this.sim.runningAlloc(allocIdPrefixOrJob).ID);
  }

  failAllocation(allocIdPrefixOrJob: string, exitCode = 1): void {
    this.sim.client.failAllocation(this.sim.runningAlloc(allocIdPrefixOrJob).ID, exitCode);
  }

  restartLoop(allocIdPrefixOrJob: string, times: number, exitCode = 1): void {
    this.sim.client.crashTimes(this.sim.runningAlloc(allocIdPrefixOrJob).ID, times, exitCode);
  }

  failDeployment(jobId: string): number {
    const current = [...this.sim.store.jobs.values()].find((j) => j.ID === jobId && !j.Stop);
    if (current === undefined) throw new Error(`nomad double: no running job "${jobId}"`);
    const job = copy(current);
    for (const task of (job.TaskGroups ?? []).flatMap((g) => g.Tasks)) {
      const image = typeof task.Config.image === "string" ? task.Config.image : task.Name;
      // The simulated registry has no image whose name says it does not exist (see ClientSim).
      task.Config.image = image.includes("does-not-exist") ? image : `${image}-does-not-exist`;
    }
    this.sim.jobs.register(job, {
      enforceIndex: false,
      jobModifyIndex: 0,
      submission: undefined,
      preserveCounts: true,
    });
    return current.Version + 1;
  }

  nodeDown(nodeName: string): void {
    this.sim.nodeService.setStatus(this.sim.nodeByName(nodeName), "down");
  }

  drainNode(nodeName: string): void {
    this.sim.nodeService.drain(this.sim.nodeByName(nodeName), {
      deadlineNs: 0,
      ignoreSystemJobs: false,
      markEligible: false,
      meta: null,
    });
  }

  cancelDrain(nodeName: string): void {
    this.sim.nodeService.drain(this.sim.nodeByName(nodeName), undefined);
  }

  setEligibility(nodeName: string, eligible: boolean): void {
    this.sim.nodeService.setEligibility(this.sim.nodeByName(nodeName), eligible ? "eligible" : "ineligible");
  }

  async burst(nodeName: string, count: number): Promise<void> {
    const node = this.sim.nodeByName(nodeName);
    const parsed = await parseJobHcl(stormJob(`storm-${node.Name}`, node.Name, count), undefined);
    const job = canonicalizeJob(parsed);
    this.sim.jobs.register(
      { ...job, Namespace: job.Namespace || "default", Region: this.sim.region },
      { enforceIndex: false, jobModifyIndex: 0, submission: undefined, preserveCounts: false },
    );
    await this.settle();
    this.nodeDown(node.Name);
  }

  nodeUp(nodeName: string): void {
    this.sim.nodeService.setStatus(this.sim.nodeByName(nodeName), "ready");
  }

  cutEventStreams(): void {
    for (const end of [...this.streams]) end();
  }

  setEventStreamFault(fault: StreamFault): void {
    this.streamControl.fault = fault;
  }

  eventStreamsOpened(): number {
    return this.streamControl.opened;
  }

  settle(): Promise<void> {
    return this.sim.ticker.idle();
  }

  jobs(): string[] {
    return [...this.sim.store.jobs.values()].map((j) => j.ID).sort();
  }

  async close(): Promise<void> {
    this.sim.close();
    for (const end of [...this.streams]) end();
    await closeServer(this.server);
  }
}

/** Allocations small enough for hundreds on one node, all pinned to it. */
const stormJob = (id: string, node: string, count: number) => `job "${id}" {
  datacenters = ["*"]
  type        = "service"
  constraint {
    attribute = "\${node.unique.name}"
    value     = "${node}"
  }
  group "app" {
    count = ${count}
    task "app" {
      driver = "docker"
      config {
        image = "example/storm:1"
      }
      resources {
        cpu    = 1
        memory = 1
      }
    }
  }
}
`;
