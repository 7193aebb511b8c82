import { NomadError, type Blocking } from "../../backends/nomad/client.js";
import type {
  Allocation,
  Deployment,
  JobListStub,
  NodeStub,
  NomadStreamEvent,
  NomadStreamLine,
} from "../../backends/nomad/types.js";
import type { Clock, TimerHandle } from "../../clock.js";
import type { Logger } from "../../log.js";
import type { StateStore } from "../../state/store.js";
import type { Signal, SignalSink } from "../signal.js";
import { backoffDelay, deliver, messageOf, type Backoff } from "./delivery.js";
import { NomadRules, type NomadRulesOptions, type NomadRulesState } from "./nomad-rules.js";

/**
 * Follows Nomad's event stream and turns it into signals (see nomad-rules.ts). Reconnects with
 * capped, jittered exponential backoff; a watchdog treats a stream silent for too long (Nomad sends
 * a `{}` heartbeat every 30 s) as dead; resumes at the last index seen (inclusive: Nomad replays it,
 * the events already handled are dropped); after any gap re-reads the list endpoints so what happened
 * meanwhile is neither missed nor reported twice. A stream closed (or refused) before its first line
 * is an ACL problem: said once, resolved when a stream works again.
 */

export const NOMAD_EVENT_TOPICS = ["Allocation", "Deployment", "Job", "Node", "Evaluation"] as const;

export const NOMAD_POSITION_KEY = "alerts/nomad/index";
export const NOMAD_REPORTED_KEY = "alerts/nomad/reported";

/** The parts of NomadClient the source uses. */
export interface NomadEventApi {
  eventStream(topics: readonly string[], index: number, signal: AbortSignal): AsyncIterable<NomadStreamLine>;
  listAllocations(): Promise<Blocking<Allocation[]>>;
  listNodes(): Promise<Blocking<NodeStub[]>>;
  listDeployments(): Promise<Blocking<Deployment[]>>;
  listJobs(): Promise<Blocking<JobListStub[]>>;
}

export interface NomadEventSourceOptions {
  nomad: NomadEventApi;
  store: StateStore;
  clock: Clock;
  sink: SignalSink;
  log: Logger;
  rules?: Partial<NomadRulesOptions>;
  /** No line at all (heartbeats count) for this long: the stream is dead. Default 90 s. */
  watchdogMs?: number;
  /** Delay before reconnecting: doubles from `initialMs` up to `maxMs`, with jitter. */
  backoff?: { initialMs?: number; maxMs?: number };
  /**
   * The stream position is saved after this many events, or at the first frame or heartbeat this long
   * after the first unsaved one.
   */
  persist?: { everyEvents?: number; everyMs?: number };
  /**
   * Makes what the sink took durable. Called before each save of the stream position, so the sink
   * may take signals without storing each one (the stream's volume) and nothing is lost by a crash:
   * after one, the stream resumes from a position whose signals are all stored.
   */
  durable?: () => Promise<void>;
  /**
   * After each re-read of the lists: what this source holds open now. Whatever was reported before
   * and is not in it recovered meanwhile (the caller resolves it: after a crash, this source may not
   * remember having reported it).
   */
  reconciled?: (open: ReadonlyArray<Pick<Signal, "kind" | "subject">>) => Promise<void>;
  /** [0, 1); jitter. Default Math.random. */
  random?: () => number;
}

/** Where the stream is, as persisted under NOMAD_POSITION_KEY. */
interface StreamPosition {
  /** Last index handled; the stream resumes AT it. */
  index: number;
  /** Topic/Key/Type of the events handled at `index` (Nomad replays that index). */
  seen: string[];
  /** Clock time the last event was handled (task events before it were seen). */
  at: number;
  /** The ACL problem reported firing, if any. */
  authProblem?: string;
}

export interface NomadEventSourceStats {
  connected: boolean;
  /** Streams opened that delivered at least one line. */
  connections: number;
  /** Re-reads of the list endpoints. */
  syncs: number;
  events: number;
  index: number;
}

class Stalled extends Error {}
class Stopping extends Error {}

const ACL_HINT =
  "its token may lack the ACL the stream needs (namespace read-job for jobs, allocations, deployments " +
  "and evaluations, node read for nodes, on every namespace when the namespace is *): alerts from Nomad are off";

export class NomadEventSource {
  private readonly watchdogMs: number;
  private readonly backoff: Backoff;
  private readonly persistEvery: { events: number; ms: number };
  private readonly random: () => number;
  private rules = new NomadRules();
  private position: StreamPosition = { index: 0, seen: [], at: 0 };
  /** Ids of the events handled at the position's index before this process (from the saved position). */
  private seenBefore = new Set<string>();
  /** Events handled at the position's index by this process: a frame's few, compared field by field. */
  private handledAtIndex: NomadStreamEvent[] = [];
  private firstStart = true;
  /** After a re-read: per topic, the index the lists were read at (older events are already in them). */
  private readonly floors = new Map<string, number>();
  private abort = new AbortController();
  private loop: Promise<void> | undefined;
  private unsaved = 0;
  /** Lines the current (or last) stream delivered. */
  private streamLines = 0;
  /** When the oldest unsaved event was handled. */
  private unsavedSince = 0;
  private saving: Promise<void> = Promise.resolve();
  private readonly counters: NomadEventSourceStats = {
    connected: false,
    connections: 0,
    syncs: 0,
    events: 0,
    index: 0,
  };

  constructor(private readonly opts: NomadEventSourceOptions) {
    this.watchdogMs = opts.watchdogMs ?? 90_000;
    this.backoff = { initialMs: opts.backoff?.initialMs ?? 1_000, maxMs: opts.backoff?.maxMs ?? 60_000 };
    this.persistEvery = { events: opts.persist?.everyEvents ?? 10_000, ms: opts.persist?.everyMs ?? 5_000 };
    this.random = opts.random ?? Math.random;
  }

  async start(): Promise<void> {
    if (this.loop !== undefined) return;
    const [position, reported] = await Promise.all([
      this.opts.store.get<StreamPosition>(NOMAD_POSITION_KEY),
      this.opts.store.get<NomadRulesState>(NOMAD_REPORTED_KEY),
    ]);
    this.firstStart = position === undefined;
    this.position = position?.value ?? { index: 0, seen: [], at: 0 };
    this.seenBefore = new Set(this.position.seen);
    this.handledAtIndex = [];
    this.rules = new NomadRules(this.opts.rules, reported?.value);
    this.abort = new AbortController();
    this.loop = this.run();
  }

  /** Ends the stream at once and saves the position. */
  async stop(): Promise<void> {
    if (this.loop === undefined) return;
    this.abort.abort(new Stopping("stopping"));
    await this.loop;
    this.loop = undefined;
    await this.save();
  }

  stats(): NomadEventSourceStats {
    return { ...this.counters, index: this.position.index };
  }

  private get stopping(): boolean {
    return this.abort.signal.aborted;
  }

  private async run(): Promise<void> {
    let attempt = 0;
    let needSync = true;
    while (!this.stopping) {
      try {
        if (needSync) {
          await this.sync();
          needSync = false;
        }
        await this.follow();
        needSync = true;
        if (this.streamLines === 0)
          await this.reportAuthProblem("closed the event stream before sending anything");
      } catch (error) {
        if (this.stopping) break;
        // Whatever broke, something may have happened meanwhile.
        needSync = true;
        if (error instanceof NomadError && error.kind === "forbidden") {
          await this.reportAuthProblem(`refused majordome (${error.message})`);
        } else if (error instanceof Stalled) {
          this.opts.log.warn({ source: "nomad-events" }, error.message);
        } else {
          // Said once per outage; the reachability probes report Nomad being down.
          const level = attempt === 0 || this.streamLines > 0 ? "warn" : "debug";
          this.opts.log[level](
            { source: "nomad-events", err: messageOf(error) },
            "Nomad event stream failed",
          );
        }
      }
      if (this.stopping) break;
      // A stream that worked for a while starts the backoff over.
      if (this.streamLines > 0) attempt = 0;
      this.streamLines = 0;
      await this.opts.clock.sleep(this.delay(attempt++), this.abort.signal).catch(() => undefined);
    }
    this.counters.connected = false;
  }

  private delay(attempt: number): number {
    return backoffDelay(attempt, this.backoff, this.random);
  }

  /** One stream, until it ends (counting its lines in streamLines). */
  private async follow(): Promise<void> {
    const clock = this.opts.clock;
    const stream = new AbortController();
    const onStop = () => stream.abort(this.abort.signal.reason);
    this.abort.signal.addEventListener("abort", onStop, { once: true });
    let lastLineAt = clock.now();
    let watchdog: TimerHandle | undefined;
    const watch = (ms: number) => {
      watchdog = clock.setTimeout(() => {
        const silent = clock.now() - lastLineAt;
        if (silent < this.watchdogMs) return watch(this.watchdogMs - silent);
        stream.abort(
          new Stalled(`Nomad's event stream sent nothing for ${Math.round(silent / 1000)} s: reconnecting`),
        );
      }, ms);
    };
    watch(this.watchdogMs);
    this.streamLines = 0;
    try {
      for await (const line of this.opts.nomad.eventStream(
        NOMAD_EVENT_TOPICS,
        this.position.index,
        stream.signal,
      )) {
        lastLineAt = clock.now();
        if (this.streamLines++ === 0) await this.connected();
        if (line.kind === "frame") {
          const handing = this.handle(line.events);
          if (handing) await handing;
        } else await this.expire();
        // Time spent handing signals over is not the stream's silence.
        lastLineAt = clock.now();
      }
    } catch (error) {
      throw stream.signal.aborted ? stream.signal.reason : error;
    } finally {
      clock.clearTimeout(watchdog);
      this.abort.signal.removeEventListener("abort", onStop);
      this.counters.connected = false;
    }
  }

  private async connected(): Promise<void> {
    this.counters.connected = true;
    this.counters.connections += 1;
    this.opts.log.info(
      { source: "nomad-events", index: this.position.index },
      "Nomad event stream connected",
    );
    const problem = this.position.authProblem;
    if (problem === undefined) return;
    delete this.position.authProblem;
    await this.emit(this.backendSignal("resolved", "Nomad's event stream works again"));
    await this.save();
  }

  /** Synchronous for the frames that raise nothing and need no save (most): no promise per line. */
  private handle(events: readonly NomadStreamEvent[]): Promise<void> | undefined {
    const now = this.opts.clock.now();
    let signals: Signal[] | undefined;
    for (const event of events) {
      if (!this.isNew(event) || event.Index <= (this.floors.get(event.Topic) ?? 0)) continue;
      this.counters.events += 1;
      const raised = this.rules.onEvent(event, now);
      if (raised.length > 0) (signals ??= []).push(...raised);
      this.countUnsaved();
    }
    this.position.at = now;
    if (signals === undefined) return this.saveSoon();
    return this.emitAll(signals).then(() => this.saveSoon());
  }

  private async emitAll(signals: readonly Signal[]): Promise<void> {
    for (const signal of signals) await this.emit(signal);
  }

  /** Conditions that end by time passing (restart loops), looked at on each heartbeat. */
  private async expire(): Promise<void> {
    const signals = this.rules.expire(this.opts.clock.now());
    if (signals.length > 0) {
      await this.emitAll(signals);
      this.countUnsaved();
    }
    // Also what a quiet stream has not saved yet: a heartbeat comes every 30 s.
    await this.saveSoon();
  }

  /** Events before the resume index, or at it and already handled, are replays. */
  private isNew(event: NomadStreamEvent): boolean {
    if (event.Index < this.position.index) return false;
    if (event.Index > this.position.index) {
      this.position.index = event.Index;
      this.forgetHandledAtIndex();
      this.handledAtIndex.push(event);
      return true;
    }
    if (this.seenBefore.size > 0 && this.seenBefore.has(eventId(event))) return false;
    const handled = this.handledAtIndex.some(
      (e) => e.Topic === event.Topic && e.Key === event.Key && e.Type === event.Type,
    );
    if (!handled) this.handledAtIndex.push(event);
    return !handled;
  }

  private forgetHandledAtIndex(): void {
    this.seenBefore.clear();
    this.handledAtIndex = [];
  }

  /** Re-reads the current state after a gap and reports the difference with what was reported. */
  private async sync(): Promise<void> {
    const nomad = this.opts.nomad;
    const [allocations, nodes, deployments, jobs] = await Promise.all([
      nomad.listAllocations(),
      nomad.listNodes(),
      nomad.listDeployments(),
      nomad.listJobs(),
    ]);
    const signals = this.rules.reconcile(
      {
        allocations: allocations.value,
        nodes: nodes.value,
        deployments: deployments.value,
        jobs: jobs.value,
        index: allocations.index,
      },
      {
        at: this.opts.clock.now(),
        changedAfter: this.firstStart ? undefined : this.position.index,
        seenUntil: this.position.at,
      },
    );
    for (const signal of signals) await this.emit(signal);
    await this.opts.reconciled?.(this.rules.openConditions());
    this.floors.clear();
    this.floors.set("Allocation", allocations.index);
    this.floors.set("Node", nodes.index);
    this.floors.set("Deployment", deployments.index);
    this.floors.set("Job", jobs.index);
    // Everything up to the oldest list's index is in the lists: no need to replay before it.
    const read = Math.min(...[...this.floors.values()].filter((i) => i > 0));
    if (Number.isFinite(read) && read > this.position.index) {
      this.position.index = read;
      this.forgetHandledAtIndex();
    }
    this.position.at = this.opts.clock.now();
    this.firstStart = false;
    this.counters.syncs += 1;
    this.countUnsaved();
    await this.save();
  }

  private async reportAuthProblem(what: string): Promise<void> {
    if (this.position.authProblem !== undefined) return;
    const reason = `Nomad ${what}: ${ACL_HINT}`;
    this.position.authProblem = reason;
    this.opts.log.error({ source: "nomad-events" }, reason);
    await this.emit(this.backendSignal("firing", reason));
    await this.save();
  }

  private backendSignal(status: Signal["status"], reason: string): Signal {
    return {
      kind: "backend-unreachable",
      status,
      subject: { backend: "nomad-events" },
      reason,
      at: this.opts.clock.now(),
    };
  }

  private async emit(signal: Signal): Promise<void> {
    const { sink, clock, log } = this.opts;
    await deliver(
      { sink, clock, log, stop: this.abort.signal, source: "nomad-events", random: this.random },
      signal,
    );
  }

  private countUnsaved(): void {
    if (this.unsaved++ === 0) this.unsavedSince = this.opts.clock.now();
  }

  /**
   * The position and the reported conditions are saved after `events` events or `ms` after the first
   * unsaved one, not after each: a write per event would cost a state-store write per line during a
   * storm. A crash loses at most that much progress, and the restart replays it from Nomad's buffer:
   * replayed events give the same signal ids (the engine drops them) and the re-read fills the rest.
   * Called only between frames and on heartbeats, where every signal the rules gave has reached the
   * sink (see save).
   */
  private saveSoon(): Promise<void> | undefined {
    if (this.unsaved === 0) return undefined;
    const due =
      this.unsaved >= this.persistEvery.events ||
      this.opts.clock.now() - this.unsavedSince >= this.persistEvery.ms;
    return due ? this.save() : undefined;
  }

  /**
   * The rules' state and the position are taken together, when called: where nothing the rules gave
   * is still on its way to the sink. Taken later (after `durable`, as this once did), the rules could
   * remember having resolved something the saved position has not reached: after a crash, the replay
   * found nothing open to resolve, and the incident stayed open (found by the crash harness).
   */
  private save(): Promise<void> {
    const pending = this.unsaved;
    const reported = this.rules.exportState();
    const position: StreamPosition = {
      ...this.position,
      seen: [...this.seenBefore, ...this.handledAtIndex.map(eventId)],
    };
    this.saving = this.saving.then(async () => {
      try {
        await this.opts.durable?.();
        await this.opts.store.set(NOMAD_REPORTED_KEY, reported);
        await this.opts.store.set(NOMAD_POSITION_KEY, position);
        this.unsaved = Math.max(0, this.unsaved - pending);
        if (this.unsaved > 0) this.unsavedSince = this.opts.clock.now();
      } catch (error) {
        this.opts.log.warn(
          { source: "nomad-events", err: messageOf(error) },
          "could not save the stream position",
        );
      }
    });
    return this.saving;
  }
}

const eventId = (event: NomadStreamEvent): string => `${event.Topic}/${event.Key}/${event.Type}`;
