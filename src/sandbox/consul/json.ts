/** JSON as Consul's Go server reads and writes it: uint64 numbers, case-insensitive field names. */

export type Json = null | boolean | number | bigint | string | readonly Json[] | JsonObject;
export interface JsonObject {
  readonly [key: string]: Json | undefined;
}

export const isRecord = (value: unknown): value is Record<string, unknown> =>
  typeof value === "object" && value !== null && !Array.isArray(value);

/**
 * Encodes like Go's encoding/json: bigints (uint64 Flags) keep every digit, undefined fields are
 * left out, and <, >, & are escaped as Go does by default.
 */
export function encodeJson(value: Json): string {
  if (value === null) return "null";
  switch (typeof value) {
    case "bigint":
      return value.toString();
    case "number":
      return Number.isFinite(value) ? String(value) : "null";
    case "boolean":
      return value ? "true" : "false";
    case "string":
      return encodeString(value);
    default:
      return isJsonArray(value) ? `[${value.map(encodeJson).join(",")}]` : encodeObject(value);
  }
}

function isJsonArray(value: readonly Json[] | JsonObject): value is readonly Json[] {
  return Array.isArray(value);
}

function encodeObject(value: JsonObject): string {
  const members: string[] = [];
  for (const [key, member] of Object.entries(value)) {
    if (member !== undefined) members.push(`${encodeString(key)}:${encodeJson(member)}`);
  }
  return `{${members.join(",")}}`;
}

function encodeString(text: string): string {
  return JSON.stringify(text).replace(
    /[<>&\u2028\u2029]/g,
    (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`,
  );
}

/** The third argument of a JSON.parse reviver (source text access, Node ≥ 21). */
interface ReviverContext {
  readonly source?: string;
}

/**
 * Parses a request body. Integers beyond 2^53 come back as bigint, as Go reads them into uint64
 * exactly (Stolon's Flags value is one).
 */
export function parseJson(text: string): unknown {
  return JSON.parse(text, (_key: string, value: unknown, context?: ReviverContext): unknown => {
    if (typeof value !== "number" || Number.isSafeInteger(value)) return value;
    const source = context?.source;
    return source !== undefined && /^-?\d+$/.test(source) ? BigInt(source) : value;
  });
}

/** A field of a decoded body, matched case-insensitively as Go's mapstructure does. */
export function field(object: Record<string, unknown>, name: string): unknown {
  if (name in object) return object[name];
  const lower = name.toLowerCase();
  for (const [key, value] of Object.entries(object)) {
    if (key.toLowerCase() === lower) return value;
  }
  return undefined;
}
