import { existsSync, readFileSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";

/** Locating the shared reference data (samples from the specs) and comparing JSON shapes with it. */

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");

/** The reference root (holding matrix/, nomad/...), or undefined when it is not there: tests then skip. */
export function referenceDir(): string | undefined {
  const dir = process.env.MAJORDOME_REFERENCE_DIR ?? path.resolve(repoRoot, "../shared/reference");
  return existsSync(dir) ? dir : undefined;
}

export function readReference(...segments: string[]): unknown {
  const dir = referenceDir();
  if (dir === undefined) throw new Error("reference data not found (set MAJORDOME_REFERENCE_DIR)");
  return JSON.parse(readFileSync(path.join(dir, ...segments), "utf8")) as unknown;
}

export const matrixSample = (name: string): unknown => readReference("matrix", "samples", name);

type JsonRecord = Record<string, unknown>;

const isRecord = (value: unknown): value is JsonRecord =>
  typeof value === "object" && value !== null && !Array.isArray(value);

/**
 * A response example from a spec-v1.19/cs-*.json file. Examples the README marks as built from
 * per-property schema examples are wrapped as {_synthesised_from_schema_property_examples, value}:
 * unwrapped here the same way, since their keys are still the schema's.
 */
export function matrixSpecExample(file: string, method: string, specPath: string, status: string): unknown {
  const spec = readReference("matrix", "spec-v1.19", file);
  const operations = isRecord(spec) && Array.isArray(spec.operations) ? spec.operations : [];
  const operation: unknown = operations.find(
    (op: unknown) => isRecord(op) && op.method === method && String(op.path).trim() === specPath,
  );
  const responses = isRecord(operation) && isRecord(operation.responses) ? operation.responses : {};
  const example = responses[status];
  if (!isRecord(example)) throw new Error(`no ${status} example for ${method} ${specPath} in ${file}`);
  if ("_synthesised_from_schema_property_examples" in example) return example.value;
  return "response" in example ? example.response : example;
}

export interface ShapeOptions {
  /**
   * Paths the actual value may lack (or leave empty where the sample has elements), each with the
   * reason. Paths read `rooms.join{}.timeline.events[].content.reason`: `.key` for object keys,
   * `[]` for array elements, `{}` for values of maps keyed by data (ids, feature names).
   */
  absentOk?: Readonly<Record<string, string>>;
  /** Paths of objects keyed by data that do not start with a Matrix sigil (those are detected). */
  maps?: readonly string[];
}

/**
 * Differences in shape between a spec sample and an actual value: every key of the sample must be in
 * the actual value with the same JSON type, recursively; values are ignored. Arrays: each event of
 * the sample (an object with a string `type`) must match some actual element of the same type;
 * other arrays compare their first elements. Maps keyed by ids (`!room`, `@user`, `$event`) or
 * listed in `maps`: the sample's first value must match some actual value.
 */
export function shapeProblems(sample: unknown, actual: unknown, opts: ShapeOptions = {}): string[] {
  return compare(sample, actual, "", opts);
}

function jsonType(value: unknown): string {
  if (value === null) return "null";
  if (Array.isArray(value)) return "array";
  return typeof value;
}

const label = (p: string): string => (p === "" ? "(root)" : p);
const join = (p: string, key: string): string => (p === "" ? key : `${p}.${key}`);

function compare(sample: unknown, actual: unknown, p: string, opts: ShapeOptions): string[] {
  const expected = jsonType(sample);
  const got = jsonType(actual);
  if (expected !== got) return [`${label(p)}: expected ${expected}, got ${got}`];
  if (Array.isArray(sample) && Array.isArray(actual)) return compareArrays(sample, actual, p, opts);
  if (isRecord(sample) && isRecord(actual)) {
    return isMap(sample, p, opts)
      ? compareMaps(sample, actual, p, opts)
      : compareObjects(sample, actual, p, opts);
  }
  return [];
}

function isMap(sample: JsonRecord, p: string, opts: ShapeOptions): boolean {
  const keys = Object.keys(sample);
  return (opts.maps ?? []).includes(p) || (keys.length > 0 && keys.every((key) => /^[!@$#]/.test(key)));
}

function compareObjects(sample: JsonRecord, actual: JsonRecord, p: string, opts: ShapeOptions): string[] {
  return Object.entries(sample).flatMap(([key, value]) => {
    const child = join(p, key);
    if (key in actual) return compare(value, actual[key], child, opts);
    return child in (opts.absentOk ?? {}) ? [] : [`${child}: missing`];
  });
}

/** Problems of the best candidate, or none if one of them matches. */
function anyMatches(sample: unknown, candidates: unknown[], p: string, opts: ShapeOptions): string[] {
  let best: string[] | undefined;
  for (const candidate of candidates) {
    const problems = compare(sample, candidate, p, opts);
    if (problems.length === 0) return [];
    if (!best || problems.length < best.length) best = problems;
  }
  return best ?? [];
}

function emptyProblem(p: string, opts: ShapeOptions): string[] {
  return p in (opts.absentOk ?? {}) ? [] : [`${label(p)}: empty, the sample has elements`];
}

function compareMaps(sample: JsonRecord, actual: JsonRecord, p: string, opts: ShapeOptions): string[] {
  const values = Object.values(actual);
  if (values.length === 0) return emptyProblem(p, opts);
  return anyMatches(Object.values(sample)[0], values, `${p}{}`, opts);
}

const eventType = (value: unknown): string | undefined =>
  isRecord(value) && typeof value.type === "string" ? value.type : undefined;

function compareArrays(sample: unknown[], actual: unknown[], p: string, opts: ShapeOptions): string[] {
  if (sample.length === 0) return [];
  if (actual.length === 0) return emptyProblem(p, opts);
  const element = `${p}[]`;
  if (eventType(sample[0]) === undefined) return compare(sample[0], actual[0], element, opts);
  return sample.flatMap((item) => {
    const type = eventType(item);
    const sameType = actual.filter((candidate) => eventType(candidate) === type);
    if (sameType.length === 0) return [`${element}: no event of type ${type}`];
    return anyMatches(item, sameType, element, opts);
  });
}
