import { code, escapeMarkdown, message, type Message } from "../chat/message.js";
import { formatDuration } from "../config/duration.js";
import type { Incident, Member } from "./incident.js";
import type { Silence } from "./silences.js";
import { describeMatchers } from "./silences.js";
import type { Severity } from "./signal.js";

const BADGE: Record<Severity, string> = {
  critical: "🔴 **CRITICAL**",
  warning: "🟠 **WARNING**",
  info: "🔵 **INFO**",
};

export const ACK = "👀";
export const SILENCE = "🔕";

export function clockTime(ms: number): string {
  return new Date(ms).toISOString().slice(11, 16) + " UTC";
}

function shortId(id: string): string {
  return id.length > 8 ? id.slice(0, 8) : id;
}

function memberLabel(m: Member): string {
  const s = m.subject;
  if (s.alloc) return `allocation ${code(shortId(s.alloc))}${s.job ? ` (${s.job} › ${s.group ?? "?"})` : ""}`;
  if (s.check) return `check ${code(s.check)}${s.service ? ` (${s.service})` : ""}`;
  if (s.keeper) return `keeper ${code(s.keeper)}`;
  if (s.node) return `node ${code(s.node)}`;
  if (s.job) return `job ${code(s.job)}`;
  return code(s.backend ?? s.cluster ?? "?");
}

/** The incident's message, as it stands: posted once and edited in place as it evolves. */
export function renderIncident(incident: Incident, now: number, silence?: Silence): Message {
  const lines: string[] = [];
  const members = Object.values(incident.members);
  if (incident.state === "resolved") {
    const lasted = formatDuration((incident.resolvedAt ?? now) - incident.firingSince);
    lines.push(
      `✅ **RESOLVED** · ${escapeMarkdown(incident.title)} — lasted ${lasted} (${clockTime(incident.firingSince)}–${clockTime(incident.resolvedAt ?? now)})`,
    );
  } else {
    lines.push(
      `${BADGE[incident.severity]} · ${escapeMarkdown(incident.title)} — firing since ${clockTime(incident.firingSince)}` +
        (incident.reopened ? ` (reopened ${incident.reopened}×)` : ""),
    );
  }
  lines.push(escapeMarkdown(incident.latestReason));

  const firing = members.filter((m) => m.effective === "firing");
  const absorbed = members.filter((m) => !m.primary);
  if (members.length > 1 || incident.overflow > 0) {
    const total = members.length + incident.overflow;
    const byKind = new Map<string, number>();
    for (const m of members) byKind.set(m.kind, (byKind.get(m.kind) ?? 0) + 1);
    const kinds = [...byKind].map(([kind, n]) => `${n} ${kind}`).join(", ");
    lines.push(
      `Affected: ${total} (${kinds}${incident.overflow ? `, ${incident.overflow} more not itemized` : ""})` +
        (incident.state === "firing" ? ` · ${firing.length} still failing` : ""),
    );
    // One line per thing: an allocation that failed several ways is one of the affected.
    const listed = [...new Set((absorbed.length ? absorbed : members).map(memberLabel))].slice(-5);
    lines.push(`Latest: ${listed.join(", ")}`);
  }
  if (incident.events > 1) lines.push(`${incident.events} events.`);

  if (incident.state === "firing") {
    const state: string[] = [];
    if (incident.ack)
      state.push(`${ACK} acknowledged by ${incident.ack.by} at ${clockTime(incident.ack.at)}`);
    if (silence)
      state.push(
        `${SILENCE} silenced by ${silence.author} until ${clockTime(silence.endsAt)} (${describeMatchers(silence.matchers)})`,
      );
    if (state.length) lines.push(state.join(" · "));
    const offers = [`${ACK} acknowledge`, `${SILENCE} silence`];
    if (incident.action) offers.push(`${incident.action.emoji} ${incident.action.label}`);
    lines.push(`_${offers.join(" · ")} — incident ${code(incident.id)}_`);
  } else {
    lines.push(`_incident ${code(incident.id)}_`);
  }
  return message(lines.join("  \n"));
}

/** One line per incident, for `!incidents` and the digest. */
export function incidentLine(incident: Incident, now: number): string {
  const since =
    incident.state === "firing"
      ? `for ${formatDuration(now - incident.firingSince)}`
      : `lasted ${formatDuration((incident.resolvedAt ?? now) - incident.firingSince)}`;
  const flags = [incident.ack ? ACK : "", incident.silencedBy ? SILENCE : ""].filter(Boolean).join("");
  return `${code(incident.id)} ${incident.severity} · ${escapeMarkdown(incident.title)} — ${since}${flags ? ` ${flags}` : ""}`;
}
