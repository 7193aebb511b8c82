import type { Logger } from "pino";
import type { Clock } from "../../clock.js";
import { parseClusterData } from "../../backends/stolon/cluster-data.js";
import type { KvEntry, StolonKv } from "../../backends/stolon/kv.js";
import type { StateStore } from "../../state/store.js";
import type { Signal, SignalSink } from "../signal.js";

export interface StolonAlertSourceOptions {
  kv: StolonKv;
  /** Stolon's --store-prefix (no slash at either end). */
  prefix: string;
  clusters: string[];
  store: StateStore;
  clock: Clock;
  sink: SignalSink;
  log: Logger;
  /** A keeper whose info key has not changed for this long is gone (Stolon rewrites it every 5 s). */
  keeperGoneAfterMs: number;
  /** Shortest time between two reads of a cluster (a blocking query may answer at once). Default 1 s. */
  minIntervalMs?: number;
  /** Back-off after a failed read. Default 5 s. */
  retryMs?: number;
}

interface MasterRef {
  db: string;
  keeper: string;
}

/** What was last reported for a cluster, kept under alerts/stolon/<cluster>. */
export interface StolonReported {
  master?: MasterRef;
  /** The last master change reported firing, and whether its resolution was reported. */
  masterChange?: { from: MasterRef; to: MasterRef; resolved: boolean };
  /** Keepers reported gone and not yet back. */
  gone: string[];
}

export const stolonReportedKey = (cluster: string): string => `alerts/stolon/${cluster}`;

class Stopping extends Error {}

/**
 * Watches each Stolon cluster's keys in Consul (one blocking query on the cluster's prefix covers the
 * cluster data and the keepers' info keys) and turns what changes into signals: the master moving to
 * another keeper (resolved once the new master's database is healthy), and keepers whose info key
 * disappears or stops being refreshed (resolved when it is back). Nothing about a stream is persisted:
 * on start the keys are read again and only differences from what was last reported are signalled.
 */
export class StolonAlertSource {
  private abort = new AbortController();
  private loops: Promise<void>[] = [];
  private readonly minIntervalMs: number;
  private readonly retryMs: number;

  constructor(private readonly opts: StolonAlertSourceOptions) {
    this.minIntervalMs = opts.minIntervalMs ?? 1000;
    this.retryMs = opts.retryMs ?? 5000;
  }

  async start(): Promise<void> {
    if (this.loops.length) return;
    this.abort = new AbortController();
    for (const cluster of this.opts.clusters) {
      const stored = await this.opts.store.get<StolonReported>(stolonReportedKey(cluster));
      const watch = new ClusterWatch(cluster, stored?.value ?? { gone: [] }, this.opts, this.abort.signal, {
        minIntervalMs: this.minIntervalMs,
        retryMs: this.retryMs,
      });
      this.loops.push(watch.run());
    }
  }

  async stop(): Promise<void> {
    this.abort.abort(new Stopping("stopping"));
    await Promise.all(this.loops);
    this.loops = [];
  }
}

class ClusterWatch {
  private readonly prefix: string;
  private readonly clusterDataKey: string;
  private readonly keepersPrefix: string;
  /** Each keeper info key's ModifyIndex and when it was last seen to change (this clock). */
  private readonly infoSeen = new Map<string, { modifyIndex: bigint; changedAt: number }>();
  /** The cluster data as last read (a read that timed out brings none). */
  private lastClusterData: KvEntry | undefined;
  /**
   * When reading resumed after failing: what happened to the keys meanwhile was not seen, so a keeper
   * is only judged on what it does from then on (Consul itself coming back may have dropped the
   * keepers' sessions, and their info keys are back a round later).
   */
  private watchingSince = -Infinity;

  constructor(
    private readonly cluster: string,
    private reported: StolonReported,
    private readonly opts: StolonAlertSourceOptions,
    private readonly signal: AbortSignal,
    private readonly pace: { minIntervalMs: number; retryMs: number },
  ) {
    this.prefix = `${opts.prefix}/${cluster}/`;
    this.clusterDataKey = `${this.prefix}clusterdata`;
    this.keepersPrefix = `${this.prefix}keepers/info/`;
  }

  async run(): Promise<void> {
    const { clock, log } = this.opts;
    let index = 0n;
    let failing = false;
    let lastRead = -Infinity;
    while (!this.signal.aborted) {
      try {
        const pause = lastRead + this.pace.minIntervalMs - clock.now();
        if (pause > 0) await clock.sleep(pause, this.signal);
        lastRead = clock.now();
        // Wake up at least this often, so a keeper that stops reporting is noticed on a quiet cluster.
        const waitMs = Math.max(1000, Math.floor(this.opts.keeperGoneAfterMs / 2));
        const read = await this.readUntil(clock.now() + waitMs, index, waitMs);
        if (failing) this.watchingSince = clock.now();
        if (read) {
          // An index that goes backwards (a Consul restore, tombstones reaped) starts over from 0.
          index = read.index < index ? 0n : read.index;
          await this.evaluate(read.value);
        } else {
          await this.evaluate(undefined);
        }
        if (failing) log.info({ source: "stolon", cluster: this.cluster }, "Stolon keys readable again");
        failing = false;
      } catch (error) {
        if (this.signal.aborted) break;
        if (!failing)
          log.warn(
            { source: "stolon", cluster: this.cluster, err: (error as Error).message },
            "cannot read Stolon's keys",
          );
        failing = true;
        index = 0n;
        await clock.sleep(this.pace.retryMs, this.signal).catch(() => undefined);
      }
    }
  }

  /** A blocking read of the cluster's keys, abandoned (undefined) when the clock reaches the deadline. */
  private async readUntil(deadline: number, index: bigint, waitMs: number) {
    const { clock, kv } = this.opts;
    const abort = new AbortController();
    const timer = clock.setTimeout(
      () => abort.abort(new Error("deadline")),
      Math.max(0, deadline - clock.now()),
    );
    const signal = AbortSignal.any([abort.signal, this.signal]);
    try {
      return await kv.list(this.prefix, { index, waitMs, signal });
    } catch (error) {
      if (abort.signal.aborted && !this.signal.aborted) return undefined;
      throw error;
    } finally {
      clock.clearTimeout(timer);
    }
  }

  /** Compares what the keys say now with what was last reported; `entries` undefined: nothing changed. */
  private async evaluate(entries: KvEntry[] | undefined): Promise<void> {
    const now = this.opts.clock.now();
    if (entries) this.noteInfos(entries, now);
    const clusterData = entries?.find((e) => e.key === this.clusterDataKey) ?? this.lastClusterData;
    if (entries) this.lastClusterData = clusterData;
    const parsed = clusterData ? parseClusterData(clusterData.value?.toString("utf8") ?? "") : undefined;
    const view = parsed?.ok ? parsed.doc.view : undefined;
    const signals: Signal[] = [];
    const next: StolonReported = { ...this.reported, gone: [...this.reported.gone] };

    if (view) {
      const db = view.cluster.status.master;
      const master = { db, keeper: view.dbs[db]!.spec.keeperUID };
      const healthy =
        view.dbs[db]!.status?.healthy === true && view.keepers[master.keeper]?.status?.healthy === true;
      const previous = next.master;
      if (previous && previous.db !== master.db) {
        signals.push(
          this.signalOf(
            "stolon-master-changed",
            "firing",
            master.keeper,
            now,
            `master changed from keeper ${previous.keeper} (database ${previous.db}) to keeper ${master.keeper} (database ${master.db})`,
            `master/${previous.db}->${master.db}@${clusterData!.modifyIndex}`,
          ),
        );
        const superseded = next.masterChange;
        // Said before the new change, which the signals list already holds.
        if (superseded && !superseded.resolved)
          signals.unshift(
            this.signalOf(
              "stolon-master-changed",
              "resolved",
              superseded.to.keeper,
              now,
              `superseded: the master moved on to keeper ${master.keeper}`,
              `master/${superseded.from.db}->${superseded.to.db}@${clusterData!.modifyIndex}/superseded`,
            ),
          );
        next.masterChange = { from: previous, to: master, resolved: false };
      } else if (
        next.masterChange &&
        !next.masterChange.resolved &&
        next.masterChange.to.db === master.db &&
        healthy
      ) {
        signals.push(
          this.signalOf(
            "stolon-master-changed",
            "resolved",
            master.keeper,
            now,
            `new master keeper ${master.keeper} (database ${master.db}) is healthy`,
            `master/${next.masterChange.from.db}->${master.db}@${clusterData!.modifyIndex}/healthy`,
          ),
        );
        next.masterChange = { ...next.masterChange, resolved: true };
      }
      next.master = master;
    }

    const inClusterData = new Set(view ? Object.keys(view.keepers) : []);
    const keepers = new Set([...inClusterData, ...this.infoSeen.keys(), ...next.gone]);
    const goneAfter = this.opts.keeperGoneAfterMs;
    for (const uid of [...keepers].sort()) {
      const seen = this.infoSeen.get(uid);
      const reporting = seen !== undefined && now - seen.changedAt < goneAfter;
      const silent = now - Math.max(seen?.changedAt ?? -Infinity, this.watchingSince) >= goneAfter;
      const wasGone = next.gone.includes(uid);
      if (!wasGone && view && inClusterData.has(uid) && silent) {
        const why =
          seen === undefined
            ? "its info key is gone: the keeper stopped reporting"
            : `its info key has not been updated for ${Math.round((now - seen.changedAt) / 1000)} s`;
        signals.push(this.signalOf("keeper-gone", "firing", uid, now, why, `keeper/${uid}/gone@${now}`));
        next.gone.push(uid);
      } else if (wasGone && (reporting || (view && !inClusterData.has(uid)))) {
        const why = reporting ? "its info key is updated again" : "it was removed from the cluster data";
        signals.push(this.signalOf("keeper-gone", "resolved", uid, now, why, `keeper/${uid}/back@${now}`));
        next.gone = next.gone.filter((k) => k !== uid);
      }
    }

    for (const signal of signals) await this.opts.sink(signal);
    if (JSON.stringify(next) !== JSON.stringify(this.reported)) {
      await this.opts.store.set(stolonReportedKey(this.cluster), next);
      this.reported = next;
    }
  }

  private noteInfos(entries: KvEntry[], now: number): void {
    const present = new Set<string>();
    for (const entry of entries) {
      if (!entry.key.startsWith(this.keepersPrefix)) continue;
      const uid = entry.key.slice(this.keepersPrefix.length);
      if (!uid) continue;
      present.add(uid);
      const seen = this.infoSeen.get(uid);
      if (!seen || seen.modifyIndex !== entry.modifyIndex)
        this.infoSeen.set(uid, { modifyIndex: entry.modifyIndex, changedAt: now });
    }
    for (const uid of [...this.infoSeen.keys()]) if (!present.has(uid)) this.infoSeen.delete(uid);
  }

  private signalOf(
    kind: Signal["kind"],
    status: Signal["status"],
    keeper: string,
    at: number,
    reason: string,
    id: string,
  ): Signal {
    return {
      kind,
      status,
      subject: { cluster: this.cluster, keeper },
      reason,
      at,
      id: `stolon/${this.cluster}/${id}`,
    };
  }
}
