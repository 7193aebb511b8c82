import { fetch, type Dispatcher } from "undici";
import { httpAgent } from "../tls.js";
import type { Clock } from "../../clock.js";
import { isLosslessObject, parseLossless, toBigInt, type LosslessValue } from "./lossless.js";

/** One KV entry as Consul holds it; indexes and flags are uint64, kept exact. */
export interface KvEntry {
  key: string;
  value: Buffer | null;
  flags: bigint;
  createIndex: bigint;
  modifyIndex: bigint;
  session?: string;
}

export interface KvRead<T> {
  value: T;
  /** X-Consul-Index: what a blocking query passes back as ?index=. */
  index: bigint;
}

export interface ReadOptions {
  /** Blocks until Consul's index moves past this one (0 or absent: answers at once). */
  index?: bigint;
  waitMs?: number;
  signal?: AbortSignal;
}

/** What the Stolon backend needs from Consul's KV store (an interface so tests can interpose). */
export interface StolonKv {
  get(key: string, opts?: ReadOptions): Promise<KvRead<KvEntry | undefined>>;
  /** Every entry under a prefix (which should end with "/"). */
  list(prefix: string, opts?: ReadOptions): Promise<KvRead<KvEntry[]>>;
  /** Writes only if the key is still at `modifyIndex`, with these flags. False on a conflict. */
  cas(key: string, value: string, modifyIndex: bigint, flags: bigint): Promise<boolean>;
}

export interface RawConsulKvOptions {
  address: string;
  token?: string;
  datacenter?: string;
  tls?: { ca_file?: string; cert_file?: string; key_file?: string; insecure_skip_verify?: boolean };
  timeoutMs: number;
  clock: Clock;
}

export class ConsulKvError extends Error {}

/**
 * Consul's KV endpoint over undici, reading the envelope losslessly: the npm `consul` client
 * JSON.parses it, and a `Flags` above 2^53 (libkv's lock flag, which Stolon's key carries) would come
 * back rounded and be written back wrong.
 */
export class RawConsulKv implements StolonKv {
  private readonly dispatcher: Dispatcher;

  constructor(private readonly opts: RawConsulKvOptions) {
    const tls = opts.tls;
    this.dispatcher = httpAgent(tls);
  }

  async get(key: string, opts: ReadOptions = {}): Promise<KvRead<KvEntry | undefined>> {
    const { status, text, index } = await this.request("GET", key, blockingQuery(opts), opts);
    if (status === 404) return { value: undefined, index };
    return { value: entries(text, key)[0], index };
  }

  async list(prefix: string, opts: ReadOptions = {}): Promise<KvRead<KvEntry[]>> {
    const { status, text, index } = await this.request(
      "GET",
      prefix,
      ["recurse", ...blockingQuery(opts)],
      opts,
    );
    return { value: status === 404 ? [] : entries(text, prefix), index };
  }

  async cas(key: string, value: string, modifyIndex: bigint, flags: bigint): Promise<boolean> {
    const { text } = await this.request("PUT", key, [`cas=${modifyIndex}`, `flags=${flags}`], {}, value);
    const answer = text.trim();
    if (answer !== "true" && answer !== "false")
      throw new ConsulKvError(`Consul answered ${answer.slice(0, 100)} to a write of ${key}`);
    return answer === "true";
  }

  close(): Promise<void> {
    return this.dispatcher.close();
  }

  private async request(
    method: "GET" | "PUT",
    key: string,
    query: string[],
    opts: ReadOptions,
    body?: string,
  ): Promise<{ status: number; text: string; index: bigint }> {
    const params = [...query, ...(this.opts.datacenter ? [`dc=${enc(this.opts.datacenter)}`] : [])];
    const path = key.split("/").map(enc).join("/");
    const url = `${this.opts.address.replace(/\/$/, "")}/v1/kv/${path}${params.length ? `?${params.join("&")}` : ""}`;
    const timeout = new AbortController();
    const budget = (opts.index ? (opts.waitMs ?? 0) : 0) + this.opts.timeoutMs;
    const timer = this.opts.clock.setTimeout(() => timeout.abort(), budget);
    const signal = opts.signal ? AbortSignal.any([timeout.signal, opts.signal]) : timeout.signal;
    try {
      const response = await fetch(url, {
        method,
        dispatcher: this.dispatcher,
        signal,
        headers: this.opts.token ? { "X-Consul-Token": this.opts.token } : {},
        ...(body === undefined ? {} : { body }),
      });
      const text = await response.text();
      if (response.status !== 200 && !(response.status === 404 && method === "GET")) {
        throw new ConsulKvError(
          `Consul refused ${method} ${key} (HTTP ${response.status}): ${text.trim().slice(0, 300)}`,
        );
      }
      return { status: response.status, text, index: consulIndex(response.headers.get("x-consul-index")) };
    } catch (error) {
      if (error instanceof ConsulKvError) throw error;
      if (opts.signal?.aborted) throw opts.signal.reason ?? error;
      const reason = timeout.signal.aborted ? `no answer within ${budget} ms` : causeOf(error);
      throw new ConsulKvError(`Consul is unreachable at ${this.opts.address}: ${reason}`);
    } finally {
      this.opts.clock.clearTimeout(timer);
    }
  }
}

/** X-Consul-Index, exactly (0 when absent or malformed: the next read then does not block). */
function consulIndex(header: string | null): bigint {
  return header !== null && /^\d+$/.test(header) ? BigInt(header) : 0n;
}

function blockingQuery(opts: ReadOptions): string[] {
  if (!opts.index) return [];
  return [`index=${opts.index}`, `wait=${Math.max(1, Math.ceil((opts.waitMs ?? 60_000) / 1000))}s`];
}

/** The entries of a KV answer, parsed losslessly; a malformed answer is an error, never a guess. */
function entries(text: string, key: string): KvEntry[] {
  let parsed: LosslessValue;
  try {
    parsed = parseLossless(text);
  } catch (error) {
    throw new ConsulKvError(`Consul's answer for ${key} is not JSON: ${(error as Error).message}`);
  }
  if (!Array.isArray(parsed)) throw new ConsulKvError(`Consul's answer for ${key} is not a list of entries`);
  return parsed.map((item) => {
    const flags = isLosslessObject(item) ? toBigInt(item.Flags) : undefined;
    const modifyIndex = isLosslessObject(item) ? toBigInt(item.ModifyIndex) : undefined;
    const createIndex = isLosslessObject(item) ? toBigInt(item.CreateIndex) : undefined;
    if (!isLosslessObject(item) || typeof item.Key !== "string" || flags === undefined || !modifyIndex)
      throw new ConsulKvError(`Consul's answer for ${key} has an entry without Key, Flags or ModifyIndex`);
    const value = item.Value;
    return {
      key: item.Key,
      value: typeof value === "string" ? Buffer.from(value, "base64") : null,
      flags,
      modifyIndex,
      createIndex: createIndex ?? modifyIndex,
      ...(typeof item.Session === "string" ? { session: item.Session } : {}),
    };
  });
}

function causeOf(error: unknown): string {
  const cause = (error as { cause?: { code?: string; message?: string } }).cause;
  return cause?.code ?? cause?.message ?? (error as Error).message;
}

function enc(part: string): string {
  return encodeURIComponent(part);
}
