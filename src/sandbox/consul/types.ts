import type { TokenPolicy } from "./acl.js";
import type { CheckStatus } from "./catalog.js";

export type { CheckStatus, TokenPolicy };

export interface ConsulDoubleOptions {
  host?: string;
  port?: number;
  /** ACL tokens accepted (X-Consul-Token header or ?token=); none = ACLs off */
  tokens?: Record<
    string,
    { policy: "read" | "write"; prefixes?: string[] /* KV prefixes it may touch; default all */ }
  >;
  datacenter?: string /* "dc1" */;
  now?: () => number;
  /** session TTL/lock-delay time scale for tests: multiply durations by this (default 1) */
  timeScale?: number;
}

export interface ServiceRegistration {
  node: string;
  /** The node's address when this registration creates the node (default 127.0.0.1). */
  address?: string;
  service: string;
  id?: string;
  port?: number;
  tags?: string[];
  checks?: Array<{ checkId: string; name: string; status: CheckStatus; output?: string }>;
  /** The service's own address ("" = the node's, the default). */
  serviceAddress?: string;
  meta?: Record<string, string>;
  taggedAddresses?: Record<string, { address: string; port: number }>;
  weights?: { passing: number; warning: number };
}

export interface ConsulDouble {
  readonly url: string;
  // direct controls for tests and the sandbox (`sim:` lines)
  registerService(svc: ServiceRegistration): void;
  /** `node` is needed only when several nodes have a check with this ID (every node has serfHealth). */
  setCheck(checkId: string, status: CheckStatus, output?: string, node?: string): void;
  /** `node` is needed only when several nodes have a service with this ID. */
  deregisterService(serviceId: string, node?: string): void;
  /** raw value (decoded) for assertions */
  kv(key: string): string | undefined;
  /** bypasses the API (ModifyIndex still advances); keeps the entry's Flags unless given */
  putKv(key: string, value: string, opts?: { flags?: bigint }): void;
  /** when true, every request fails (connection reset) — "Consul unreachable" */
  unavailable(down: boolean): void;
  close(): Promise<void>;
}
