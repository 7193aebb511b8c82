import { badRequest, permissionDenied } from "./errors.js";
import { filterBatch, parseTopics } from "./events.js";
import { GET, STREAMED, tokenOf, type Context, type Route } from "./http.js";
import type { Simulation } from "./sim.js";
import type { EventBatch } from "./store.js";

/** The JsonHeartbeat of nomad/stream/ndjson.go, written first and then on every heartbeat tick. */
const HEARTBEAT = "{}\n";

export interface StreamOptions {
  token: string | undefined;
  heartbeatMs: number;
  control: StreamControl;
}

/**
 * Faults tests inject: "stall" (open streams send nothing, not even heartbeats: a hung connection),
 * "forbidden" (new streams get 403 Permission denied, as older Nomad versions answer a bad token),
 * "close" (new streams get 200 and are closed before any line, as recent versions do).
 */
export type StreamFault = "none" | "stall" | "forbidden" | "close";

export interface StreamControl {
  fault: StreamFault;
  /** Stream requests accepted so far. */
  opened: number;
}

/** Open streams, so close() can end them. */
export type StreamRegistry = Set<() => void>;

/**
 * GET /v1/event/stream: NDJSON, one line per raft index with the matching events. With ACLs on, a
 * bad token gets a 200 that is closed before any line (as recent Nomad versions do).
 */
export function eventRoutes(sim: Simulation, options: StreamOptions, streams: StreamRegistry): Route[] {
  const stream = (ctx: Context): typeof STREAMED => {
    const index = parseIndex(ctx.query.get("index"));
    const topics = parseTopics(ctx.query.getAll("topic"));
    if (typeof topics === "string") throw badRequest(`Invalid topic query: ${topics}`);
    const control = options.control;
    if (control.fault === "forbidden") throw permissionDenied();
    control.opened += 1;
    const res = ctx.res;
    res.writeHead(200, { "Content-Type": "application/json", "Cache-Control": "no-cache" });
    if (
      control.fault === "close" ||
      (options.token !== undefined &&
        tokenOf(ctx.req, new URL(ctx.req.url ?? "/", "http://nomad")) !== options.token)
    ) {
      res.end();
      return STREAMED;
    }
    const write = (batch: EventBatch) => {
      const visible = filterBatch(batch, topics, ctx.namespace);
      if (visible !== undefined && !res.writableEnded && control.fault !== "stall")
        res.write(`${JSON.stringify(visible)}\n`);
    };
    const beat = () => {
      if (control.fault !== "stall") res.write(HEARTBEAT);
    };
    beat();
    sim.broker.since(index).forEach(write);
    const unsubscribe = sim.broker.subscribe(write);
    const heartbeat = setInterval(beat, options.heartbeatMs);
    const end = () => {
      clearInterval(heartbeat);
      unsubscribe();
      streams.delete(end);
      if (!res.writableEnded) res.end();
    };
    streams.add(end);
    ctx.signal.addEventListener("abort", end, { once: true });
    return STREAMED;
  };
  return [{ methods: GET, path: "/v1/event/stream", handler: stream, ownAuth: true }];
}

function parseIndex(raw: string | null): number {
  if (raw === null || raw === "") return 0;
  if (!/^-?\d+$/.test(raw))
    throw badRequest(`Unable to parse index: strconv.Atoi: parsing ${JSON.stringify(raw)}: invalid syntax`);
  return Number(raw);
}
