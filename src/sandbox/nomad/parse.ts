import { badRequest } from "./errors.js";
import { Evaluator } from "./hcl-eval.js";
import { JobMapper } from "./hcl-job.js";
import { JOB_SCHEMA, UNSUPPORTED_BLOCKS } from "./hcl-schema.js";
import { HclSource } from "./hcl-source.js";
import { isRecord, type JsonObject, type JsonValue } from "./json.js";

/**
 * POST /v1/jobs/parse: HCL2 → API Job, as jobspec2.ParseWithConfig with AllowFS false. The HCL
 * grammar is HashiCorp's own parser (compiled to WebAssembly in @cdktf/hcl2json); the decoding into
 * Nomad's structs is the double's (see hcl-schema.ts for the blocks it knows).
 */
export async function parseJobHcl(hcl: string, variables: string | undefined): Promise<JsonObject> {
  const source = new HclSource(hcl);
  const doc = await parseHcl(source);
  refuseTopLevel(source, doc);
  const values = await variableValues(source, doc, variables ?? "");
  const [label, body] = singleJob(source, doc.job);
  const mapper = new JobMapper(source, new Evaluator(source, values));
  return { ID: label, Name: label, ...mapper.body(body, JOB_SCHEMA, "job") };
}

async function parseHcl(source: HclSource): Promise<Record<string, unknown>> {
  // Loaded on first use: importing it starts a Go WebAssembly runtime, which most runs never need.
  const { parse: hclToJson } = await import("@cdktf/hcl2json");
  try {
    const doc: unknown = await hclToJson(source.filename, source.text);
    return isRecord(doc) ? doc : {};
  } catch (error) {
    throw badRequest(`Failed to parse job: ${hclDiagnostics(error)}`);
  }
}

/** hcl2json reports `parse config: [<diag> <diag>]`; Nomad joins them as hcl.Diagnostics.Error(). */
function hclDiagnostics(error: unknown): string {
  const text = error instanceof Error ? error.message : String(error);
  const inner = text.replace(/^parse config: \[/, "").replace(/\]$/, "");
  const diags = inner.split(/ (?=[\w.-]+\.hcl:\d+,\d+)/);
  return diags.length > 1 ? `${diags[0]}, and ${diags.length - 1} other diagnostic(s)` : (diags[0] ?? text);
}

function refuseTopLevel(source: HclSource, doc: Record<string, unknown>): void {
  for (const key of Object.keys(doc)) {
    if (key === "job" || key === "variable") continue;
    const detail = UNSUPPORTED_BLOCKS.includes(key)
      ? `the Nomad API double does not support "${key}" blocks`
      : `Blocks of type "${key}" are not expected here.`;
    throw source.error(source.findKey(key), "Unsupported block type", detail);
  }
}

function singleJob(source: HclSource, jobs: unknown): [string, unknown] {
  const entries = isRecord(jobs) ? Object.entries(jobs) : [];
  const bodies = entries.flatMap(([label, list]) =>
    (Array.isArray(list) ? list : [list]).map((b) => [label, b]),
  );
  const first = bodies[0];
  if (first === undefined) {
    throw source.error(undefined, "Missing job block", 'A job block is required: job "<name>" { ... }');
  }
  if (bodies.length > 1) {
    throw source.error(
      source.findKey("job"),
      "Duplicate job block",
      "Only one job block is allowed per file.",
    );
  }
  return [String(first[0]), first[1]];
}

interface Declared {
  type: string;
  default: JsonValue | undefined;
}

async function variableValues(
  source: HclSource,
  doc: Record<string, unknown>,
  content: string,
): Promise<Map<string, JsonValue>> {
  const declared = declaredVariables(doc.variable);
  const given = content.trim() === "" ? {} : await parseVariableFile(content);
  const values = new Map<string, JsonValue>();
  for (const [name, value] of Object.entries(given)) {
    const spec = declared.get(name);
    if (spec === undefined) {
      throw badRequest(
        `Failed to parse job: input.vars: Undefined variable; A "${name}" variable was passed in but is not declared in the job file. To declare variable "${name}", add a block variable "${name}" {}.`,
      );
    }
    values.set(name, convertVariable(source, name, spec.type, value));
  }
  for (const [name, spec] of declared) {
    if (values.has(name)) continue;
    if (spec.default === undefined) {
      throw source.error(
        source.find(new RegExp(`variable\\s+"${name}"`)),
        `Unset variable "${name}"`,
        "A used variable must be set or have a default value; see https://developer.hashicorp.com/nomad/docs/job-specification/hcl2/variables for details.",
      );
    }
    values.set(name, convertVariable(source, name, spec.type, spec.default));
  }
  return values;
}

function declaredVariables(raw: unknown): Map<string, Declared> {
  const out = new Map<string, Declared>();
  if (!isRecord(raw)) return out;
  for (const [name, bodies] of Object.entries(raw)) {
    const body = Array.isArray(bodies) ? bodies[0] : bodies;
    const spec = isRecord(body) ? body : {};
    const type = typeof spec.type === "string" ? spec.type.replace(/^\$\{(.*)\}$/, "$1") : "any";
    out.set(name, { type, default: "default" in spec ? (spec.default as JsonValue) : undefined });
  }
  return out;
}

/** The `Variables` field is an HCL variables file: `image = "nginx:1.27"`, one assignment a line. */
async function parseVariableFile(content: string): Promise<Record<string, JsonValue>> {
  const source = new HclSource(content, "input.vars");
  const doc = await parseHcl(source);
  const out: Record<string, JsonValue> = {};
  for (const [name, value] of Object.entries(doc)) {
    if (typeof value === "string" && /^\$\{.*\}$/s.test(value)) {
      throw source.error(source.findKey(name), "Variables not allowed", "Variables may not be used here.");
    }
    out[name] = value as JsonValue;
  }
  return out;
}

function convertVariable(source: HclSource, name: string, type: string, value: JsonValue): JsonValue {
  if (type === "string" && (typeof value === "number" || typeof value === "boolean")) return String(value);
  if (type === "number" && typeof value === "string" && value.trim() !== "" && !Number.isNaN(Number(value))) {
    return Number(value);
  }
  if (type === "bool" && (value === "true" || value === "false")) return value === "true";
  const ok =
    type === "any" ||
    (type === "string" && typeof value === "string") ||
    (type === "number" && typeof value === "number") ||
    (type === "bool" && typeof value === "boolean") ||
    (type.startsWith("list") && Array.isArray(value)) ||
    ((type.startsWith("map") || type.startsWith("object")) && isRecord(value));
  if (ok) return value;
  throw source.error(
    source.find(new RegExp(`variable\\s+"${name}"`)),
    "Invalid value for variable",
    `The given value is not suitable for var.${name}: ${type} required.`,
  );
}
