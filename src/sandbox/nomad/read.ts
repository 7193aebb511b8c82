import { badRequest } from "./errors.js";
import { isJsonValue, isRecord, type JsonObject } from "./json.js";

/**
 * Reads one JSON object of a request body with Go's encoding/json rules: an absent or null field
 * takes the default, a field of the wrong JSON type is the 400 Go's decoder gives.
 */
export class Fields {
  constructor(
    private readonly obj: Record<string, unknown>,
    /** Go struct path for errors, e.g. "Job.TaskGroups.Tasks". */
    readonly path: string,
  ) {}

  static of(value: unknown, path: string): Fields {
    if (value !== undefined && value !== null && !isRecord(value)) throw mismatch(value, path, "object");
    return new Fields(isRecord(value) ? value : {}, path);
  }

  has(key: string): boolean {
    return this.obj[key] !== undefined && this.obj[key] !== null;
  }

  keys(): string[] {
    return Object.keys(this.obj);
  }

  raw(key: string): unknown {
    return this.obj[key];
  }

  str(key: string, fallback = ""): string {
    const value = this.obj[key];
    if (value === undefined || value === null) return fallback;
    if (typeof value !== "string") throw mismatch(value, this.at(key), "string");
    return value;
  }

  optStr(key: string): string | undefined {
    return this.has(key) ? this.str(key) : undefined;
  }

  int(key: string, fallback = 0): number {
    const value = this.obj[key];
    if (value === undefined || value === null) return fallback;
    if (typeof value !== "number" || !Number.isInteger(value)) throw mismatch(value, this.at(key), "int");
    return value;
  }

  optInt(key: string): number | undefined {
    return this.has(key) ? this.int(key) : undefined;
  }

  bool(key: string, fallback = false): boolean {
    const value = this.obj[key];
    if (value === undefined || value === null) return fallback;
    if (typeof value !== "boolean") throw mismatch(value, this.at(key), "bool");
    return value;
  }

  optBool(key: string): boolean | undefined {
    return this.has(key) ? this.bool(key) : undefined;
  }

  strings(key: string): string[] | null {
    const value = this.obj[key];
    if (value === undefined || value === null) return null;
    if (!Array.isArray(value)) throw mismatch(value, this.at(key), "[]string");
    return value.map((item) => {
      if (typeof item !== "string") throw mismatch(item, this.at(key), "string");
      return item;
    });
  }

  stringMap(key: string): Record<string, string> | null {
    const value = this.obj[key];
    if (value === undefined || value === null) return null;
    if (!isRecord(value)) throw mismatch(value, this.at(key), "map[string]string");
    const entries = Object.entries(value).map(([k, v]) => {
      if (typeof v !== "string") throw mismatch(v, this.at(key), "string");
      return [k, v] as const;
    });
    return entries.length === 0 ? null : Object.fromEntries(entries);
  }

  json(key: string): JsonObject | null {
    const value = this.obj[key];
    if (value === undefined || value === null) return null;
    if (!isRecord(value) || !isJsonValue(value))
      throw mismatch(value, this.at(key), "map[string]interface {}");
    return value;
  }

  /** Each element of an array field as Fields (null when absent). */
  list(key: string): Fields[] | null {
    const value = this.obj[key];
    if (value === undefined || value === null) return null;
    if (!Array.isArray(value)) throw mismatch(value, this.at(key), "array");
    return value.map((item) => Fields.of(item, this.at(key)));
  }

  /** A nested object field as Fields, or undefined when absent. */
  child(key: string): Fields | undefined {
    return this.has(key) ? Fields.of(this.obj[key], this.at(key)) : undefined;
  }

  private at(key: string): string {
    return `${this.path}.${key}`;
  }
}

function jsonKind(value: unknown): string {
  if (Array.isArray(value)) return "array";
  if (isRecord(value)) return "object";
  return typeof value;
}

function mismatch(value: unknown, path: string, goType: string) {
  const struct = path.split(".").slice(-2, -1)[0] ?? path;
  return badRequest(
    `json: cannot unmarshal ${jsonKind(value)} into Go struct field ${struct}.${path} of type ${goType}`,
  );
}
