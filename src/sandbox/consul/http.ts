import type { IncomingMessage, ServerResponse } from "node:http";
import { encodeJson, type Json } from "./json.js";

/** An error answered as Consul's HTTP layer does: the status and a plain-text body. */
export class HttpError extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly headers: Headers = {},
  ) {
    super(message);
  }
}

export type Headers = Readonly<Record<string, string>>;

export interface ConsulRequest {
  readonly method: string;
  /** Percent-decoded, as Go's URL.Path (so %2F in a key is a slash). */
  readonly path: string;
  readonly query: URLSearchParams;
  readonly token: string | undefined;
  readonly body: Buffer;
  /** Size of the body as sent, even past what was kept. */
  readonly bodySize: number;
  /** Aborted when the client goes away or the double closes. */
  readonly signal: AbortSignal;
}

export type Reply =
  | { readonly kind: "json"; readonly status: number; readonly body: Json; readonly headers: Headers }
  | { readonly kind: "bytes"; readonly status: number; readonly body: Buffer; readonly headers: Headers }
  | { readonly kind: "none"; readonly status: number; readonly headers: Headers };

export const json = (body: Json, headers: Headers = {}, status = 200): Reply => ({
  kind: "json",
  status,
  body,
  headers,
});

export const noBody = (status: number, headers: Headers = {}): Reply => ({ kind: "none", status, headers });

/** Go sniffs a body written without a Content-Type: Consul's error texts go out as text/plain. */
export const text = (status: number, message: string, headers: Headers = {}): Reply => ({
  kind: "bytes",
  status,
  body: Buffer.from(message),
  headers: { "Content-Type": "text/plain; charset=utf-8", ...headers },
});

/** A ?raw KV read, with the headers Consul adds against XSS. */
export const rawValue = (value: Buffer, headers: Headers): Reply => ({
  kind: "bytes",
  status: 200,
  body: value,
  headers: {
    ...headers,
    "Content-Type": "text/plain",
    "X-Content-Type-Options": "nosniff",
    "Content-Security-Policy": "sandbox",
  },
});

/** Keeps up to `keep` bytes but reads everything, so an over-large body still gets its 413. */
export function readBody(req: IncomingMessage, keep: number): Promise<{ body: Buffer; size: number }> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on("data", (chunk: Buffer) => {
      if (size + chunk.length <= keep) chunks.push(chunk);
      size += chunk.length;
    });
    req.on("end", () => resolve({ body: Buffer.concat(chunks), size }));
    req.on("error", () => resolve({ body: Buffer.alloc(0), size: 0 }));
  });
}

export function parseRequest(
  req: IncomingMessage,
  body: { body: Buffer; size: number },
  signal: AbortSignal,
): ConsulRequest {
  const url = new URL(req.url ?? "/", "http://consul.invalid");
  let path: string;
  try {
    path = decodeURIComponent(url.pathname);
  } catch {
    throw new HttpError(400, "400 Bad Request");
  }
  return {
    method: req.method ?? "GET",
    path,
    query: url.searchParams,
    token: token(req, url.searchParams),
    body: body.body,
    bodySize: body.size,
    signal,
  };
}

/** The query parameter first, then X-Consul-Token, then a bearer token, as Consul looks. */
function token(req: IncomingMessage, query: URLSearchParams): string | undefined {
  const fromQuery = query.get("token");
  if (fromQuery) return fromQuery;
  const header = req.headers["x-consul-token"];
  if (typeof header === "string" && header !== "") return header;
  const bearer = /^Bearer\s+(\S+)/i.exec(req.headers.authorization ?? "");
  return bearer?.[1];
}

export function send(res: ServerResponse, reply: Reply): void {
  if (res.destroyed || res.writableEnded) return;
  const body =
    reply.kind === "json" ? Buffer.from(encodeJson(reply.body)) : reply.kind === "bytes" ? reply.body : null;
  const headers: Record<string, string> = { ...reply.headers };
  if (reply.kind === "json") headers["Content-Type"] = "application/json";
  headers["Content-Length"] = String(body?.length ?? 0);
  res.writeHead(reply.status, headers);
  res.end(body ?? undefined);
}
