import { readdir, readFile } from "node:fs/promises";
import { join } from "node:path";
import { parseDocument } from "yaml";
import { z } from "zod";
import { duration } from "../config/duration.js";

/** `anyone`: every person the directory knows (never someone it does not). */
export const ANYONE = "anyone";

const groupList = z.array(z.string().min(1)).min(1);

const approvalSchema = z.strictObject({
  /** How many distinct people must approve. */
  approvers: z.number().int().min(1).max(10).default(1),
  /** Groups whose members may approve (or reject). */
  from: groupList,
  /** Whether the requester's own ✅ counts. Default: never. */
  self_approval: z.boolean().default(false),
  expires: duration.prefault("15m"),
});

const ruleSchema = z.strictObject({
  /** Policy keys: a command's name ("db create"), a flag's key ("bucket delete --purge"), or a pattern ("db *"). */
  match: z
    .union([z.string().min(1), z.array(z.string().min(1)).min(1)])
    .transform((m) => (Array.isArray(m) ? m : [m])),
  /** Groups whose members may run it (`anyone`: every directory user). */
  allow: groupList,
  /** Room IDs where it may run; everywhere majordome serves when absent. */
  rooms: z.array(z.string().min(1)).optional(),
  approval: approvalSchema.optional(),
  /** Groups that may skip the approval with `--break-glass <reason>` (audited, announced). */
  break_glass: groupList.optional(),
  /** Said by !policy: why the rule is as it is. */
  why: z.string().optional(),
});

const fileSchema = z.strictObject({ rules: z.array(ruleSchema) });

export type ApprovalRule = z.infer<typeof approvalSchema>;
export interface PolicyRule extends z.infer<typeof ruleSchema> {
  /** Where it was declared, e.g. "policies/default.yml rule 3". */
  source: string;
}

export class PolicyError extends Error {}

/** Loads every `*.yml` / `*.yaml` in `dir`, in file-name order. A broken file stops start-up with its problems. */
export async function loadPolicies(dir: string): Promise<Policies> {
  let names: string[];
  try {
    names = (await readdir(dir)).filter((n) => /\.ya?ml$/.test(n)).sort();
  } catch (error) {
    throw new PolicyError(
      `cannot read the policies directory ${dir}: ${(error as NodeJS.ErrnoException).code ?? error}`,
    );
  }
  if (names.length === 0)
    throw new PolicyError(`no policy files (*.yml) in ${dir}: everything would be denied`);
  const rules: PolicyRule[] = [];
  for (const name of names)
    rules.push(...parsePolicyFile(await readFile(join(dir, name), "utf8"), join(dir, name)));
  return new Policies(rules);
}

export function parsePolicyFile(text: string, source: string): PolicyRule[] {
  const doc = parseDocument(text);
  if (doc.errors.length > 0)
    throw new PolicyError(`${source}: ${doc.errors.map((e) => e.message).join("; ")}`);
  const parsed = fileSchema.safeParse(doc.toJS());
  if (!parsed.success) {
    const problems = parsed.error.issues.map((i) => `${i.path.join(".") || "(top level)"}: ${i.message}`);
    throw new PolicyError(`${source}: invalid policy\n${problems.map((p) => `  - ${p}`).join("\n")}`);
  }
  return parsed.data.rules.map((rule, i) => ({ ...rule, source: `${source} rule ${i + 1}` }));
}

/** What the policies say about one policy key. */
export type KeyVerdict =
  | { kind: "denied"; key: string; reason: string; rule?: PolicyRule }
  | { kind: "allowed"; key: string; rule: PolicyRule }
  | { kind: "approval"; key: string; rule: PolicyRule; approval: ApprovalRule };

export class Policies {
  constructor(readonly rules: PolicyRule[]) {}

  /** The rule for a key: an exact match first, then the pattern with the longest fixed part, then file order. */
  ruleFor(key: string): PolicyRule | undefined {
    let best: { rule: PolicyRule; score: number } | undefined;
    for (const rule of this.rules) {
      for (const pattern of rule.match) {
        const score = matchScore(pattern, key);
        if (score > (best?.score ?? -1)) best = { rule, score };
      }
    }
    return best?.rule;
  }

  verdict(key: string, groups: string[] | null, roomId: string): KeyVerdict {
    const rule = this.ruleFor(key);
    if (!rule) return { kind: "denied", key, reason: `no policy names ${key}, so it is denied` };
    if (groups === null) return { kind: "denied", key, rule, reason: "you are not in the directory" };
    if (!inGroups(groups, rule.allow)) {
      return { kind: "denied", key, rule, reason: `${key} is for ${describeGroups(rule.allow)}` };
    }
    if (rule.rooms && !rule.rooms.includes(roomId)) {
      return { kind: "denied", key, rule, reason: `${key} is not allowed in this room` };
    }
    return rule.approval
      ? { kind: "approval", key, rule, approval: rule.approval }
      : { kind: "allowed", key, rule };
  }
}

export function inGroups(groups: string[], wanted: string[]): boolean {
  return wanted.includes(ANYONE) || groups.some((g) => wanted.includes(g));
}

export function describeGroups(groups: string[]): string {
  return groups.includes(ANYONE) ? "anyone in the directory" : `members of ${groups.join(" or ")}`;
}

/** -1: no match; otherwise higher is more specific (exact beats any pattern). */
function matchScore(pattern: string, key: string): number {
  if (pattern === key) return Number.MAX_SAFE_INTEGER;
  if (!pattern.includes("*")) return -1;
  const regex = new RegExp(`^${pattern.split("*").map(escapeRegExp).join(".*")}$`);
  return regex.test(key) ? pattern.replace(/\*/g, "").length : -1;
}

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
}
