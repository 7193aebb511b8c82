import type { Subject } from "./signal.js";

/**
 * A silence mutes the incidents it matches until it ends. Matchers are `field=value` pairs joined
 * by commas (`job=web,group=app`, `node=n2`, `kind=alloc-oom`, `incident=i12`); all must match.
 */
export interface Silence {
  id: string;
  matchers: Record<string, string>;
  author: string;
  reason: string;
  createdAt: number;
  endsAt: number;
}

export const MATCHER_FIELDS = [
  "incident",
  "kind",
  "severity",
  "job",
  "group",
  "node",
  "check",
  "service",
  "cluster",
  "keeper",
  "backend",
] as const;
type MatcherField = (typeof MATCHER_FIELDS)[number];

const VALUE = /^[A-Za-z0-9_.:@/-]{1,128}$/;

/** Parses `job=web,group=app`; throws an Error whose message is meant for the room. */
export function parseMatchers(text: string): Record<string, string> {
  const matchers: Record<string, string> = {};
  for (const part of text.split(",")) {
    const eq = part.indexOf("=");
    if (eq <= 0) throw new Error(`"${part}" is not field=value (fields: ${MATCHER_FIELDS.join(", ")})`);
    const field = part.slice(0, eq).trim();
    const value = part.slice(eq + 1).trim();
    if (!(MATCHER_FIELDS as readonly string[]).includes(field))
      throw new Error(`unknown field "${field}" (fields: ${MATCHER_FIELDS.join(", ")})`);
    if (!VALUE.test(value)) throw new Error(`"${value}" is not a valid value for ${field}`);
    matchers[field] = value;
  }
  return matchers;
}

export function describeMatchers(matchers: Record<string, string>): string {
  return Object.entries(matchers)
    .map(([field, value]) => `${field}=${value}`)
    .join(",");
}

/** What a silence can look at: an incident's identity and the subjects of its members. */
export interface Matchable {
  incident: string;
  severity: string;
  members: Array<{ kind: string; subject: Subject }>;
}

export function silences(silence: Silence, target: Matchable, now: number): boolean {
  if (now >= silence.endsAt) return false;
  const fields = Object.entries(silence.matchers) as Array<[MatcherField, string]>;
  const incidentLevel = (field: MatcherField, value: string) =>
    field === "incident"
      ? target.incident === value
      : field === "severity"
        ? target.severity === value
        : null;
  if (!fields.every(([f, v]) => incidentLevel(f, v) ?? true)) return false;
  const memberFields = fields.filter(([f]) => incidentLevel(f, "") === null);
  if (memberFields.length === 0) return true;
  return target.members.some((member) =>
    memberFields.every(([field, value]) =>
      field === "kind" ? member.kind === value : member.subject[field as keyof Subject] === value,
    ),
  );
}
