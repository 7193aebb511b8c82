import { badRequest, type GarageError } from "./errors.js";

/**
 * Narrowing of admin request bodies (JSON.parse output) the way Garage's serde structs read them:
 * unknown fields are ignored, `null` is the same as absent for optional fields, and a missing or
 * mistyped field is a 400 "Invalid JSON: …".
 */

export type JsonObject = Record<string, unknown>;

export function isJsonObject(value: unknown): value is JsonObject {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

const invalid = (detail: string): GarageError => badRequest(`Invalid JSON: ${detail}`);

export function parseJsonBody(raw: Buffer): unknown {
  const text = raw.toString("utf8");
  if (text.trim() === "") throw invalid("EOF while parsing a value at line 1 column 0");
  try {
    return JSON.parse(text) as unknown;
  } catch (error) {
    throw invalid(error instanceof Error ? error.message : "syntax error");
  }
}

function describe(value: unknown): string {
  if (value === null) return "null";
  if (Array.isArray(value)) return "sequence";
  if (typeof value === "object") return "map";
  return `${typeof value} ${JSON.stringify(value)}`;
}

export class JsonReader {
  private constructor(
    private readonly fields: JsonObject,
    private readonly where: string,
  ) {}

  static of(value: unknown, what: string): JsonReader {
    if (!isJsonObject(value)) throw invalid(`invalid type: ${describe(value)}, expected struct ${what}`);
    return new JsonReader(value, what);
  }

  has(name: string): boolean {
    return this.fields[name] !== undefined && this.fields[name] !== null;
  }

  string(name: string): string {
    const value = this.optString(name);
    if (value === undefined) throw invalid(`missing field \`${name}\``);
    return value;
  }

  optString(name: string): string | undefined {
    return this.optional(name, "a string", (v): v is string => typeof v === "string");
  }

  optBool(name: string): boolean | undefined {
    return this.optional(name, "a boolean", (v): v is boolean => typeof v === "boolean");
  }

  bool(name: string): boolean {
    const value = this.optBool(name);
    if (value === undefined) throw invalid(`missing field \`${name}\``);
    return value;
  }

  /** A non-negative integer (u64), or undefined when absent or null. */
  optCount(name: string): number | undefined {
    return this.optional(name, "u64", (v): v is number => Number.isSafeInteger(v) && Number(v) >= 0);
  }

  count(name: string): number {
    const value = this.optCount(name);
    if (value === undefined) throw invalid(`missing field \`${name}\``);
    return value;
  }

  object(name: string): JsonReader {
    const value = this.optObject(name);
    if (value === undefined) throw invalid(`missing field \`${name}\``);
    return value;
  }

  optObject(name: string): JsonReader | undefined {
    if (!this.has(name)) return undefined;
    return JsonReader.of(this.fields[name], `${this.where}.${name}`);
  }

  private optional<T>(name: string, expected: string, is: (value: unknown) => value is T): T | undefined {
    const value = this.fields[name];
    if (value === undefined || value === null) return undefined;
    if (!is(value)) throw invalid(`invalid type: ${describe(value)}, expected ${expected} (\`${name}\`)`);
    return value;
  }
}
