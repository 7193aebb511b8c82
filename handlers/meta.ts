import { code, message, table } from "../src/chat/message.js";
import { formatDuration } from "../src/config/duration.js";
import type { CommandContext } from "../src/commands/context.js";
import { defineCommand, policyKey, usage, type CommandSpec } from "../src/commands/declare.js";
import { text } from "../src/commands/types.js";

/** What the asker may do with a command: run it, ask for it, or nothing. */
export function standing(ctx: CommandContext, spec: CommandSpec): "allowed" | "approval" | "denied" {
  const decision = ctx.services.authorizer.decide(ctx.identity, [policyKey(spec)], ctx.roomId);
  return decision.outcome === "allow" ? "allowed" : decision.outcome === "approval" ? "approval" : "denied";
}

const help = defineCommand<{ command?: string[] }>({
  name: "help",
  aliases: ["h", "?"],
  summary: "List the commands you may use, or explain one",
  args: [{ name: "command", type: text, optional: true, rest: true }],
  async run(ctx, { command }) {
    const { router } = ctx.services;
    if (command && command.length > 0) {
      const spec = router.find(command.join(" "));
      if (!spec)
        return message(
          `No command ${code(command.join(" "))}. Say ${code(`${ctx.prefix}help`)} for the list.`,
        );
      return message(describe(spec, ctx.prefix, standing(ctx, spec)));
    }
    const rows = router.commands
      .map((spec) => ({ spec, standing: standing(ctx, spec) }))
      .filter((c) => c.standing !== "denied")
      .map(({ spec, standing }) => [
        code(`${ctx.prefix}${spec.name}`),
        spec.summary + (standing === "approval" ? " 🔐 (needs approval)" : ""),
      ]);
    return message(
      `**Commands you may use**\n\n${table(["command", "what it does"], rows)}\n\n` +
        `${code(`${ctx.prefix}help <command>`)} explains one; ${code(`${ctx.prefix}whoami`)} shows your rights.`,
    );
  },
});

const ping = defineCommand({
  name: "ping",
  summary: "Check that majordome answers, with the round-trip time",
  async run(ctx) {
    const handledAt = ctx.services.clock.now();
    const delivery = Math.max(0, ctx.receivedAt - ctx.sentAt);
    return message(
      `🏓 pong — your message reached me ${formatDuration(delivery)} after you sent it; ` +
        `answered ${formatDuration(Math.max(0, handledAt - ctx.sentAt))} after it was sent.`,
    );
  },
});

const whoami = defineCommand({
  name: "whoami",
  summary: "Show who you are to majordome: Matrix ID, directory entry, groups and rights",
  async run(ctx) {
    const { identity } = ctx;
    const lines = [`**Matrix ID:** ${code(identity.sender)}`];
    if (!identity.user) {
      lines.push(`**Directory:** nobody (${identity.reason ?? "unknown"})`, `**Groups:** none`);
    } else {
      lines.push(
        `**Directory entry:** ${code(identity.user.dn)}`,
        `**Groups:** ${identity.user.groups.length ? identity.user.groups.map((g) => code(g)).join(", ") : "none"}`,
      );
    }
    const families = new Map<string, Record<"allowed" | "approval" | "denied", string[]>>();
    for (const spec of ctx.services.router.commands) {
      const family = spec.name.split(" ")[0]!;
      const entry = families.get(family) ?? { allowed: [], approval: [], denied: [] };
      entry[standing(ctx, spec)].push(spec.name);
      families.set(family, entry);
    }
    const list = (names: string[]) => (names.length ? names.map((n) => code(n)).join(", ") : "—");
    const rows = [...families.entries()].map(([family, s]) => [
      family,
      list(s.allowed),
      list(s.approval),
      list(s.denied),
    ]);
    lines.push("", table(["family", "allowed", "needs approval", "denied"], rows));
    return message(lines.join("\n"));
  },
});

function describe(spec: CommandSpec, prefix: string, standing: string): string {
  const lines = [`**${prefix}${spec.name}** — ${spec.summary}`, "", `Usage: ${code(usage(spec, prefix))}`];
  if (spec.aliases?.length) lines.push(`Aliases: ${spec.aliases.map((a) => code(prefix + a)).join(", ")}`);
  for (const [flag, f] of Object.entries(spec.flags ?? {}))
    lines.push(`- ${code(`--${flag}`)}: ${f.summary}`);
  lines.push(`For you: ${standing === "approval" ? "needs approval" : standing}.`);
  return lines.join("\n");
}

export const metaCommands: CommandSpec[] = [help, ping, whoami];
