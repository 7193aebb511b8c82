import { badJson, notJson } from "./errors.js";
import { isJsonObject, type JsonObject } from "./json.js";

/** Narrowing of request bodies (JSON.parse output, so JsonValue once it is known to be an object). */

export function objectBody(body: unknown): JsonObject {
  if (!isJsonObject(body)) throw notJson("Content must be a JSON object.");
  return body;
}

/** For endpoints whose body is optional ({} when absent). */
export function optionalObjectBody(body: unknown): JsonObject {
  return body === undefined ? {} : objectBody(body);
}

export function optionalString(obj: JsonObject, key: string): string | undefined {
  const value = obj[key];
  if (value === undefined || value === null) return undefined;
  if (typeof value !== "string") throw badJson(`'${key}' must be a string`);
  return value;
}

export function requiredString(obj: JsonObject, key: string): string {
  const value = optionalString(obj, key);
  if (value === undefined) throw badJson(`Missing '${key}'`);
  return value;
}
