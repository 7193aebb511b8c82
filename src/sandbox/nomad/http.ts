import type { IncomingMessage, ServerResponse } from "node:http";
import { parseGoDuration } from "./duration.js";
import { NomadError, badRequest, invalidMethod, permissionDenied, serverError } from "./errors.js";

/**
 * The agent's HTTP layer (command/agent/http.go): routes, X-Nomad-Token, ?region=, ?namespace=,
 * JSON answers with X-Nomad-Index, text/plain errors, and blocking queries (?index=&wait=).
 */

export interface Context {
  readonly method: string;
  readonly params: Readonly<Record<string, string>>;
  readonly query: URLSearchParams;
  readonly namespace: string;
  readonly signal: AbortSignal;
  readonly req: IncomingMessage;
  readonly res: ServerResponse;
  /** decodeBody: the JSON body (400 with Go's message when absent or invalid). */
  body(): unknown;
  /** The body when present, else undefined (endpoints whose payload is optional). */
  optionalBody(): unknown;
}

export interface Reply {
  status?: number;
  body: unknown;
  /** X-Nomad-Index (and the query meta headers for reads). */
  index?: number;
  /** Raw text instead of JSON (logs with plain=true). */
  text?: string;
}

/** The handler wrote the response itself (event stream). */
export const STREAMED = Symbol("streamed");

export type Handler = (ctx: Context) => Reply | typeof STREAMED | Promise<Reply | typeof STREAMED>;

export interface Route {
  methods: readonly string[];
  path: string;
  handler: Handler;
  /** The event stream answers a bad token itself (200, then closed). */
  ownAuth?: boolean;
}

export interface HttpOptions {
  routes: readonly Route[];
  token: string | undefined;
  region: string;
}

export const GET = ["GET"];
export const WRITE = ["PUT", "POST"];

export function createListener(options: HttpOptions): (req: IncomingMessage, res: ServerResponse) => void {
  return (req, res) => {
    const abort = new AbortController();
    res.on("close", () => abort.abort());
    void readBody(req)
      .then((text) => handle(options, req, res, text, abort.signal))
      .then((reply) => {
        if (reply !== STREAMED) send(res, reply);
      })
      .catch((error: unknown) => send(res, errorReply(error)));
  };
}

async function handle(
  options: HttpOptions,
  req: IncomingMessage,
  res: ServerResponse,
  text: string,
  signal: AbortSignal,
): Promise<Reply | typeof STREAMED> {
  const url = new URL(req.url ?? "/", "http://nomad");
  const segments = url.pathname.split("/").map(decodeSegment);
  const method = req.method ?? "GET";
  const match = matchRoute(options.routes, method, segments);
  if (match === "none") return { status: 404, body: undefined, text: "" };
  if (match === "method") throw invalidMethod();
  const ctx = context(req, res, url, method, match.params, text, signal);
  if (match.route.ownAuth !== true) authorize(options.token, req, url);
  const region = url.searchParams.get("region");
  if (region !== null && region !== "" && region !== options.region) throw serverError("No path to region");
  return match.route.handler(ctx);
}

export function tokenOf(req: IncomingMessage, url: URL): string | undefined {
  const header = req.headers["x-nomad-token"];
  if (typeof header === "string" && header !== "") return header;
  const bearer = /^Bearer\s+(\S+)$/i.exec(req.headers.authorization ?? "")?.[1];
  return bearer ?? url.searchParams.get("token") ?? undefined;
}

function authorize(token: string | undefined, req: IncomingMessage, url: URL): void {
  if (token !== undefined && tokenOf(req, url) !== token) throw permissionDenied();
}

function context(
  req: IncomingMessage,
  res: ServerResponse,
  url: URL,
  method: string,
  params: Record<string, string>,
  text: string,
  signal: AbortSignal,
): Context {
  return {
    method,
    params,
    query: url.searchParams,
    namespace: url.searchParams.get("namespace") || "default",
    signal,
    req,
    res,
    body: () => decodeBody(text),
    optionalBody: () => (text.trim() === "" ? undefined : decodeBody(text)),
  };
}

function decodeBody(text: string): unknown {
  if (text === "") throw badRequest("Request body is empty");
  try {
    return JSON.parse(text) as unknown;
  } catch (error) {
    throw badRequest(goJsonError(text, error));
  }
}

/** Go's encoding/json messages for the usual mistakes. */
function goJsonError(text: string, error: unknown): string {
  if (text.trim() === "") return "EOF";
  const message = error instanceof Error ? error.message : "";
  return /Unexpected end/i.test(message)
    ? "unexpected EOF"
    : `invalid character '${text.trim()[0] ?? ""}' looking for beginning of value`;
}

type Match = { route: Route; params: Record<string, string> } | "none" | "method";

function matchRoute(routes: readonly Route[], method: string, segments: readonly string[]): Match {
  let pathMatched = false;
  for (const route of routes) {
    const params = matchPattern(route.path, segments);
    if (params === undefined) continue;
    if (route.methods.includes(method)) return { route, params };
    pathMatched = true;
  }
  return pathMatched ? "method" : "none";
}

function matchPattern(pattern: string, segments: readonly string[]): Record<string, string> | undefined {
  const parts = pattern.split("/");
  if (parts.length !== segments.length) return undefined;
  const params: Record<string, string> = {};
  for (const [i, part] of parts.entries()) {
    const segment = segments[i] ?? "";
    if (part.startsWith(":")) {
      if (segment === "") return undefined;
      params[part.slice(1)] = segment;
    } else if (part !== segment) return undefined;
  }
  return params;
}

function decodeSegment(segment: string): string {
  try {
    return decodeURIComponent(segment);
  } catch {
    return segment;
  }
}

function readBody(req: IncomingMessage): Promise<string> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    req.on("data", (chunk: Buffer) => chunks.push(chunk));
    req.on("end", () => resolve(Buffer.concat(chunks).toString("utf8")));
    req.on("error", () => resolve(""));
  });
}

function errorReply(error: unknown): Reply {
  if (error instanceof NomadError) return { status: error.status, body: undefined, text: error.message };
  console.error("nomad double: internal error", error);
  return { status: 500, body: undefined, text: error instanceof Error ? error.message : String(error) };
}

function send(res: ServerResponse, reply: Reply): void {
  if (res.destroyed || res.writableEnded) return;
  const status = reply.status ?? 200;
  const headers: Record<string, string | number> = {};
  if (reply.index !== undefined) {
    // blockingRPC never answers index 0, so a client can always block on what it got.
    headers["X-Nomad-Index"] = String(Math.max(1, reply.index));
    headers["X-Nomad-KnownLeader"] = "true";
    headers["X-Nomad-LastContact"] = "0";
  }
  const payload = reply.text ?? (reply.body === undefined ? "" : JSON.stringify(reply.body));
  if (reply.text !== undefined) headers["Content-Type"] = "text/plain";
  else if (reply.body !== undefined) headers["Content-Type"] = "application/json";
  headers["Content-Length"] = Buffer.byteLength(payload);
  res.writeHead(status, headers);
  res.end(payload);
}

/**
 * A read that found nothing: the query meta (X-Nomad-Index of the table) is still set, so a client
 * can block until the object appears (blockingRPC runs with a nil result, the agent answers 404).
 */
export const missing = (message: string, index: number): Reply => ({
  status: 404,
  body: undefined,
  text: message,
  index,
});

/** Default and maximum wait of a blocking query (structs.DefaultBlockingRPCQueryTime, MaxBlockingRPCQueryTime). */
const DEFAULT_WAIT_MS = 300_000;
const MAX_WAIT_MS = 600_000;

export interface BlockingSource {
  /** Called after every state write; returns the unsubscribe function. */
  watch(fn: () => void): () => void;
}

/**
 * A read that honours ?index=N&wait=D: answers at once when the result's index is past N, else
 * when it moves past N, or after the wait (plus Nomad's up to wait/16 jitter) with what there is.
 */
export async function blocking(ctx: Context, source: BlockingSource, compute: () => Reply): Promise<Reply> {
  const minIndex = parseIndex(ctx.query.get("index"));
  const waitMs = parseWait(ctx.query.get("wait"));
  let reply = compute();
  if (minIndex === 0 || Math.max(1, reply.index ?? 0) > minIndex) return reply;
  const deadline = Date.now() + waitMs + Math.random() * (waitMs / 16);
  while (Math.max(1, reply.index ?? 0) <= minIndex && Date.now() < deadline && !ctx.signal.aborted) {
    await nextChange(source, deadline - Date.now(), ctx.signal);
    reply = compute();
  }
  return reply;
}

function parseIndex(raw: string | null): number {
  if (raw === null || raw === "") return 0;
  if (!/^\d+$/.test(raw)) throw badRequest("Invalid index");
  return Number(raw);
}

function parseWait(raw: string | null): number {
  if (raw === null || raw === "") return DEFAULT_WAIT_MS;
  const ns = parseGoDuration(raw);
  if (ns === undefined) throw badRequest("Invalid wait time");
  return Math.min(MAX_WAIT_MS, ns / 1e6);
}

function nextChange(source: BlockingSource, timeoutMs: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      clearTimeout(timer);
      unwatch();
      signal.removeEventListener("abort", done);
      resolve();
    };
    const timer = setTimeout(done, Math.max(0, timeoutMs));
    const unwatch = source.watch(done);
    signal.addEventListener("abort", done, { once: true });
  });
}
