import type { IncomingMessage, ServerResponse } from "node:http";

/** Request and response plumbing shared by the admin and S3 servers. */

/** The double keeps objects in memory; beyond this a request is refused. */
export const MAX_BODY_BYTES = 64 * 1024 * 1024;

/** The whole body, or null when it is larger than MAX_BODY_BYTES (the rest is drained). */
export function readBody(req: IncomingMessage): Promise<Buffer | null> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on("data", (chunk: Buffer) => {
      size += chunk.length;
      if (size <= MAX_BODY_BYTES) chunks.push(chunk);
    });
    req.on("end", () => resolve(size > MAX_BODY_BYTES ? null : Buffer.concat(chunks)));
    req.on("error", () => resolve(Buffer.alloc(0)));
  });
}

export interface RequestTarget {
  /** As sent, still percent-encoded: what SigV4 signs. */
  readonly rawPath: string;
  readonly rawQuery: string;
}

export function splitTarget(url: string | undefined): RequestTarget {
  const raw = url ?? "/";
  const at = raw.indexOf("?");
  return at < 0 ? { rawPath: raw, rawQuery: "" } : { rawPath: raw.slice(0, at), rawQuery: raw.slice(at + 1) };
}

export interface Reply {
  readonly status: number;
  readonly headers: Readonly<Record<string, string>>;
  readonly body?: Buffer | string;
}

export function send(res: ServerResponse, reply: Reply, withBody = true): void {
  if (res.destroyed || res.writableEnded) return;
  const body = reply.body === undefined ? Buffer.alloc(0) : Buffer.from(reply.body);
  res.writeHead(reply.status, { "content-length": String(body.length), ...reply.headers });
  res.end(withBody ? body : undefined);
}
