import { closingIndex, type HclSource } from "./hcl-source.js";
import type { JsonValue } from "./json.js";

/**
 * Evaluates the strings @cdktf/hcl2json leaves behind: it renders every expression that is not a
 * literal as an HCL template ("${var.image}", "api:${var.tag}", "${file(\"x\")}"). The double
 * evaluates `var.<name>` references, keeps Nomad's runtime interpolations (`${attr.kernel.name}`,
 * `${NOMAD_PORT_http}`, `${meta.x}`) as text as jobspec2 does, and refuses everything else with a
 * diagnostic naming the construct.
 */

/** Functions jobspec2 guards with `guardFS` when the API parses (AllowFS false). */
const FS_FUNCTIONS = ["file", "filebase64", "fileexists", "fileset", "pathexpand"];

/** A plain reference (`attr.kernel.name`, `NOMAD_PORT_http`, `meta["x"]`), and its root. */
const TRAVERSAL = /^([A-Za-z_][\w-]*)((\.[A-Za-z_][\w-]*)|(\["[^"]*"\])|(\[\d+\]))*$/;

export class Evaluator {
  constructor(
    private readonly source: HclSource,
    private readonly variables: ReadonlyMap<string, JsonValue>,
  ) {}

  /** Deeply evaluates a value from hcl2json's output. */
  value(value: unknown): JsonValue {
    if (typeof value === "string") return this.template(value);
    if (Array.isArray(value)) return value.map((item) => this.value(item));
    if (typeof value === "object" && value !== null) {
      return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, this.value(v)]));
    }
    if (typeof value === "number" || typeof value === "boolean" || value === null) return value;
    return null;
  }

  /** A template string; a lone `${expr}` yields the expression's own type (number, list...). */
  template(text: string): JsonValue {
    const parts = splitTemplate(text);
    const only = parts.length === 1 ? parts[0] : undefined;
    if (only !== undefined && only.kind === "interpolation") return this.expression(only.text);
    return parts.map((part) => this.renderPart(part)).join("");
  }

  private renderPart(part: TemplatePart): string {
    if (part.kind === "literal") return part.text;
    if (part.kind === "directive") {
      throw this.source.error(
        this.source.find(/%\{/),
        "Unsupported template directive",
        `the Nomad API double does not evaluate template directives ("%{${part.text}}")`,
      );
    }
    const value = this.expression(part.text);
    return typeof value === "string" ? value : JSON.stringify(value);
  }

  private expression(expr: string): JsonValue {
    const trimmed = expr.trim();
    this.refuseCalls(trimmed);
    const variable = /^var\.([A-Za-z_][\w-]*)$/.exec(trimmed);
    if (variable?.[1] !== undefined) return this.variable(variable[1]);
    const literal = literalValue(trimmed);
    if (literal !== undefined) return literal;
    const root = TRAVERSAL.exec(trimmed)?.[1];
    // Unknown roots are the client's run-time interpolation: jobspec2 leaves them as text.
    if (root !== undefined && root !== "var" && root !== "local") return `\${${expr}}`;
    throw this.source.error(
      this.source.find(new RegExp(escapeForSearch(trimmed))),
      "Unsupported expression",
      `the Nomad API double evaluates only var.<name> references and literals, not "${trimmed}"`,
    );
  }

  private variable(name: string): JsonValue {
    const value = this.variables.get(name);
    if (value !== undefined) return value;
    throw this.source.error(
      this.source.find(new RegExp(`var\\.${name}\\b`)),
      "Unsupported attribute",
      `This object does not have an attribute named "${name}".`,
    );
  }

  private refuseCalls(expr: string): void {
    for (const match of stripStrings(expr).matchAll(/([A-Za-z_][\w:]*)\s*\(/g)) {
      const name = match[1] ?? "";
      if (FS_FUNCTIONS.includes(name)) {
        const calls = FS_FUNCTIONS.flatMap((fn) => countCalls(this.source.text, fn));
        const others = calls.length > 1 ? `, and ${calls.length - 1} other diagnostic(s)` : "";
        throw this.source.error(
          this.source.findCall(name),
          "Error in function call",
          `Call to function "${name}" failed: filesystem function disabled.${others}`,
        );
      }
      throw this.source.error(
        this.source.findCall(name),
        "Unsupported function",
        `the Nomad API double does not implement function "${name}" (it evaluates var.<name> references only)`,
      );
    }
  }
}

type TemplatePart =
  | { kind: "literal"; text: string }
  | { kind: "interpolation"; text: string }
  | { kind: "directive"; text: string };

/** Splits an HCL template into literals, `${...}` and `%{...}`, honouring `$${` and `%%{` escapes. */
export function splitTemplate(text: string): TemplatePart[] {
  const parts: TemplatePart[] = [];
  let literal = "";
  let i = 0;
  while (i < text.length) {
    const two = text.slice(i, i + 3);
    if (two === "$${" || two === "%%{") {
      literal += two.slice(1);
      i += 3;
      continue;
    }
    const opener = text.slice(i, i + 2);
    if (opener === "${" || opener === "%{") {
      const end = closingIndex(text, i + 2, "{", "}");
      if (literal !== "") parts.push({ kind: "literal", text: literal });
      literal = "";
      parts.push({ kind: opener === "${" ? "interpolation" : "directive", text: text.slice(i + 2, end) });
      i = end + 1;
      continue;
    }
    literal += text[i];
    i++;
  }
  if (literal !== "" || parts.length === 0) parts.push({ kind: "literal", text: literal });
  return parts;
}

function literalValue(expr: string): JsonValue | undefined {
  if (expr === "true") return true;
  if (expr === "false") return false;
  if (expr === "null") return null;
  if (/^-?\d+(\.\d+)?$/.test(expr)) return Number(expr);
  if (/^"([^"\\$%]|\\.)*"$/.test(expr)) return JSON.parse(expr) as string;
  return undefined;
}

const stripStrings = (expr: string): string => expr.replace(/"([^"\\]|\\.)*"/g, '""');

function countCalls(text: string, name: string): number[] {
  return [...text.matchAll(new RegExp(`(?<![\\w.])${name}\\s*\\(`, "g"))].map((m) => m.index);
}

const escapeForSearch = (text: string): string => text.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
