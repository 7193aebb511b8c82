import type { Severity, SignalKind, Subject } from "./signal.js";
import type { SuggestedAction } from "./rules.js";

/** One affected thing inside an incident, with what was observed and what people were told. */
export interface Member {
  kind: SignalKind;
  subject: Subject;
  /** The latest observation. */
  observed: "firing" | "resolved";
  observedAt: number;
  /** What counts for the incident: the observation once it has held for the rule's hold time. */
  effective: "firing" | "resolved";
  reason: string;
  events: number;
  /** False for signals absorbed from elsewhere (an allocation inside its node's incident). */
  primary: boolean;
}

export type IncidentState = "firing" | "resolved";

export interface Incident {
  id: string;
  key: string;
  roomId: string;
  title: string;
  severity: Severity;
  state: IncidentState;
  openedAt: number;
  /** When the current firing period started (reopening starts a new one). */
  firingSince: number;
  resolvedAt?: number;
  /** Members in detail; beyond the bound only counted, so the stored value stays small. */
  members: Record<string, Member>;
  overflow: number;
  events: number;
  latestReason: string;
  action?: SuggestedAction;
  /** The room message (outbox reference) once posted, and when. */
  messageId?: string;
  postedAt?: number;
  remindedAt?: number;
  reopened: number;
  ack?: { by: string; at: number };
  /** The silence muting it, when one does. */
  silencedBy?: string;
  /** Digests of the recently seen signal IDs, so a replayed event is not counted twice. */
  recentIds: string[];
}

export const MAX_MEMBERS = 50;
export const RECENT_IDS_KEPT = 32;

/** Firing while any of its own members is firing; the absorbed ones only add detail. */
export function stateFromMembers(incident: Incident): IncidentState {
  for (const id in incident.members) {
    const member = incident.members[id]!;
    if (member.primary && member.effective === "firing") return "firing";
  }
  return "resolved";
}
