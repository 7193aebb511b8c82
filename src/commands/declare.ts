import type { Message } from "../chat/message.js";
import type { ArgType } from "./types.js";
import type { CommandContext } from "./context.js";

export interface PositionalSpec {
  name: string;
  type: ArgType<unknown>;
  optional?: boolean;
  /** Takes every remaining word (only the last positional). */
  rest?: boolean;
}

export interface FlagSpec {
  summary: string;
  /** Absent: a boolean switch. */
  type?: ArgType<unknown>;
  /** A flag that changes the risk (`--purge`, `--force`) is authorized by its own policy key. */
  policy?: string;
}

export type ParsedArgs = Record<string, unknown>;

/**
 * What a command will do, shown to people and approved by them. `facts` are the observable facts the
 * approval is about (a diff and its modify index, names and options, what a deletion removes; never
 * generated secrets): if they differ when the action is about to run, it does not run.
 */
export interface Plan {
  summary: string;
  facts: unknown;
  /** Handed to the backend to enforce the plan (e.g. Nomad's job modify index). */
  guard?: unknown;
}

export interface CommandSpec<A extends ParsedArgs = ParsedArgs> {
  /** One or more words: "help", "db create". */
  name: string;
  aliases?: string[];
  summary: string;
  args?: PositionalSpec[];
  flags?: Record<string, FlagSpec>;
  /** The policy key that authorizes it; by default its name. */
  policy?: string;
  /** For commands that can need approval: what running it now would do. */
  plan?(ctx: CommandContext, args: A): Promise<Plan>;
  /**
   * Runs the command. Returning a Message replies with it; a handler may also reply itself. After an
   * approval, `plan` is the fresh plan, checked equal to the approved one.
   */
  run(ctx: CommandContext, args: A, plan?: Plan): Promise<Message | void>;
}

/** Declares a command. `A` is the shape its arguments are validated into (positionals and flags by name). */
export function defineCommand<A extends ParsedArgs>(spec: CommandSpec<A>): CommandSpec {
  return spec as unknown as CommandSpec;
}

export function policyKey(spec: CommandSpec): string {
  return spec.policy ?? spec.name;
}

export function usage(spec: CommandSpec, prefix: string): string {
  const positionals = (spec.args ?? []).map((a) => {
    const word = a.rest ? `${a.name}…` : a.name;
    return a.optional ? `[${word}]` : `<${word}>`;
  });
  const flags = Object.entries(spec.flags ?? {}).map(([flag, f]) =>
    f.type ? `[--${flag} <${f.type.label}>]` : `[--${flag}]`,
  );
  return [`${prefix}${spec.name}`, ...positionals, ...flags].join(" ");
}
