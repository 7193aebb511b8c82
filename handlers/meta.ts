import { code, message, table } from "../src/chat/message.js";
import { formatDuration } from "../src/config/duration.js";
import { defineCommand, usage, type CommandSpec } from "../src/commands/declare.js";
import { text } from "../src/commands/types.js";

const help = defineCommand<{ command?: string[] }>({
  name: "help",
  aliases: ["h", "?"],
  summary: "List the commands, or explain one",
  args: [{ name: "command", type: text, optional: true, rest: true }],
  async run(ctx, { command }) {
    const { router } = ctx.services;
    if (command && command.length > 0) {
      const spec = router.find(command.join(" "));
      if (!spec)
        return message(
          `No command ${code(command.join(" "))}. Say ${code(`${ctx.prefix}help`)} for the list.`,
        );
      return message(describe(spec, ctx.prefix));
    }
    const rows = router.commands.map((spec) => [code(`${ctx.prefix}${spec.name}`), spec.summary]);
    return message(
      `**Commands**\n\n${table(["command", "what it does"], rows)}\n\n` +
        `${code(`${ctx.prefix}help <command>`)} explains one.`,
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
  summary: "Show who you are to majordome: Matrix ID, directory entry and groups",
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
    return message(lines.join("\n"));
  },
});

function describe(spec: CommandSpec, prefix: string): string {
  const lines = [`**${prefix}${spec.name}** — ${spec.summary}`, "", `Usage: ${code(usage(spec, prefix))}`];
  if (spec.aliases?.length) lines.push(`Aliases: ${spec.aliases.map((a) => code(prefix + a)).join(", ")}`);
  for (const [flag, f] of Object.entries(spec.flags ?? {}))
    lines.push(`- ${code(`--${flag}`)}: ${f.summary}`);
  return lines.join("\n");
}

export const metaCommands: CommandSpec[] = [help, ping, whoami];
