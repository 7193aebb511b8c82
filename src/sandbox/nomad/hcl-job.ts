import { parseGoDuration } from "./duration.js";
import type { Evaluator } from "./hcl-eval.js";
import { UNSUPPORTED_BLOCKS, type Attr, type Block, type Kind, type Schema } from "./hcl-schema.js";
import type { HclSource } from "./hcl-source.js";
import { isJsonObject, isRecord, type JsonObject, type JsonValue } from "./json.js";
import type { NomadError } from "./errors.js";

/** Maps hcl2json's shape (blocks as arrays, labelled blocks as objects of arrays) to the API Job shape. */
export class JobMapper {
  constructor(
    private readonly source: HclSource,
    private readonly evaluator: Evaluator,
  ) {}

  body(raw: unknown, schema: Schema, where: string): JsonObject {
    const out: JsonObject = {};
    for (const [key, value] of Object.entries(this.asBody(raw, where))) {
      const attr = schema.attrs[key];
      const block = schema.blocks[key];
      if (attr !== undefined) out[attr.to] = this.attribute(key, value, attr);
      else if (block !== undefined) out[block.to] = this.block(key, value, block);
      else throw this.unexpected(key, value);
    }
    return postProcess(schema.post, out);
  }

  private block(key: string, value: unknown, block: Block): JsonValue {
    if (block.shape === "single") {
      const bodies = asBodies(value);
      if (bodies.length > 1) throw this.duplicate(key);
      return this.body(bodies[0] ?? {}, block.schema, key);
    }
    if (block.shape === "list") return asBodies(value).map((body) => this.body(body, block.schema, key));
    const labelled = this.labelled(key, value).map(([label, body]) => ({
      [block.label]: label,
      ...this.body(body, block.schema, key),
    }));
    if (block.shape === "labelledList") return labelled;
    return Object.fromEntries(labelled.map((item) => [String(item[block.label]), item]));
  }

  private labelled(key: string, value: unknown): [string, unknown][] {
    if (!isRecord(value))
      throw this.source.error(
        this.source.findKey(key),
        "Missing name for " + key,
        `All ${key} blocks must have 1 labels (name).`,
      );
    const entries = Object.entries(value).sort(
      ([x], [y]) => this.source.labelOffset(key, x) - this.source.labelOffset(key, y),
    );
    return entries.flatMap(([label, bodies]) => {
      const list = asBodies(bodies);
      if (list.length > 1) throw this.duplicate(`${key} "${label}"`);
      return list.map((body) => [label, body] as [string, unknown]);
    });
  }

  private attribute(key: string, raw: unknown, attr: Attr): JsonValue {
    const value = this.evaluator.value(mapForm(attr.kind, raw));
    const converted = convert(value, attr.kind);
    if (converted === undefined) throw this.wrongType(key, attr.kind, value);
    return converted;
  }

  private asBody(raw: unknown, where: string): Record<string, unknown> {
    if (isRecord(raw)) return raw;
    throw this.source.error(this.source.findKey(where), "Invalid block", `A "${where}" block was expected.`);
  }

  private unexpected(key: string, value: unknown): NomadError {
    const range = this.source.findKey(key);
    if (UNSUPPORTED_BLOCKS.includes(key)) {
      return this.source.error(
        range,
        "Unsupported block type",
        `the Nomad API double does not support "${key}" blocks`,
      );
    }
    if (looksLikeBlock(value)) {
      return this.source.error(
        range,
        "Unsupported block type",
        `Blocks of type "${key}" are not expected here.`,
      );
    }
    return this.source.error(
      range,
      "Unsupported argument",
      `An argument named "${key}" is not expected here.`,
    );
  }

  private duplicate(key: string): NomadError {
    return this.source.error(
      this.source.findKey(key.split(" ")[0] ?? key),
      "Duplicate block",
      `Only one ${key} block is allowed.`,
    );
  }

  private wrongType(key: string, kind: Kind, value: JsonValue): NomadError {
    const range = this.source.findKey(key);
    if (kind === "duration" && typeof value === "string") {
      return this.source.error(range, "Unsuitable duration value", `time: invalid duration "${value}"`);
    }
    return this.source.error(
      range,
      "Incorrect attribute value type",
      `Inappropriate value for attribute "${key}": ${KIND_NAMES[kind]} required.`,
    );
  }
}

const KIND_NAMES: Record<Kind, string> = {
  string: "string",
  int: "a number is",
  bool: "bool",
  duration: "a duration string is",
  strings: "list of string",
  stringMap: "map of string",
  stringListMap: "map of list of string",
  any: "an object is",
};

/** `meta { a = "b" }` (a block) and `meta = { a = "b" }` (an attribute) mean the same map. */
function mapForm(kind: Kind, raw: unknown): unknown {
  if (!["stringMap", "stringListMap", "any"].includes(kind) || !Array.isArray(raw)) return raw;
  if (!raw.every(isRecord)) return raw;
  return Object.assign({}, ...raw) as unknown;
}

function convert(value: JsonValue, kind: Kind): JsonValue | undefined {
  switch (kind) {
    case "string":
      return ["string", "number", "boolean"].includes(typeof value) ? String(value) : undefined;
    case "int":
      return toInt(value);
    case "bool":
      return typeof value === "boolean"
        ? value
        : value === "true"
          ? true
          : value === "false"
            ? false
            : undefined;
    case "duration":
      return typeof value === "string" ? parseGoDuration(value) : undefined;
    case "strings":
      return Array.isArray(value) ? allDefined(value.map((v) => convert(v, "string"))) : undefined;
    case "stringMap":
      return isRecord(value) ? mapValues(value, (v) => convert(v, "string")) : undefined;
    case "stringListMap":
      return isRecord(value) ? mapValues(value, (v) => convert(v, "strings")) : undefined;
    case "any":
      return isRecord(value) ? value : undefined;
  }
}

function toInt(value: JsonValue): number | undefined {
  const n = typeof value === "string" && value.trim() !== "" ? Number(value) : value;
  return typeof n === "number" && Number.isInteger(n) ? n : undefined;
}

function allDefined(values: (JsonValue | undefined)[]): JsonValue[] | undefined {
  return values.every((v) => v !== undefined) ? (values as JsonValue[]) : undefined;
}

function mapValues(obj: JsonObject, fn: (v: JsonValue) => JsonValue | undefined): JsonObject | undefined {
  const out: JsonObject = {};
  for (const [k, v] of Object.entries(obj)) {
    const converted = fn(v);
    if (converted === undefined) return undefined;
    out[k] = converted;
  }
  return out;
}

function asBodies(value: unknown): unknown[] {
  return Array.isArray(value) ? value : [value];
}

const looksLikeBlock = (value: unknown): boolean =>
  (Array.isArray(value) && value.length > 0 && value.every(isRecord)) ||
  (isRecord(value) && Object.values(value).every((v) => Array.isArray(v) && v.every(isRecord)));

function postProcess(kind: Schema["post"], out: JsonObject): JsonObject {
  if (kind === "network") return splitPorts(out);
  if (kind === "constraint") return constraintOperator(out);
  if (kind === "logs") return logsEnabled(out);
  return out;
}

/** `port "http" { static = 80 }` is a reserved port; without `static` it is dynamic. */
function splitPorts(out: JsonObject): JsonObject {
  const { Ports, ...rest } = out;
  const ports = Array.isArray(Ports) ? Ports.filter(isJsonObject) : [];
  const reserved = ports.filter((p) => typeof p.Value === "number");
  const dynamic = ports.filter((p) => typeof p.Value !== "number").map((p) => ({ ...p, Value: 0 }));
  return {
    ...rest,
    ...(reserved.length > 0 ? { ReservedPorts: reserved } : {}),
    ...(dynamic.length > 0 ? { DynamicPorts: dynamic } : {}),
  };
}

/** `distinct_hosts = true`, `regexp = "..."` and friends set the operand (jobspec2 parseConstraints). */
function constraintOperator(out: JsonObject): JsonObject {
  const result: JsonObject = {};
  for (const [key, value] of Object.entries(out)) {
    if (!key.startsWith("op:")) {
      result[key] = value;
      continue;
    }
    const op = key.slice(3);
    result.Operand = op;
    if (op === "distinct_property") result.LTarget = value;
    else result.RTarget = value;
  }
  return result;
}

function logsEnabled(out: JsonObject): JsonObject {
  const { Enabled, ...rest } = out;
  return typeof Enabled === "boolean" && rest.Disabled === undefined ? { ...rest, Disabled: !Enabled } : rest;
}
