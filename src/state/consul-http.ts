import { request, type Dispatcher } from "undici";
import { httpAgent } from "../backends/tls.js";
import type { ConsulOptions } from "../backends/consul-secrets.js";
import type { Clock } from "../clock.js";

/** Consul did not answer (refused, reset, timed out): the caller may retry later. */
export class ConsulUnavailableError extends Error {}

/** Consul answered with a status the caller did not expect. */
export class ConsulError extends Error {
  constructor(
    message: string,
    readonly status: number,
  ) {
    super(message);
  }
}

export interface ConsulResponse {
  status: number;
  /** X-Consul-Index, when Consul sent one (reads). */
  index: number | undefined;
  text: string;
}

export interface ConsulRequest {
  query?: Record<string, string>;
  body?: string;
  signal?: AbortSignal;
  /** Overrides the client's timeout (blocking queries wait longer). */
  timeoutMs?: number;
}

/** A KV entry as Consul's HTTP API returns it (Value in base64). */
export interface KvEntry {
  Key: string;
  Value: string | null;
  ModifyIndex: number;
  Session?: string;
}

/** One error of a refused transaction (409). */
export interface TxnError {
  OpIndex: number;
  What: string;
}

/**
 * The few Consul calls the state store and the leader election make, over undici rather than the npm
 * `consul` client: they need X-Consul-Index for blocking queries, the 409 body of a refused transaction,
 * and abort signals, which that client hides or drops.
 */
export class ConsulHttp {
  private readonly dispatcher: Dispatcher;
  private readonly base: string;

  constructor(private readonly opts: ConsulOptions & { clock: Clock; timeoutMs: number }) {
    this.base = opts.address.replace(/\/+$/, "");
    const tls = opts.tls;
    this.dispatcher = httpAgent(tls);
  }

  /** Any status comes back as is; only a missing answer throws (ConsulUnavailableError, or the caller's abort). */
  async send(
    method: "GET" | "PUT" | "DELETE",
    path: string,
    req: ConsulRequest = {},
  ): Promise<ConsulResponse> {
    const url = new URL(this.base + path);
    for (const [name, value] of Object.entries(req.query ?? {})) url.searchParams.set(name, value);
    if (this.opts.datacenter) url.searchParams.set("dc", this.opts.datacenter);
    const timeoutMs = req.timeoutMs ?? this.opts.timeoutMs;
    const timeout = new AbortController();
    const timer = this.opts.clock.setTimeout(() => timeout.abort(), timeoutMs);
    const signal = req.signal ? AbortSignal.any([req.signal, timeout.signal]) : timeout.signal;
    try {
      const res = await request(url, {
        dispatcher: this.dispatcher,
        method,
        headers: this.opts.token ? { "x-consul-token": this.opts.token } : {},
        ...(req.body === undefined ? {} : { body: req.body }),
        signal,
      });
      const text = await res.body.text();
      const index = Number(res.headers["x-consul-index"]);
      return { status: res.statusCode, index: Number.isFinite(index) ? index : undefined, text };
    } catch (error) {
      if (req.signal?.aborted) throw req.signal.reason ?? error;
      // The path names keys, never values; the token travels in a header and stays out of messages.
      const why = timeout.signal.aborted ? `no answer within ${timeoutMs} ms` : describe(error);
      throw new ConsulUnavailableError(`Consul ${method} ${path}: ${why}`, { cause: error });
    } finally {
      this.opts.clock.clearTimeout(timer);
    }
  }

  async close(): Promise<void> {
    await this.dispatcher.destroy();
  }
}

/** /v1/kv/<key>, each segment percent-encoded (Consul decodes the path). */
export function kvPath(key: string): string {
  return "/v1/kv/" + key.split("/").map(encodeURIComponent).join("/");
}

export function unexpected(res: ConsulResponse, what: string): ConsulError {
  const text = res.text.trim().slice(0, 300);
  return new ConsulError(`Consul answered ${res.status} to ${what}${text ? `: ${text}` : ""}`, res.status);
}

export function parseEntries(res: ConsulResponse, what: string): KvEntry[] {
  if (res.status === 404) return [];
  if (res.status !== 200) throw unexpected(res, what);
  const body = JSON.parse(res.text) as unknown;
  if (!Array.isArray(body))
    throw new ConsulError(`Consul answered ${what} with something else than a list`, 200);
  return body as KvEntry[];
}

export function decodeValue(entry: Pick<KvEntry, "Value">): string {
  return entry.Value === null ? "" : Buffer.from(entry.Value, "base64").toString("utf8");
}

function describe(error: unknown): string {
  const e = error as { code?: string; message?: string; cause?: { code?: string } };
  return e.cause?.code ?? e.code ?? e.message ?? String(error);
}
