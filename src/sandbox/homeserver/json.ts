/** JSON values as they cross the HTTP boundary; anything parsed from a request is narrowed from `unknown`. */
export type JsonValue = null | boolean | number | string | JsonValue[] | JsonObject;
export type JsonObject = { [key: string]: JsonValue };

export function isJsonObject(value: unknown): value is JsonObject {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

export function cloneJson<T extends JsonValue>(value: T): T {
  return structuredClone(value);
}

export function deepEqual(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (Array.isArray(a)) {
    return Array.isArray(b) && a.length === b.length && a.every((item, i) => deepEqual(item, b[i]));
  }
  if (isJsonObject(a) && isJsonObject(b)) {
    const keys = Object.keys(a);
    return (
      keys.length === Object.keys(b).length && keys.every((key) => key in b && deepEqual(a[key], b[key]))
    );
  }
  return false;
}

const MAX_SAFE = 2 ** 53 - 1;

/**
 * Room versions 6+ require canonical JSON: integers in [-(2^53)+1, 2^53-1], no floats. Servers reject
 * other numbers with 400 M_BAD_JSON, so a client sending 0.5 must see that here too.
 */
export function canonicalJsonProblem(value: unknown, path = "content"): string | undefined {
  if (typeof value === "number") {
    if (!Number.isInteger(value)) return `${path}: float values are not allowed in canonical JSON`;
    if (Math.abs(value) > MAX_SAFE) return `${path}: integer out of range`;
    return undefined;
  }
  if (Array.isArray(value)) {
    for (const [i, item] of value.entries()) {
      const problem = canonicalJsonProblem(item, `${path}[${i}]`);
      if (problem) return problem;
    }
    return undefined;
  }
  if (isJsonObject(value)) {
    for (const [key, item] of Object.entries(value)) {
      const problem = canonicalJsonProblem(item, `${path}.${key}`);
      if (problem) return problem;
    }
  }
  return undefined;
}

export function stringField(obj: JsonObject, key: string): string | undefined {
  const value = obj[key];
  return typeof value === "string" ? value : undefined;
}

export function objectField(obj: JsonObject, key: string): JsonObject | undefined {
  const value = obj[key];
  return isJsonObject(value) ? value : undefined;
}
