import { badRequest, type NomadError } from "./errors.js";

/**
 * HCL diagnostics as jobspec2 reports them through /v1/jobs/parse:
 * `Failed to parse job: input.hcl:12,16-31: <summary>; <detail>`. @cdktf/hcl2json drops source
 * ranges, so the double finds the construct in the source text again.
 */
export interface Range {
  line: number;
  column: number;
  endLine: number;
  endColumn: number;
}

export class HclSource {
  constructor(
    readonly text: string,
    readonly filename = "input.hcl",
  ) {}

  /** Where `pattern` first matches (the whole match), or undefined. */
  find(pattern: RegExp): Range | undefined {
    const flags = pattern.flags.includes("g") ? pattern.flags : `${pattern.flags}g`;
    const match = new RegExp(pattern.source, flags).exec(this.text);
    return match === null ? undefined : this.range(match.index, match.index + match[0].length);
  }

  /** Offset of a labelled block `key "label"` (hcl2json sorts labels; Nomad keeps source order). */
  labelOffset(key: string, label: string): number {
    const match = new RegExp(`(?<![\\w.])${escapeRegExp(key)}\\s+"${escapeRegExp(label)}"`).exec(this.text);
    return match === null ? Number.MAX_SAFE_INTEGER : match.index;
  }

  /** A call `name(...)` through its closing parenthesis. */
  findCall(name: string): Range | undefined {
    const match = new RegExp(`(?<![\\w.])${name}\\s*\\(`, "g").exec(this.text);
    if (match === null) return undefined;
    const end = Math.min(
      this.text.length,
      closingIndex(this.text, match.index + match[0].length, "(", ")") + 1,
    );
    return this.range(match.index, end);
  }

  /** An attribute or block named `key` (first occurrence). */
  findKey(key: string): Range | undefined {
    return this.find(new RegExp(`(?<![\\w.])${escapeRegExp(key)}(?=\\s*(=|\\{|"))`));
  }

  error(range: Range | undefined, summary: string, detail: string): NomadError {
    return badRequest(`Failed to parse job: ${this.diagnostic(range, summary, detail)}`);
  }

  diagnostic(range: Range | undefined, summary: string, detail: string): string {
    return `${this.subject(range)}: ${summary}; ${detail}`;
  }

  private subject(range: Range | undefined): string {
    if (range === undefined) return this.filename;
    const end = range.endLine === range.line ? `${range.endColumn}` : `${range.endLine},${range.endColumn}`;
    return `${this.filename}:${range.line},${range.column}-${end}`;
  }

  private range(start: number, end: number): Range {
    const a = this.position(start);
    const b = this.position(end);
    return { line: a.line, column: a.column, endLine: b.line, endColumn: b.column };
  }

  private position(offset: number): { line: number; column: number } {
    const before = this.text.slice(0, offset);
    const line = before.split("\n").length;
    const column = [...before.slice(before.lastIndexOf("\n") + 1)].length + 1;
    return { line, column };
  }
}

/**
 * The index of the delimiter closing the one opened just before `from` (`(` → `)`, `{` → `}`), skipping
 * quoted strings; the text's length when it is never closed.
 */
export function closingIndex(text: string, from: number, open: string, close: string): number {
  let depth = 1;
  let quote = false;
  for (let i = from; i < text.length; i++) {
    const c = text[i];
    if (quote) {
      if (c === "\\") i++;
      else if (c === '"') quote = false;
    } else if (c === '"') quote = true;
    else if (c === open) depth++;
    else if (c === close && --depth === 0) return i;
  }
  return text.length;
}

export const escapeRegExp = (text: string): string => text.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
