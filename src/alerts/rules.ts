import type { Severity, Signal, SignalKind, Subject } from "./signal.js";

/** How one kind of signal is handled. Severities and holds come from config; the rest is fixed. */
export interface Rule {
  enabled: boolean;
  severity: Severity;
  /** Flap damping: a change must hold this long before anyone is told (0: at once). */
  holdMs: number;
}

export type RuleSet = Record<SignalKind, Rule>;

/** Shipped defaults: what pages (critical) is what needs someone now. */
export const DEFAULT_RULES: RuleSet = {
  "alloc-failed": { enabled: true, severity: "warning", holdMs: 0 },
  "alloc-lost": { enabled: true, severity: "warning", holdMs: 0 },
  "alloc-oom": { enabled: true, severity: "warning", holdMs: 0 },
  "alloc-restart-loop": { enabled: true, severity: "warning", holdMs: 0 },
  "alloc-not-restarting": { enabled: true, severity: "critical", holdMs: 0 },
  "deployment-failed": { enabled: true, severity: "warning", holdMs: 0 },
  "job-dead": { enabled: true, severity: "critical", holdMs: 0 },
  "node-down": { enabled: true, severity: "critical", holdMs: 0 },
  "node-draining": { enabled: true, severity: "info", holdMs: 0 },
  "node-ineligible": { enabled: true, severity: "info", holdMs: 0 },
  "check-critical": { enabled: true, severity: "critical", holdMs: 60_000 },
  // Critical so it goes out at once: the new master is healthy within seconds, and a warning resolved
  // within the group wait is never announced, yet everyone must hear that the database moved.
  "stolon-master-changed": { enabled: true, severity: "critical", holdMs: 0 },
  "keeper-gone": { enabled: true, severity: "critical", holdMs: 0 },
  "backend-unreachable": { enabled: true, severity: "critical", holdMs: 0 },
};

/** The shipped rules with the config's overrides. */
export function rulesFrom(
  overrides: Partial<Record<SignalKind, { enabled?: boolean; severity?: Severity; hold?: number }>>,
): RuleSet {
  const rules = structuredClone(DEFAULT_RULES);
  for (const [kind, o] of Object.entries(overrides) as Array<
    [SignalKind, NonNullable<(typeof overrides)[SignalKind]>]
  >) {
    if (o.enabled !== undefined) rules[kind].enabled = o.enabled;
    if (o.severity !== undefined) rules[kind].severity = o.severity;
    if (o.hold !== undefined) rules[kind].holdMs = o.hold;
  }
  return rules;
}

const SEVERITY_RANK: Record<Severity, number> = { info: 0, warning: 1, critical: 2 };

export function worst(a: Severity, b: Severity): Severity {
  return SEVERITY_RANK[a] >= SEVERITY_RANK[b] ? a : b;
}

/**
 * The thing a signal is about, at the granularity people think in: events about the same job and
 * group, the same node, the same check… make one incident.
 */
export function groupKey(signal: Pick<Signal, "kind" | "subject">): string {
  const s = signal.subject;
  switch (signal.kind) {
    case "alloc-failed":
    case "alloc-lost":
    case "alloc-oom":
    case "alloc-restart-loop":
    case "alloc-not-restarting":
      return `group:${s.job ?? "?"}/${s.group ?? "?"}`;
    case "deployment-failed":
      return `deployment:${s.job ?? s.deployment ?? "?"}`;
    case "job-dead":
      return `job:${s.job ?? "?"}`;
    case "node-down":
    case "node-draining":
    case "node-ineligible":
      return `node:${s.node ?? s.nodeId ?? "?"}:${signal.kind}`;
    case "check-critical":
      return `check:${s.node ?? "?"}/${s.check ?? "?"}`;
    case "stolon-master-changed":
      return `stolon:${s.cluster ?? "?"}`;
    case "keeper-gone":
      return `keeper:${s.cluster ?? "?"}/${s.keeper ?? "?"}`;
    case "backend-unreachable":
      return `backend:${s.backend ?? "?"}`;
  }
}

/** One affected thing inside an incident (an allocation, a check, the node itself). */
export function memberKey(signal: Pick<Signal, "kind" | "subject">): string {
  const s = signal.subject;
  const thing = s.alloc ?? s.check ?? s.keeper ?? s.deployment ?? s.node ?? s.job ?? s.backend ?? s.cluster;
  return `${signal.kind}:${thing ?? "?"}`;
}

/** Signals that a node-down incident on their node absorbs (they appear inside it instead of paging). */
export function inhibitedByNodeDown(kind: SignalKind): boolean {
  return kind.startsWith("alloc-") || kind === "check-critical";
}

export function isAllocationKind(kind: SignalKind): boolean {
  return kind.startsWith("alloc-");
}

/** A title for the incident a signal opens, in words. */
export function titleOf(signal: Pick<Signal, "kind" | "subject">): string {
  const s = signal.subject;
  const jobGroup = `${s.job ?? "?"} › ${s.group ?? "?"}`;
  switch (signal.kind) {
    case "alloc-failed":
    case "alloc-lost":
    case "alloc-oom":
    case "alloc-restart-loop":
    case "alloc-not-restarting":
      return `allocations of ${jobGroup} failing`;
    case "deployment-failed":
      return `deployment of ${s.job ?? "?"} failed`;
    case "job-dead":
      return `job ${s.job ?? "?"} is dead`;
    case "node-down":
      return `node ${s.node ?? s.nodeId ?? "?"} is down`;
    case "node-draining":
      return `node ${s.node ?? s.nodeId ?? "?"} is draining`;
    case "node-ineligible":
      return `node ${s.node ?? s.nodeId ?? "?"} is ineligible for placements`;
    case "check-critical":
      return `check ${s.check ?? "?"}${s.service ? ` (${s.service})` : ""} on ${s.node ?? "?"} is critical`;
    case "stolon-master-changed":
      return `PostgreSQL master changed in ${s.cluster ?? "?"}`;
    case "keeper-gone":
      return `Stolon keeper ${s.keeper ?? "?"} of ${s.cluster ?? "?"} is gone`;
    case "backend-unreachable":
      return `majordome cannot reach ${s.backend ?? "?"}`;
  }
}

/** A command an incident offers by reaction; it goes through the same authorization as typed. */
export interface SuggestedAction {
  emoji: string;
  label: string;
  /** The command line, without the prefix. */
  line: string;
}

export function suggestedAction(kind: SignalKind, subject: Subject): SuggestedAction | undefined {
  if (isAllocationKind(kind) && subject.job && subject.group)
    return { emoji: "🔁", label: "restart the group", line: `restart ${subject.job} ${subject.group}` };
  if (kind === "node-down" && subject.node)
    return { emoji: "🚰", label: "drain the node", line: `drain ${subject.node}` };
  if (kind === "keeper-gone" && subject.cluster)
    return { emoji: "🔀", label: "fail over the database", line: `db failover --cluster ${subject.cluster}` };
  return undefined;
}
