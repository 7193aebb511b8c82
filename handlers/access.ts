import { describeGroups, type PolicyRule } from "../src/auth/policy.js";
import { code, message, table } from "../src/chat/message.js";
import { formatDuration } from "../src/config/duration.js";
import { defineCommand, policyKey, type CommandSpec } from "../src/commands/declare.js";
import { integer, text } from "../src/commands/types.js";

const policy = defineCommand<{ command: string[] }>({
  name: "policy",
  summary: "Explain who may run a command, and why",
  args: [{ name: "command", type: text, rest: true }],
  async run(ctx, { command }) {
    const { router, policies, authorizer } = ctx.services;
    const spec = router.find(command.join(" "));
    if (!spec)
      return message(`No command ${code(command.join(" "))}. Say ${code(`${ctx.prefix}help`)} for the list.`);
    const keys = [
      policyKey(spec),
      ...Object.values(spec.flags ?? {}).flatMap((f) => (f.policy ? [f.policy] : [])),
    ];
    const lines = [`**${ctx.prefix}${spec.name}**`];
    for (const key of keys) {
      const rule = policies.ruleFor(key);
      lines.push(
        "",
        `${code(key)}: ${rule ? explain(rule) : "no rule names it, so it is **denied** to everyone."}`,
      );
    }
    const decision = authorizer.decide(ctx.identity, [policyKey(spec)], ctx.roomId);
    const you =
      decision.outcome === "allow"
        ? "allowed"
        : decision.outcome === "approval"
          ? "allowed with approval"
          : `denied (${decision.reason})`;
    lines.push("", `**For you:** ${you}`);
    return message(lines.join("\n"));
  },
});

function explain(rule: PolicyRule): string {
  const parts = [
    `rule ${code(rule.match.join(", "))} in ${code(rule.source)}: for ${describeGroups(rule.allow)}`,
  ];
  if (rule.rooms) parts.push(`only in ${rule.rooms.map((r) => code(r)).join(", ")}`);
  if (rule.approval) {
    const a = rule.approval;
    parts.push(
      `needs ${a.approvers} approval${a.approvers > 1 ? "s" : ""} from ${describeGroups(a.from)}` +
        `${a.self_approval ? "" : " other than the requester"}, within ${formatDuration(a.expires)}`,
    );
  }
  if (rule.break_glass)
    parts.push(`${describeGroups(rule.break_glass)} may use ${code("--break-glass <reason>")}`);
  return parts.join("; ") + "." + (rule.why ? ` Why: ${rule.why}` : "");
}

const audit = defineCommand<{ count?: number }>({
  name: "audit",
  summary: "Show the latest entries of the audit log",
  args: [{ name: "count", type: integer("count", 1, 100), optional: true }],
  async run(ctx, { count }) {
    const entries = await ctx.services.store.readAudit(count ?? 10);
    if (entries.length === 0) return message("The audit log is empty.");
    const rows = entries.map((e) => [
      new Date(e.at).toISOString().replace("T", " ").slice(0, 19),
      e.kind,
      e.actor ?? "",
      e.command ? code(String(e.command)) : String(e.request ?? ""),
      String(e.result ?? "") + (e.breakGlass ? " 🚨 break-glass" : ""),
    ]);
    return message(table(["when (UTC)", "what", "who", "command", "result"], rows));
  },
});

export const accessCommands: CommandSpec[] = [policy, audit];
