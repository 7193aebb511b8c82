import type { NanoClock } from "./clock.js";
import type { LogStore } from "./logs.js";
import type { StateStore } from "./store.js";
import type { Ticker } from "./ticker.js";
import type { FailureKind } from "./types.js";

/** What the simulation's parts (scheduler, clients, deployment watcher, drainer) share. */
export interface Cluster {
  readonly store: StateStore;
  readonly ticker: Ticker;
  readonly clock: NanoClock;
  readonly logs: LogStore;
  readonly region: string;
  /** The failure the next allocations of a job's group are set up to have, if any. */
  failureFor(namespace: string, jobId: string, group: string): FailureKind | undefined;
  /** The scheduler picks an evaluation up one step later. */
  enqueue(evalId: string): void;
  /** The plan placed allocations: their clients start them. */
  placed(allocIds: readonly string[]): void;
  /** The plan moved allocations to a new job version in place: their clients report health again. */
  updatedInPlace(allocIds: readonly string[]): void;
  /** The plan stopped allocations: their clients kill them. */
  stopped(allocIds: readonly string[]): void;
  /** Allocations of a deployment changed: the watcher looks at it. */
  deploymentChanged(deploymentId: string): void;
  /** Resources may have freed or nodes changed: blocked evaluations retry, drains progress. */
  capacityChanged(): void;
}

/** Steps (of stepMs) the simulation gives to durations that would be minutes in a real cluster. */
export const STEPS = {
  /** healthy_deadline: an allocation that never passes its checks is marked unhealthy. */
  healthyDeadline: 6,
  /** progress_deadline: a deployment with no new healthy allocation fails. */
  progressDeadline: 20,
} as const;
