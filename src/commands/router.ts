import { distance } from "fastest-levenshtein";
import { parseArgsStringToArgv } from "string-argv";
import { code } from "../chat/message.js";
import { policyKey, usage, type CommandSpec, type FlagSpec, type ParsedArgs } from "./declare.js";
import { text } from "./types.js";

/** Accepted by every command: skips an approval where a policy allows it, with a reason (audited). */
export const BREAK_GLASS = "break-glass";
const breakGlassFlag: FlagSpec = {
  summary: "run without the approval, where a policy allows it",
  type: text,
};

export type Resolution =
  | { kind: "command"; spec: CommandSpec; args: ParsedArgs; policyKeys: string[] }
  | { kind: "error"; message: string; spec?: CommandSpec };

/** Turns a command line into a declared command with validated arguments, or says precisely what is wrong. */
export class Router {
  private readonly byWords = new Map<string, CommandSpec>();
  private readonly maxWords: number;

  constructor(
    readonly commands: CommandSpec[],
    readonly prefix: string,
  ) {
    for (const spec of commands) {
      for (const words of [spec.name, ...(spec.aliases ?? [])]) {
        if (this.byWords.has(words)) throw new Error(`two commands are named "${words}"`);
        this.byWords.set(words, spec);
      }
    }
    this.maxWords = Math.max(1, ...[...this.byWords.keys()].map((k) => k.split(" ").length));
  }

  find(name: string): CommandSpec | undefined {
    return this.byWords.get(name.trim().replace(/\s+/g, " "));
  }

  /** `line` is the text after the prefix or mention. */
  resolve(line: string): Resolution {
    const words = tokenize(line);
    if (words.length === 0)
      return { kind: "error", message: `Say ${code(`${this.prefix}help`)} for the commands.` };
    for (let n = Math.min(this.maxWords, words.length); n >= 1; n--) {
      const spec = this.byWords.get(words.slice(0, n).join(" "));
      if (spec) return this.bind(spec, words.slice(n));
    }
    return { kind: "error", message: this.unknown(words) };
  }

  private unknown(words: string[]): string {
    const attempt = words.slice(0, this.maxWords).join(" ");
    let best: { name: string; d: number } | undefined;
    for (const candidate of this.commands.map((spec) => spec.name)) {
      const typed = words.slice(0, candidate.split(" ").length).join(" ");
      const d = distance(typed, candidate);
      if (d <= Math.max(2, Math.floor(candidate.length / 3)) && (!best || d < best.d))
        best = { name: candidate, d };
    }
    const hint = best ? ` Did you mean ${code(this.prefix + best.name)}?` : "";
    return `Unknown command ${code(attempt)}.${hint} Say ${code(`${this.prefix}help`)} for the list.`;
  }

  private bind(spec: CommandSpec, words: string[]): Resolution {
    const args: ParsedArgs = {};
    const policyKeys = [policyKey(spec)];
    const positionals: string[] = [];
    const flags = spec.flags ?? {};
    const fail = (message: string): Resolution => ({
      kind: "error",
      spec,
      message: `${message}\nUsage: ${code(usage(spec, this.prefix))}`,
    });

    for (let i = 0; i < words.length; i++) {
      const word = words[i]!;
      if (word === "--") {
        positionals.push(...words.slice(i + 1));
        break;
      }
      if (!word.startsWith("--") || word.length === 2) {
        positionals.push(word);
        continue;
      }
      const [flagName, inline] = splitFlag(word.slice(2));
      const flag = flagName === BREAK_GLASS ? breakGlassFlag : flags[flagName];
      if (!flag) {
        const known = Object.keys(flags);
        return fail(
          `Unknown flag ${code(`--${flagName}`)} for ${code(spec.name)}.` +
            (known.length
              ? ` Known flags: ${known.map((f) => code(`--${f}`)).join(", ")}.`
              : " It takes no flags."),
        );
      }
      if (flagName in args) return fail(`Flag ${code(`--${flagName}`)} is given twice.`);
      if (!flag.type) {
        if (inline !== undefined) return fail(`Flag ${code(`--${flagName}`)} takes no value.`);
        args[flagName] = true;
      } else {
        const raw = inline ?? words[++i];
        if (raw === undefined) return fail(`Flag ${code(`--${flagName}`)} needs a ${flag.type.label}.`);
        const parsed = flag.type.parse(raw);
        if (!parsed.ok)
          return fail(`Bad value ${code(raw)} for ${code(`--${flagName}`)}: expected ${parsed.expected}.`);
        args[flagName] = parsed.value;
      }
      if (flag.policy) policyKeys.push(flag.policy);
    }

    const specs = spec.args ?? [];
    for (let i = 0; i < specs.length; i++) {
      const arg = specs[i]!;
      const raws = arg.rest ? positionals.splice(0) : positionals.splice(0, 1);
      if (raws.length === 0) {
        if (arg.optional) continue;
        return fail(`Missing ${code(arg.name)} (${arg.type.label}).`);
      }
      const values: unknown[] = [];
      for (const raw of raws) {
        const parsed = arg.type.parse(raw);
        if (!parsed.ok) return fail(`Bad ${arg.name} ${code(raw)}: expected ${parsed.expected}.`);
        values.push(parsed.value);
      }
      args[arg.name] = arg.rest ? values : values[0];
    }
    if (positionals.length > 0) return fail(`Unexpected ${positionals.map((p) => code(p)).join(" ")}.`);
    return { kind: "command", spec, args, policyKeys };
  }
}

function splitFlag(flag: string): [string, string | undefined] {
  const eq = flag.indexOf("=");
  return eq < 0 ? [flag, undefined] : [flag.slice(0, eq), flag.slice(eq + 1)];
}

function tokenize(line: string): string[] {
  // Typographic quotes (as phones type them) count as plain quotes.
  return parseArgsStringToArgv(line.replace(/[“”„]/g, '"').replace(/[‘’]/g, "'"));
}
