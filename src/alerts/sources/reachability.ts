import type { Clock } from "../../clock.js";
import { formatDuration } from "../../config/duration.js";
import type { Logger } from "../../log.js";
import type { StateStore } from "../../state/store.js";
import type { Signal, SignalSink } from "../signal.js";
import { deliver, messageOf } from "./delivery.js";

/**
 * majordome's own blind spots: each dependency is probed periodically, and one that stays unreachable
 * longer than a threshold is reported (`backend-unreachable`, with the error in words), then resolved
 * when it answers again. Short blips stay quiet. What was reported is saved, so a restart still
 * resolves it.
 */

export const REACHABILITY_KEY = "alerts/reachability";

export interface Probe {
  /** "nomad", "consul", "directory": the signal's subject.backend. */
  backend: string;
  /** How the room calls it ("Nomad", "the directory"). Default: the backend. */
  label?: string;
  /** Resolves when the backend answers; rejects with the problem (its message is shown). */
  check(signal: AbortSignal): Promise<void>;
}

export interface ReachabilityOptions {
  probes: Probe[];
  clock: Clock;
  sink: SignalSink;
  log: Logger;
  /** Where reported outages are kept across restarts (best effort: the store may be the thing down). */
  store?: StateStore;
  /** Between two probes of a backend. Default 15 s. */
  intervalMs?: number;
  /** Unreachable at least this long before it is said. Default 60 s. */
  thresholdMs?: number;
  /** A probe without an answer after this long failed. Default 10 s. */
  timeoutMs?: number;
}

export interface BackendStatus {
  backend: string;
  reachable: boolean;
  /** First failure of the current outage. */
  failingSince?: number;
  error?: string;
  reported: boolean;
}

interface ReportedOutage {
  since: number;
  error: string;
}

const ERROR_LIMIT = 300;

export class ReachabilityMonitor {
  private readonly intervalMs: number;
  private readonly thresholdMs: number;
  private readonly timeoutMs: number;
  private readonly status = new Map<string, BackendStatus>();
  private abort = new AbortController();
  private loops: Promise<void>[] = [];

  constructor(private readonly opts: ReachabilityOptions) {
    this.intervalMs = opts.intervalMs ?? 15_000;
    this.thresholdMs = opts.thresholdMs ?? 60_000;
    this.timeoutMs = opts.timeoutMs ?? 10_000;
  }

  async start(): Promise<void> {
    if (this.loops.length > 0) return;
    const saved = await this.loadReported();
    for (const probe of this.opts.probes) {
      const outage = saved[probe.backend];
      this.status.set(probe.backend, {
        backend: probe.backend,
        reachable: outage === undefined,
        reported: outage !== undefined,
        ...(outage ? { failingSince: outage.since, error: outage.error } : {}),
      });
    }
    this.abort = new AbortController();
    this.loops = this.opts.probes.map((probe) => this.watch(probe));
  }

  async stop(): Promise<void> {
    this.abort.abort(new Error("stopping"));
    await Promise.all(this.loops);
    this.loops = [];
  }

  statuses(): BackendStatus[] {
    return [...this.status.values()].map((s) => ({ ...s }));
  }

  private async watch(probe: Probe): Promise<void> {
    while (!this.abort.signal.aborted) {
      const error = await this.probe(probe);
      if (this.abort.signal.aborted) break;
      await this.observe(probe, error);
      await this.opts.clock.sleep(this.intervalMs, this.abort.signal).catch(() => undefined);
    }
  }

  /** undefined when the backend answered, else the problem in words. */
  private async probe(probe: Probe): Promise<string | undefined> {
    const clock = this.opts.clock;
    const abort = new AbortController();
    const onStop = () => abort.abort(this.abort.signal.reason);
    this.abort.signal.addEventListener("abort", onStop, { once: true });
    let timer: ReturnType<Clock["setTimeout"]> | undefined;
    // A probe that ignores its signal still loses the race against the timer.
    const timeout = new Promise<string>((resolve) => {
      timer = clock.setTimeout(() => {
        abort.abort(new Error("timeout"));
        resolve(`no answer within ${formatDuration(this.timeoutMs)}`);
      }, this.timeoutMs);
    });
    const answer = probe.check(abort.signal).then(
      () => undefined,
      (error: unknown) => clip(messageOf(error)),
    );
    try {
      return await Promise.race([answer, timeout]);
    } finally {
      clock.clearTimeout(timer);
      this.abort.signal.removeEventListener("abort", onStop);
    }
  }

  private async observe(probe: Probe, error: string | undefined): Promise<void> {
    const now = this.opts.clock.now();
    const status = this.status.get(probe.backend);
    if (status === undefined) return;
    const label = probe.label ?? probe.backend;
    if (error === undefined) {
      if (status.reported) {
        const down =
          status.failingSince === undefined ? "" : ` after ${formatDuration(now - status.failingSince)}`;
        if (!(await this.emit(probe, "resolved", `${label} answers again${down}`))) return;
        this.opts.log.info({ source: "reachability", backend: probe.backend }, "backend answers again");
      }
      this.status.set(probe.backend, { backend: probe.backend, reachable: true, reported: false });
      if (status.reported) await this.saveReported();
      return;
    }
    status.reachable = false;
    status.failingSince ??= now;
    status.error = error;
    if (status.reported || now - status.failingSince < this.thresholdMs) return;
    const reason = `${label} has not answered for ${formatDuration(now - status.failingSince)}: ${error}`;
    this.opts.log.warn({ source: "reachability", backend: probe.backend, err: error }, "backend unreachable");
    if (!(await this.emit(probe, "firing", reason))) return;
    status.reported = true;
    await this.saveReported();
  }

  private emit(probe: Probe, status: Signal["status"], reason: string): Promise<boolean> {
    const { sink, clock, log } = this.opts;
    const signal: Signal = {
      kind: "backend-unreachable",
      status,
      subject: { backend: probe.backend },
      reason,
      at: clock.now(),
    };
    return deliver({ sink, clock, log, stop: this.abort.signal, source: "reachability" }, signal);
  }

  private async loadReported(): Promise<Record<string, ReportedOutage>> {
    try {
      return (await this.opts.store?.get<Record<string, ReportedOutage>>(REACHABILITY_KEY))?.value ?? {};
    } catch (error) {
      this.opts.log.warn(
        { source: "reachability", err: messageOf(error) },
        "could not read reported outages",
      );
      return {};
    }
  }

  private async saveReported(): Promise<void> {
    const reported = Object.fromEntries(
      [...this.status.values()]
        .filter((s) => s.reported)
        .map((s) => [s.backend, { since: s.failingSince ?? 0, error: s.error ?? "" }]),
    );
    try {
      await this.opts.store?.set(REACHABILITY_KEY, reported);
    } catch (error) {
      this.opts.log.warn(
        { source: "reachability", err: messageOf(error) },
        "could not save reported outages",
      );
    }
  }
}

const clip = (text: string): string =>
  text.length > ERROR_LIMIT ? `${text.slice(0, ERROR_LIMIT - 1)}…` : text;
