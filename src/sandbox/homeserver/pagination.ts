import { invalidParam } from "./errors.js";
import type { StoredEvent } from "./room.js";

/**
 * Pagination tokens are stream positions. `s<N>` (a sync token) means "after position N";
 * `p<N>` (what /relations and /messages hand out) is the boundary position N itself. Both turn
 * into a boundary B: backwards pages take positions < B, forwards pages positions >= B.
 */
export function boundary(token: string, name: string): number {
  const match = /^([sp])(\d+)$/.exec(token);
  if (!match) throw invalidParam(`'${name}' parameter is invalid`);
  const position = Number(match[2]);
  return match[1] === "s" ? position + 1 : position;
}

export interface PageRequest {
  dir: "b" | "f";
  from?: string;
  to?: string;
  limit: number;
}

export interface Page {
  chunk: StoredEvent[];
  /** Token for the next page, when there is one. */
  next?: string;
}

/** `events` in stream order. */
export function paginate(events: readonly StoredEvent[], req: PageRequest): Page {
  const from = req.from === undefined ? undefined : boundary(req.from, "from");
  const to = req.to === undefined ? undefined : boundary(req.to, "to");
  const backwards = req.dir === "b";
  const inRange = (pos: number): boolean =>
    backwards
      ? (from === undefined || pos < from) && (to === undefined || pos >= to)
      : (from === undefined || pos >= from) && (to === undefined || pos < to);
  const candidates = events.filter((event) => inRange(event.pos));
  if (backwards) candidates.reverse();
  const chunk = candidates.slice(0, req.limit);
  const last = chunk.at(-1);
  if (!last || chunk.length === candidates.length) return { chunk };
  return { chunk, next: `p${backwards ? last.pos : last.pos + 1}` };
}

/** Parses `dir` and `limit` (Synapse caps limits at 1000). */
export function pageParams(
  query: { dir?: string; limit?: string },
  defaults: { dir: "b" | "f"; limit: number },
): { dir: "b" | "f"; limit: number } {
  const dir = query.dir ?? defaults.dir;
  if (dir !== "b" && dir !== "f") throw invalidParam("'dir' must be 'b' or 'f'");
  const limit = query.limit === undefined ? defaults.limit : Number(query.limit);
  if (!Number.isInteger(limit) || limit < 0) throw invalidParam("'limit' must be a non-negative integer");
  return { dir, limit: Math.min(limit, 1000) };
}
