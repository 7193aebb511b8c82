import type { Clock } from "../../clock.js";
import { StolonBackend } from "./backend.js";
import { RawConsulKv, type RawConsulKvOptions, type StolonKv } from "./kv.js";

export { StolonBackend, StolonRefusal, type MasterChange, type MasterRef } from "./backend.js";
export type { ClusterStatus, DatabaseState, Preflight, StandbyState } from "./analysis.js";
export { RawConsulKv, ConsulKvError, type StolonKv, type KvEntry } from "./kv.js";

/** Cluster names become Consul key segments: nothing that could climb out of the prefix. */
export const STOLON_CLUSTER_NAME = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$/;

/** What the `!db cluster` and `!db failover` commands need. */
export interface StolonServices {
  backend: StolonBackend;
  /** Consul's KV as the backend reads it (the alert source watches the same keys). */
  kv: StolonKv;
  prefix: string;
  /** The clusters majordome may act on (a `--cluster` outside this list is refused). */
  clusters: string[];
  defaultCluster: string;
  /** How long a failover is followed before reporting a timeout. */
  failoverTimeoutMs: number;
}

export interface StolonSettings {
  prefix: string;
  clusters: string[];
  default_cluster?: string | undefined;
  rewrite_window: number;
  failover_timeout: number;
}

/** Builds the Stolon services from the config's `consul` and `stolon` sections. */
export function stolonServices(
  consul: Omit<RawConsulKvOptions, "timeoutMs" | "clock">,
  stolon: StolonSettings,
  clock: Clock,
  requestTimeoutMs: number,
): StolonServices {
  const kv = new RawConsulKv({ ...consul, timeoutMs: requestTimeoutMs, clock });
  return {
    backend: new StolonBackend({ kv, prefix: stolon.prefix, clock, rewriteWindowMs: stolon.rewrite_window }),
    kv,
    prefix: stolon.prefix,
    clusters: stolon.clusters,
    defaultCluster: stolon.default_cluster ?? stolon.clusters[0]!,
    failoverTimeoutMs: stolon.failover_timeout,
  };
}
