import { badRequest } from "./errors.js";
import { JsonReader } from "./json.js";
import type { GarageStore } from "./store.js";

/** Query parameters Garage's admin router knows; others are ignored, as it does. */
const KNOWN_PARAMS = [
  "node",
  "domain",
  "format",
  "id",
  "search",
  "globalAlias",
  "alias",
  "accessKeyId",
  "showSecretKey",
] as const;

export type AdminParam = (typeof KNOWN_PARAMS)[number];

const isKnownParam = (name: string): name is AdminParam => (KNOWN_PARAMS as readonly string[]).includes(name);

/** Empty values count as absent and a repeated known parameter is refused, as in Garage's router. */
export function parseAdminQuery(rawQuery: string): Map<AdminParam, string> {
  const params = new Map<AdminParam, string>();
  for (const [name, value] of new URLSearchParams(rawQuery)) {
    if (!isKnownParam(name) || value === "") continue;
    if (params.has(name)) throw badRequest(`Query parameter repeated: '${name}'`);
    params.set(name, value);
  }
  return params;
}

export interface AdminContext {
  readonly store: GarageStore;
  readonly query: ReadonlyMap<AdminParam, string>;
  /** The parsed JSON body, for endpoints that take one. */
  readonly body: unknown;
  readonly down: boolean;
  readonly nodeId: string;
}

export function param(ctx: AdminContext, name: AdminParam): string | undefined {
  return ctx.query.get(name);
}

export function requiredParam(ctx: AdminContext, name: AdminParam): string {
  const value = ctx.query.get(name);
  if (value === undefined) throw badRequest(`Missing argument \`${name}\` for endpoint`);
  return value;
}

export function bodyOf(ctx: AdminContext, what: string): JsonReader {
  return JsonReader.of(ctx.body, what);
}
