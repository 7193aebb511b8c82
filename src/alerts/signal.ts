/**
 * What an alert source tells the incident engine: one observation that something went wrong
 * ("firing") or recovered ("resolved"). Sources (Nomad's event stream, Consul health, Stolon's
 * cluster data, majordome's own reachability checks) translate their raw data into signals; rules
 * give them a severity, and the engine groups them into incidents.
 */
export const SIGNAL_KINDS = [
  "alloc-failed",
  "alloc-lost",
  "alloc-oom",
  "alloc-restart-loop",
  "alloc-not-restarting",
  "deployment-failed",
  "job-dead",
  "node-down",
  "node-draining",
  "node-ineligible",
  "check-critical",
  "stolon-master-changed",
  "keeper-gone",
  "backend-unreachable",
] as const;
export type SignalKind = (typeof SIGNAL_KINDS)[number];

export type Severity = "critical" | "warning" | "info";

/** What the signal is about. Only the fields that apply are set. */
export interface Subject {
  job?: string;
  group?: string;
  /** Allocation ID (full). */
  alloc?: string;
  /** Node name (what people know the node by); nodeId when known. */
  node?: string;
  nodeId?: string;
  /** The deployment an allocation belongs to. */
  deployment?: string;
  /** Consul check ID and the service it checks. */
  check?: string;
  service?: string;
  /** Stolon cluster name and keeper UID. */
  cluster?: string;
  keeper?: string;
  /** For backend-unreachable: which dependency ("nomad", "consul", "directory"). */
  backend?: string;
}

export interface Signal {
  kind: SignalKind;
  status: "firing" | "resolved";
  subject: Subject;
  /** What happened, in words for the room ("exit code 137 (OOM killed)", "node stopped heartbeating"). */
  reason: string;
  /** When it was observed (the clock's milliseconds). */
  at: number;
  /**
   * A stable identity of the underlying observation, when the source has one (e.g. the Nomad
   * event's index, topic, key and type): the engine drops a signal whose id it has already seen.
   */
  id?: string;
}

/** Where sources send signals. Resolves once the signal is durably taken into account. */
export type SignalSink = (signal: Signal) => Promise<void>;
