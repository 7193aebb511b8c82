import { fetch, type Dispatcher } from "undici";
import { httpAgent } from "../../backends/tls.js";
import type { ConsulOptions } from "../../backends/consul-secrets.js";
import type { Clock } from "../../clock.js";
import type { Logger } from "../../log.js";
import type { StateStore } from "../../state/store.js";
import type { Signal, SignalSink } from "../signal.js";
import { backoffDelay, deliver, messageOf, type Backoff } from "./delivery.js";

/**
 * Consul health checks as signals: a blocking query on /v1/health/state/any, diffed by node and check
 * ID against what was reported. Consul's rules for blocking loops are kept: the index resets to 0 when
 * it goes backwards (a restored snapshot, a rebuilt cluster), an answered index of 0 is never sent
 * back (a query at 0 does not block, so the loop would spin), and requests are at least
 * `minIntervalMs` apart whatever Consul answers.
 */

export const CONSUL_CHECKS_KEY = "alerts/consul/checks";

/** One element of /v1/health/state/any (the fields used). */
export interface ConsulCheck {
  Node: string;
  CheckID: string;
  Name?: string;
  Status: string;
  Output?: string;
  ServiceID?: string;
  ServiceName?: string;
  ModifyIndex?: number;
}

export interface HealthStateAnswer {
  /** X-Consul-Index. */
  index: number;
  checks: ConsulCheck[];
}

export interface HealthStateApi {
  /** Every check; with `index` > 0 Consul holds the answer until something changes or `waitMs` passes. */
  checks(index: number, waitMs: number, signal: AbortSignal): Promise<HealthStateAnswer>;
}

/**
 * undici rather than the npm `consul` client: the client does pass `index` and `wait` through, but
 * only as untyped options, hands back X-Consul-Index only through an undocumented `ctx.includeResponse`
 * hook, and cannot be cancelled with an AbortSignal (needed for a prompt stop of a 5-minute query).
 */
export function consulHealthApi(
  options: ConsulOptions,
  clock: Clock,
): HealthStateApi & { close(): Promise<void> } {
  const tls = options.tls;
  const dispatcher: Dispatcher = httpAgent(tls, {
    // The blocking query is bounded by our own timer below.
    headersTimeout: 0,
    bodyTimeout: 0,
  });
  const base = options.address.replace(/\/$/, "");
  return {
    async checks(index, waitMs, signal) {
      const query = new URLSearchParams();
      if (options.datacenter) query.set("dc", options.datacenter);
      if (index > 0) {
        query.set("index", String(index));
        query.set("wait", `${Math.max(1, Math.round(waitMs))}ms`);
      }
      // Consul adds up to wait/16 of jitter; past that and a margin, the answer is not coming.
      const timeoutMs = (index > 0 ? waitMs + waitMs / 16 : 0) + 10_000;
      const abort = new AbortController();
      const onAbort = () => abort.abort(signal.reason);
      signal.addEventListener("abort", onAbort, { once: true });
      const timer = clock.setTimeout(
        () => abort.abort(new Error(`no answer within ${timeoutMs} ms`)),
        timeoutMs,
      );
      try {
        const response = await fetch(`${base}/v1/health/state/any?${query}`, {
          dispatcher,
          signal: abort.signal,
          headers: options.token ? { "X-Consul-Token": options.token } : {},
        });
        const text = await response.text();
        const said = text.trim().slice(0, 200);
        if (response.status === 403) throw new ConsulAnswerError(`Consul refused the token: ${said}`);
        if (!response.ok) throw new ConsulAnswerError(`Consul answered ${response.status}: ${said}`);
        return {
          index: Number(response.headers.get("x-consul-index") ?? 0),
          checks: JSON.parse(text) as ConsulCheck[],
        };
      } catch (error) {
        if (signal.aborted) throw signal.reason;
        if (error instanceof ConsulAnswerError) throw error;
        const cause = abort.signal.aborted ? messageOf(abort.signal.reason) : causeOf(error);
        throw new Error(`Consul is unreachable at ${options.address}: ${cause}`, { cause: error });
      } finally {
        clock.clearTimeout(timer);
        signal.removeEventListener("abort", onAbort);
      }
    },
    close: () => dispatcher.close(),
  };
}

/** Consul answered, but not with the checks. */
export class ConsulAnswerError extends Error {}

export interface ConsulHealthSourceOptions {
  api: HealthStateApi;
  store: StateStore;
  clock: Clock;
  sink: SignalSink;
  log: Logger;
  /**
   * What a check in `warning` does. "ignore" (default): nothing, neither raising nor ending an alert,
   * since warning means degraded but serving (a critical check going to warning stays one incident
   * until it passes). "alert": warning raises an alert like critical.
   */
  warning?: "ignore" | "alert";
  /** How long Consul may hold a blocking query. Default 5 min (Consul caps it at 10). */
  waitMs?: number;
  /** Minimum time between two requests, however fast Consul answers. Default 1 s. */
  minIntervalMs?: number;
  /** After a failed request. Default 1 s doubling up to 60 s, with jitter. */
  backoff?: Partial<Backoff>;
  random?: () => number;
}

/** A check reported critical and not yet resolved (persisted under CONSUL_CHECKS_KEY). */
interface ReportedCheck {
  node: string;
  check: string;
  service?: string;
  since: number;
}

/** Consul's own maintenance-mode checks: someone asked for it, not an incident. */
const MAINTENANCE = /^_(node|service)_maintenance/;
const OUTPUT_LIMIT = 200;

export class ConsulHealthSource {
  private readonly waitMs: number;
  private readonly minIntervalMs: number;
  private readonly backoff: Backoff;
  private readonly random: () => number;
  private reported = new Map<string, ReportedCheck>();
  private index = 0;
  private abort = new AbortController();
  private loop: Promise<void> | undefined;
  private requests = 0;

  constructor(private readonly opts: ConsulHealthSourceOptions) {
    this.waitMs = Math.min(opts.waitMs ?? 5 * 60_000, 10 * 60_000);
    this.minIntervalMs = opts.minIntervalMs ?? 1_000;
    this.backoff = { initialMs: opts.backoff?.initialMs ?? 1_000, maxMs: opts.backoff?.maxMs ?? 60_000 };
    this.random = opts.random ?? Math.random;
  }

  async start(): Promise<void> {
    if (this.loop !== undefined) return;
    const saved = await this.opts.store.get<Record<string, ReportedCheck>>(CONSUL_CHECKS_KEY);
    this.reported = new Map(Object.entries(saved?.value ?? {}));
    this.abort = new AbortController();
    this.loop = this.run();
  }

  async stop(): Promise<void> {
    if (this.loop === undefined) return;
    this.abort.abort(new Error("stopping"));
    await this.loop;
    this.loop = undefined;
  }

  stats(): { index: number; requests: number; critical: number } {
    return { index: this.index, requests: this.requests, critical: this.reported.size };
  }

  private get stopping(): boolean {
    return this.abort.signal.aborted;
  }

  private async run(): Promise<void> {
    const { clock, log } = this.opts;
    let failures = 0;
    while (!this.stopping) {
      const startedAt = clock.now();
      this.requests += 1;
      try {
        const answer = await this.opts.api.checks(this.index, this.waitMs, this.abort.signal);
        this.index = nextIndex(this.index, answer.index);
        await this.compare(answer.checks, answer.index);
        failures = 0;
      } catch (error) {
        if (this.stopping) break;
        const level = failures === 0 ? "warn" : "debug";
        log[level]({ source: "consul-health", err: messageOf(error) }, "Consul health query failed");
        await this.pause(backoffDelay(failures++, this.backoff, this.random));
        continue;
      }
      await this.pause(this.minIntervalMs - (clock.now() - startedAt));
    }
  }

  private async pause(ms: number): Promise<void> {
    if (ms > 0) await this.opts.clock.sleep(ms, this.abort.signal).catch(() => undefined);
  }

  private async compare(checks: readonly ConsulCheck[], index: number): Promise<void> {
    const present = new Set<string>();
    let changed = false;
    for (const check of checks) {
      if (MAINTENANCE.test(check.CheckID)) continue;
      const key = `${check.Node}/${check.CheckID}`;
      present.add(key);
      const verdict = this.verdict(check.Status);
      const open = this.reported.get(key);
      if (verdict === "alert" && open === undefined) {
        const reported: ReportedCheck = {
          node: check.Node,
          check: check.CheckID,
          ...(check.ServiceName ? { service: check.ServiceName } : {}),
          since: this.opts.clock.now(),
        };
        if (
          !(await this.emit(signalFor(reported, "firing", firingReason(check), check, this.opts.clock.now())))
        )
          return;
        this.reported.set(key, reported);
        changed = true;
      } else if (verdict === "ok" && open !== undefined) {
        const reason = `${check.Name || check.CheckID} is ${check.Status} again`;
        if (!(await this.emit(signalFor(open, "resolved", reason, check, this.opts.clock.now())))) return;
        this.reported.delete(key);
        changed = true;
      }
    }
    for (const [key, open] of [...this.reported]) {
      if (present.has(key)) continue;
      const signal = signalFor(
        open,
        "resolved",
        `check ${open.check} is no longer registered in Consul`,
        undefined,
        this.opts.clock.now(),
      );
      signal.id = `consul/${key}/gone/${index}`;
      if (!(await this.emit(signal))) return;
      this.reported.delete(key);
      changed = true;
    }
    if (changed) await this.save();
  }

  private verdict(status: string): "alert" | "ok" | "hold" {
    if (status === "critical") return "alert";
    if (status === "warning") return this.opts.warning === "alert" ? "alert" : "hold";
    return status === "passing" ? "ok" : "hold";
  }

  private emit(signal: Signal): Promise<boolean> {
    const { sink, clock, log } = this.opts;
    return deliver(
      { sink, clock, log, stop: this.abort.signal, source: "consul-health", random: this.random },
      signal,
    );
  }

  private async save(): Promise<void> {
    try {
      await this.opts.store.set(CONSUL_CHECKS_KEY, Object.fromEntries(this.reported));
    } catch (error) {
      this.opts.log.warn(
        { source: "consul-health", err: messageOf(error) },
        "could not save the reported checks",
      );
    }
  }
}

/**
 * The next blocking index: back to 0 when Consul's went backwards (then one plain read starts over),
 * and never 0 once Consul answered (a query at index 0 returns at once: the loop would spin).
 */
export function nextIndex(previous: number, answered: number): number {
  if (!(answered > 0)) return 1;
  return answered < previous ? 0 : answered;
}

function signalFor(
  reported: ReportedCheck,
  status: Signal["status"],
  reason: string,
  check: ConsulCheck | undefined,
  at: number,
): Signal {
  return {
    kind: "check-critical",
    status,
    subject: {
      check: reported.check,
      node: reported.node,
      ...(reported.service ? { service: reported.service } : {}),
    },
    reason,
    at,
    ...(check
      ? { id: `consul/${reported.node}/${reported.check}/${check.Status}/${check.ModifyIndex ?? 0}` }
      : {}),
  };
}

/** The check's name and status, and the first line of its output (trimmed: outputs can be long pages). */
function firingReason(check: ConsulCheck): string {
  const output = (check.Output ?? "").trim().split("\n")[0] ?? "";
  const clipped = output.length > OUTPUT_LIMIT ? `${output.slice(0, OUTPUT_LIMIT - 1)}…` : output;
  const what = `${check.Name || check.CheckID} is ${check.Status}`;
  return clipped === "" ? what : `${what}: ${clipped}`;
}

function causeOf(error: unknown): string {
  const cause = (error as { cause?: { code?: string; message?: string } }).cause;
  return cause?.code ?? cause?.message ?? messageOf(error);
}
