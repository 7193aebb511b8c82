import type { IncomingMessage, ServerResponse } from "node:http";
import type { Accounts, Device } from "./accounts.js";
import { MatrixHttpError, notJson, tooLarge, unrecognized } from "./errors.js";
import type { FaultInjector, RateLimiter } from "./faults.js";
import { matchRoute, type AuthedContext, type Query, type Reply, type Route } from "./router.js";
import type { RequestRecord } from "./types.js";

const MAX_BODY_BYTES = 1024 * 1024;

export interface PipelineDeps {
  readonly routes: readonly Route[];
  readonly accounts: Accounts;
  readonly faults: FaultInjector;
  readonly limiter: RateLimiter;
  readonly record: (request: RequestRecord) => void;
  readonly onCreatedEvent: () => void;
}

interface Parsed {
  method: string;
  path: string;
  segments: string[];
  query: Query;
  token: string | undefined;
  device: Device | undefined;
  /** null when the body was over MAX_BODY_BYTES. */
  text: string | null;
}

interface Outcome {
  status: number;
  body: unknown;
  headers: Record<string, string>;
  txnId?: string;
}

/**
 * The request pipeline, in the order a real server applies it: fault injection (stands for the
 * network or a proxy), routing, authentication, body parsing, transaction replay, rate limit, handler.
 */
export function createRequestListener(
  deps: PipelineDeps,
): (req: IncomingMessage, res: ServerResponse) => void {
  const txnCache = new Map<string, Outcome>();
  return (req, res) => {
    const abort = new AbortController();
    res.on("close", () => {
      if (!res.writableFinished) abort.abort();
    });
    void handle(deps, txnCache, req, abort.signal).then(({ parsed, outcome }) => {
      send(res, outcome);
      deps.record({
        method: parsed.method,
        path: parsed.path,
        query: parsed.query,
        ...(parsed.device ? { userId: parsed.device.userId } : {}),
        status: outcome.status,
        ...(outcome.txnId === undefined ? {} : { txnId: outcome.txnId }),
      });
    });
  };
}

async function handle(
  deps: PipelineDeps,
  txnCache: Map<string, Outcome>,
  req: IncomingMessage,
  signal: AbortSignal,
): Promise<{ parsed: Parsed; outcome: Outcome }> {
  const parsed = parseRequest(req, deps.accounts, await readBody(req));
  try {
    return { parsed, outcome: await dispatch(deps, txnCache, parsed, signal) };
  } catch (error) {
    return { parsed, outcome: errorOutcome(error) };
  }
}

async function dispatch(
  deps: PipelineDeps,
  txnCache: Map<string, Outcome>,
  parsed: Parsed,
  signal: AbortSignal,
): Promise<Outcome> {
  const text = parsed.text;
  if (text === null) throw tooLarge("Request body too large");
  const fault = deps.faults.check(parsed.method, parsed.path);
  if (fault) throw fault;
  const match = matchRoute(deps.routes, parsed.method, parsed.segments);
  if (match.kind !== "found") throw unrecognized(match.kind === "none" ? 404 : 405);
  const { route, params } = match;
  const base = { method: parsed.method, path: parsed.path, params, query: parsed.query, signal };
  if (route.auth === false) return toOutcome(await route.handler({ ...base, body: parseBody(text) }));

  const device = authenticate(parsed);
  const ctx: AuthedContext = { ...base, device, body: parseBody(text) };
  const txnId = route.txnParam === undefined ? undefined : params[route.txnParam];
  const txnKey =
    txnId === undefined ? undefined : `${device.token}\u0000${parsed.method}\u0000${parsed.path}`;
  const replay = txnKey === undefined ? undefined : txnCache.get(txnKey);
  if (replay) return replay;
  if (route.rateLimited) deps.limiter.take(device.userId);
  const reply = await route.handler(ctx);
  if (reply.createdEvent) deps.onCreatedEvent();
  const outcome = { ...toOutcome(reply), ...(txnId === undefined ? {} : { txnId }) };
  // Only successes are remembered: a retry after a 429 or a failure must be able to go through.
  if (txnKey !== undefined && outcome.status < 300) txnCache.set(txnKey, outcome);
  return outcome;
}

function authenticate(parsed: Parsed): Device {
  if (parsed.token === undefined) throw new MatrixHttpError(401, "M_MISSING_TOKEN", "Missing access token");
  if (!parsed.device) {
    throw new MatrixHttpError(401, "M_UNKNOWN_TOKEN", "Unrecognised access token.", { soft_logout: false });
  }
  return parsed.device;
}

function readBody(req: IncomingMessage): Promise<string | null> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on("data", (chunk: Buffer) => {
      size += chunk.length;
      if (size <= MAX_BODY_BYTES) chunks.push(chunk);
    });
    req.on("end", () => resolve(size > MAX_BODY_BYTES ? null : Buffer.concat(chunks).toString("utf8")));
    req.on("error", () => resolve(""));
  });
}

function parseRequest(req: IncomingMessage, accounts: Accounts, text: string | null): Parsed {
  const raw = req.url ?? "/";
  const queryAt = raw.indexOf("?");
  const rawPath = queryAt < 0 ? raw : raw.slice(0, queryAt);
  const params = new URLSearchParams(queryAt < 0 ? "" : raw.slice(queryAt + 1));
  const segments = rawPath.split("/").map(decodeSegment);
  const query: Record<string, string | string[]> = {};
  for (const key of new Set(params.keys())) {
    const values = params.getAll(key);
    query[key] = values.length === 1 ? (values[0] ?? "") : values;
  }
  const token = bearerToken(req.headers.authorization) ?? params.get("access_token") ?? undefined;
  const device = token === undefined ? undefined : accounts.byToken(token);
  return { method: req.method ?? "GET", path: segments.join("/"), segments, query, token, device, text };
}

function decodeSegment(segment: string): string {
  try {
    return decodeURIComponent(segment);
  } catch {
    return segment;
  }
}

function bearerToken(header: string | undefined): string | undefined {
  const match = header === undefined ? null : /^Bearer\s+(\S+)$/i.exec(header);
  return match?.[1];
}

function parseBody(text: string): unknown {
  if (text.trim() === "") return undefined;
  try {
    return JSON.parse(text) as unknown;
  } catch {
    throw notJson();
  }
}

function toOutcome(reply: Reply): Outcome {
  return { status: reply.status ?? 200, body: reply.body, headers: {} };
}

function errorOutcome(error: unknown): Outcome {
  if (error instanceof MatrixHttpError) {
    return { status: error.status, body: error.body(), headers: { ...error.headers } };
  }
  console.error("homeserver double: internal error", error);
  return { status: 500, body: { errcode: "M_UNKNOWN", error: "Internal server error" }, headers: {} };
}

function send(res: ServerResponse, outcome: Outcome): void {
  if (res.destroyed || res.writableEnded) return;
  const payload = JSON.stringify(outcome.body);
  res.writeHead(outcome.status, {
    "Content-Type": "application/json",
    "Content-Length": Buffer.byteLength(payload),
    "Cache-Control": "no-cache, no-store, must-revalidate",
    ...outcome.headers,
  });
  res.end(payload);
}
