import type { AlertEngine } from "../src/alerts/engine.js";
import { incidentLine, clockTime } from "../src/alerts/render.js";
import { describeMatchers, MATCHER_FIELDS, parseMatchers } from "../src/alerts/silences.js";
import { code, message } from "../src/chat/message.js";
import { formatDuration } from "../src/config/duration.js";
import type { CommandContext } from "../src/commands/context.js";
import { defineCommand, type CommandSpec } from "../src/commands/declare.js";
import { durationArg, name, text, type ArgType } from "../src/commands/types.js";

const INCIDENT_ID = /^i\d{1,9}$/;

/** `job=web,group=app`, or an incident ID (`i12`) as a shorthand for `incident=i12`. */
const matcher: ArgType<Record<string, string>> = {
  label: "matcher",
  parse(raw) {
    if (INCIDENT_ID.test(raw)) return { ok: true, value: { incident: raw } };
    try {
      return { ok: true, value: parseMatchers(raw) };
    } catch (error) {
      return {
        ok: false,
        expected: `an incident ID (i12) or field=value pairs joined by commas, with fields ${MATCHER_FIELDS.join(", ")} (${(error as Error).message})`,
      };
    }
  },
};

const silenceId = name("silence", /^s\d{1,9}$/, "a silence ID such as s3 (see !silences)");

function alertsOf(ctx: CommandContext): AlertEngine {
  const alerts = ctx.services.alerts;
  if (!alerts) throw new Error("alerts are not configured (config: alerts, matrix.alert_room)");
  return alerts;
}

const incidents = defineCommand<{ all?: boolean }>({
  name: "incidents",
  summary: "Open incidents, worst first (--all: with those resolved recently)",
  flags: { all: { summary: "also list incidents resolved recently" } },
  async run(ctx, { all }) {
    const alerts = alertsOf(ctx);
    const now = ctx.services.clock.now();
    const open = alerts.openIncidents();
    const lines = [open.length ? `**${open.length} open incidents**` : "No open incidents. 🌿"];
    lines.push(...open.map((i) => `- ${incidentLine(i, now)}`));
    if (all) {
      const resolved = alerts.recentlyResolved();
      if (resolved.length)
        lines.push("", "**Resolved recently**", ...resolved.map((i) => `- ${incidentLine(i, now)}`));
    }
    return message(lines.join("\n"));
  },
});

const silence = defineCommand<{ matcher: Record<string, string>; duration: number; reason?: string[] }>({
  name: "silence",
  summary: "Mute the incidents a matcher selects for a while (every silence ends and has an author)",
  args: [
    { name: "matcher", type: matcher },
    { name: "duration", type: durationArg("duration", 30 * 24 * 3600_000) },
    { name: "reason", type: text, optional: true, rest: true },
  ],
  async run(ctx, args) {
    const created = await alertsOf(ctx).silence(
      args.matcher,
      args.duration,
      ctx.identity.sender,
      args.reason?.join(" ") ?? "",
    );
    return message(
      `🔕 Silence ${code(created.id)}: ${code(describeMatchers(created.matchers))} until ${clockTime(created.endsAt)} ` +
        `(${formatDuration(args.duration)})${created.reason ? ` — ${created.reason}` : ""}. ${code(`${ctx.prefix}unsilence ${created.id}`)} ends it.`,
    );
  },
});

const silencesList = defineCommand({
  name: "silences",
  summary: "Active silences: what they match, who set them, until when",
  async run(ctx) {
    const active = alertsOf(ctx).activeSilences();
    if (active.length === 0) return message("No active silences.");
    return message(
      active
        .map(
          (s) =>
            `- ${code(s.id)} ${code(describeMatchers(s.matchers))} by ${s.author} until ${clockTime(s.endsAt)}` +
            (s.reason ? ` — ${s.reason}` : ""),
        )
        .join("\n"),
    );
  },
});

const unsilence = defineCommand<{ id: string }>({
  name: "unsilence",
  summary: "End a silence now",
  args: [{ name: "id", type: silenceId }],
  async run(ctx, { id }) {
    const ended = await alertsOf(ctx).unsilence(id);
    return message(
      ended
        ? `🔔 Silence ${code(id)} (${code(describeMatchers(ended.matchers))}) ended by ${ctx.identity.sender}.`
        : `No active silence ${code(id)}; ${code(`${ctx.prefix}silences`)} lists them.`,
    );
  },
});

export const alertCommands: CommandSpec[] = [incidents, silence, silencesList, unsilence];
