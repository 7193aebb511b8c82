import { hostname } from "node:os";
import type { ConsulOptions } from "../backends/consul-secrets.js";
import type { Clock, TimerHandle } from "../clock.js";
import type { Logger } from "../log.js";
import { ConsulHttp, kvPath, parseEntries, unexpected } from "./consul-http.js";

export type Role = "leader" | "standby";

/** This instance does not hold the leader lock (any more): it must not act or write. */
export class NotLeaderError extends Error {}

export interface LeadershipOptions {
  consul: ConsulOptions;
  clock: Clock;
  logger: Logger;
  /** The Consul key whose lock makes the leader, e.g. "majordome/leader". */
  lockKey: string;
  /** Names this instance in the session and the lock's value (defaultInstanceId()). */
  instanceId: string;
  /** Consul accepts 10 s to 24 h; it invalidates a session after twice its TTL without a renew. */
  sessionTtlMs: number;
  /** How long Consul keeps a lock freed by a lost session from being taken again (at most 60 s). */
  lockDelayMs: number;
  /** Pause after a failed request before trying again (default 1 s). */
  retryMs?: number;
  /** Shortest time between two blocking queries on the lock key (default 1 s). */
  minLoopMs?: number;
  /** How long Consul may hold a blocking query on the lock key (default 60 s). */
  watchWaitMs?: number;
  requestTimeoutMs?: number;
}

export function defaultInstanceId(): string {
  return process.env.NOMAD_ALLOC_ID ?? `${hostname()}-${process.pid}`;
}

interface LockState {
  holder: string | undefined;
  index: number | undefined;
}

/**
 * One active instance: whoever holds a Consul session lock on `lockKey` is the leader. A standby waits on
 * a blocking query and takes the lock when it frees (after Consul's lock-delay). The session is renewed
 * every TTL/2; a renew answering 404, or no successful renew for a whole TTL, makes the leader step down
 * at once (Consul itself keeps the lock until 2 × TTL, so the deposed leader stops before anyone else
 * starts), then it competes again with a new session.
 */
export class Leadership {
  private readonly http: ConsulHttp;
  private readonly listeners = new Set<(role: Role) => void>();
  private session: string | undefined;
  private leader = false;
  private leaderSince = 0;
  private started = false;
  private stopped = false;
  private closed = false;
  /** Consul failures in a row: the first is a warning, the rest debug lines. */
  private failing = false;
  private loop: Promise<void> | undefined;
  /** Aborted (and replaced) to cut short whatever the loop is waiting on. */
  private turn = new AbortController();
  private renewTimer: TimerHandle | undefined;
  private deadlineTimer: TimerHandle | undefined;

  constructor(private readonly opts: LeadershipOptions) {
    this.http = new ConsulHttp({
      ...opts.consul,
      clock: opts.clock,
      timeoutMs: opts.requestTimeoutMs ?? Math.min(5_000, opts.sessionTtlMs / 3),
    });
  }

  start(): void {
    if (this.started) throw new Error("leadership already started");
    this.started = true;
    this.loop = this.run();
  }

  isLeader(): boolean {
    return this.leader;
  }

  role(): Role {
    return this.leader ? "leader" : "standby";
  }

  /** The session holding the lock, while this instance is the leader. */
  sessionId(): string | undefined {
    return this.leader ? this.session : undefined;
  }

  /** For ConsulStateStore: writes conditioned on this instance still holding the lock. */
  guard(): { lockKey: string; session: () => string | undefined } {
    return { lockKey: this.opts.lockKey, session: () => this.sessionId() };
  }

  /** Called on every change of role; returns the unsubscribe function. */
  onChange(listener: (role: Role) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** Asks Consul (consistent read) whether the lock is still ours; throws NotLeaderError if not, or if Consul cannot tell. */
  async confirm(): Promise<void> {
    const session = this.sessionId();
    if (!session) throw new NotLeaderError("this instance is not the leader");
    let holder: string | undefined;
    try {
      holder = (await this.readLock(0, undefined, { consistent: "" })).holder;
    } catch (error) {
      throw new NotLeaderError(`cannot confirm the leadership: ${(error as Error).message}`);
    }
    if (holder !== session) {
      if (this.session === session) this.lose(`${this.opts.lockKey} is no longer held by this instance`);
      throw new NotLeaderError(`no longer the leader: ${this.opts.lockKey} is held by another session`);
    }
    if (this.sessionId() !== session) throw new NotLeaderError("lost the leadership while confirming it");
  }

  /** Graceful stop: steps down, frees the lock (no lock-delay) and destroys the session. */
  async release(): Promise<void> {
    const session = this.session;
    await this.halt("releasing the lock");
    if (session && !this.closed) {
      try {
        // Releasing when the lock is not ours answers false and changes nothing.
        await this.http.send("PUT", kvPath(this.opts.lockKey), {
          query: { release: session },
          body: this.lockValue(),
        });
        await this.http.send("PUT", `/v1/session/destroy/${encodeURIComponent(session)}`);
        this.opts.logger.info({ instance: this.opts.instanceId }, "leader lock released");
      } catch (error) {
        this.opts.logger.warn({ err: (error as Error).message }, "could not release the leader lock");
      }
    }
    await this.close();
  }

  /** Stops competing and renewing without telling Consul: the session lapses as after a crash. */
  async stop(): Promise<void> {
    await this.halt("stopping");
    await this.close();
  }

  private async halt(reason: string): Promise<void> {
    this.stopped = true;
    this.clearTimers();
    this.turn.abort();
    if (this.leader) this.stepDown(reason);
    await this.loop;
  }

  private async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.http.close();
  }

  private async run(): Promise<void> {
    let index = 0;
    while (!this.stopped) {
      const turn = this.turn.signal;
      const startedAt = this.opts.clock.now();
      try {
        if (!this.session) {
          await this.openSession(turn);
          index = 0;
        }
        const session = this.session;
        if (!session) continue;
        const lock = await this.readLock(index, turn);
        index = nextIndex(index, lock.index);
        if (this.session !== session) continue;
        if (this.leader) {
          if (lock.holder !== session) this.lose(`${this.opts.lockKey} is no longer held by this instance`);
        } else if (lock.holder === session) {
          this.becomeLeader();
        } else if (lock.holder === undefined) {
          await this.tryAcquire(session, turn);
          index = 0;
        }
        this.failing = false;
        await this.pace(startedAt, turn);
      } catch (error) {
        if (this.stopped) break;
        if (turn.aborted) continue;
        this.logFailure("leader election", error);
        await this.opts.clock.sleep(this.opts.retryMs ?? 1_000, this.turn.signal).catch(() => undefined);
      }
    }
  }

  private async openSession(signal: AbortSignal): Promise<void> {
    const startedAt = this.opts.clock.now();
    const res = await this.http.send("PUT", "/v1/session/create", {
      body: JSON.stringify({
        Name: `majordome ${this.opts.instanceId}`,
        TTL: goDuration(this.opts.sessionTtlMs),
        LockDelay: goDuration(this.opts.lockDelayMs),
        Behavior: "release",
      }),
      signal,
    });
    if (res.status !== 200) throw unexpected(res, "PUT /v1/session/create");
    const id = (JSON.parse(res.text) as { ID?: unknown }).ID;
    if (typeof id !== "string" || id === "") throw new Error("Consul created a session without an ID");
    if (this.stopped) {
      void this.destroyQuietly(id);
      return;
    }
    this.session = id;
    this.opts.logger.debug({ session: id }, "leader election session created");
    this.renewed(startedAt);
  }

  /** Takes the free lock; when Consul refuses although nobody holds it, that is the lock-delay: wait it out. */
  private async tryAcquire(session: string, signal: AbortSignal): Promise<void> {
    const res = await this.http.send("PUT", kvPath(this.opts.lockKey), {
      query: { acquire: session },
      body: this.lockValue(),
      signal,
    });
    if (res.status !== 200) {
      // An unknown session (500 "invalid session"): it is gone, start again with a new one.
      if (res.status === 500 && /invalid session/.test(res.text)) return this.lose("the session is gone");
      throw unexpected(res, `PUT ${kvPath(this.opts.lockKey)}?acquire`);
    }
    if (res.text.trim() === "true") {
      if (this.session === session && !this.stopped) this.becomeLeader();
      return;
    }
    const again = await this.readLock(0, signal);
    if (again.holder === undefined) await this.opts.clock.sleep(this.opts.lockDelayMs, signal);
  }

  private async readLock(
    index: number,
    signal: AbortSignal | undefined,
    extra: Record<string, string> = {},
  ): Promise<LockState> {
    const path = kvPath(this.opts.lockKey);
    const waitMs = this.opts.watchWaitMs ?? 60_000;
    const blocking = index > 0;
    const res = await this.http.send("GET", path, {
      query: blocking ? { ...extra, index: String(index), wait: goDuration(waitMs) } : extra,
      ...(signal ? { signal } : {}),
      // Consul adds up to wait/16 of jitter before answering.
      ...(blocking ? { timeoutMs: waitMs + waitMs / 16 + 5_000 } : {}),
    });
    const [entry] = parseEntries(res, `GET ${path}`);
    return { holder: entry?.Session || undefined, index: res.index };
  }

  private async renew(): Promise<void> {
    const session = this.session;
    if (!session || this.stopped) return;
    const startedAt = this.opts.clock.now();
    try {
      const res = await this.http.send("PUT", `/v1/session/renew/${encodeURIComponent(session)}`);
      if (this.session !== session || this.stopped) return;
      if (res.status === 404) return this.lose("the session is gone (renew answered 404)");
      if (res.status !== 200) throw unexpected(res, "PUT /v1/session/renew");
      this.renewed(startedAt);
    } catch (error) {
      if (this.session !== session || this.stopped) return;
      this.logFailure("session renew", error);
      this.scheduleRenew(Math.min(this.opts.retryMs ?? 1_000, this.opts.sessionTtlMs / 2));
    }
  }

  /** A renew that started at `at` succeeded: the next one in TTL/2, and the deadline a TTL after `at`. */
  private renewed(at: number): void {
    const { clock, sessionTtlMs } = this.opts;
    clock.clearTimeout(this.deadlineTimer);
    this.deadlineTimer = clock.setTimeout(
      () => this.lose("no successful session renew for longer than the session TTL"),
      at + sessionTtlMs - clock.now(),
    );
    this.scheduleRenew(sessionTtlMs / 2);
  }

  private scheduleRenew(inMs: number): void {
    this.opts.clock.clearTimeout(this.renewTimer);
    this.renewTimer = this.opts.clock.setTimeout(() => void this.renew(), inMs);
  }

  /** The session cannot be trusted any more: stop leading at once, drop it, compete with a new one. */
  private lose(reason: string): void {
    const session = this.session;
    this.session = undefined;
    this.clearTimers();
    if (this.leader) this.stepDown(reason);
    else this.opts.logger.info({ reason }, "leader election session dropped");
    this.turn.abort();
    this.turn = new AbortController();
    if (session) void this.destroyQuietly(session);
  }

  private becomeLeader(): void {
    this.leader = true;
    this.leaderSince = this.opts.clock.now();
    this.opts.logger.info({ instance: this.opts.instanceId, session: this.session }, "now the leader");
    this.emit("leader");
  }

  private stepDown(reason: string): void {
    this.leader = false;
    this.opts.logger.warn({ instance: this.opts.instanceId, reason }, "stepped down: standby");
    this.emit("standby");
  }

  private emit(role: Role): void {
    for (const listener of [...this.listeners]) {
      try {
        listener(role);
      } catch (error) {
        this.opts.logger.error({ err: (error as Error).message }, "a leadership listener failed");
      }
    }
  }

  /** Rate-limits the loop: blocking queries that return at once must not spin. */
  private async pace(startedAt: number, signal: AbortSignal): Promise<void> {
    const left = (this.opts.minLoopMs ?? 1_000) - (this.opts.clock.now() - startedAt);
    if (left > 0) await this.opts.clock.sleep(left, signal);
  }

  private async destroyQuietly(session: string): Promise<void> {
    if (this.closed) return;
    try {
      await this.http.send("PUT", `/v1/session/destroy/${encodeURIComponent(session)}`);
    } catch {
      // Unreachable: the session lapses on its own after 2 × TTL.
    }
  }

  private lockValue(): string {
    const since = new Date(this.leader ? this.leaderSince : this.opts.clock.now()).toISOString();
    return JSON.stringify({ instance: this.opts.instanceId, host: hostname(), since });
  }

  private logFailure(what: string, error: unknown): void {
    const fields = { err: (error as Error).message };
    if (this.failing) this.opts.logger.debug(fields, `${what}: Consul failed again`);
    else this.opts.logger.warn(fields, `${what}: Consul failed; retrying`);
    this.failing = true;
  }

  private clearTimers(): void {
    this.opts.clock.clearTimeout(this.renewTimer);
    this.opts.clock.clearTimeout(this.deadlineTimer);
    this.renewTimer = this.deadlineTimer = undefined;
  }
}

/** The index for the next blocking query: reset when it went backwards, never 0 once known. */
function nextIndex(previous: number, answered: number | undefined): number {
  if (answered === undefined || answered < previous) return 0;
  return Math.max(answered, 1);
}

/** A Go duration string, as Consul parses TTL, LockDelay and wait. */
function goDuration(ms: number): string {
  return ms % 1000 === 0 ? `${ms / 1000}s` : `${Math.round(ms)}ms`;
}
