import type { Clock } from "../../clock.js";
import {
  describeCluster,
  preflightOf,
  type ClusterStatus,
  type LiveComponents,
  type Preflight,
} from "./analysis.js";
import {
  parseClusterData,
  serializeClusterData,
  withForceFail,
  type ClusterDataDocument,
  type ParsedClusterData,
} from "./cluster-data.js";
import { ConsulKvError, type KvEntry, type StolonKv } from "./kv.js";

export interface StolonBackendOptions {
  kv: StolonKv;
  /** Stolon's --store-prefix, without slashes at either end (default stolon/cluster). */
  prefix: string;
  clock: Clock;
  /** How long the cluster data may go unchanged while a sentinel is still taken as rewriting it. */
  rewriteWindowMs: number;
  /** Check-and-set attempts before giving up (the sentinel rewrites the key every few seconds). */
  casAttempts?: number;
  casBackoffMs?: number;
  /** Shortest time between two reads while following the cluster data (blocking queries can return at once). */
  followIntervalMs?: number;
}

/** Something Stolon's state forbids; nothing was written. */
export class StolonRefusal extends Error {}

export interface MasterRef {
  db: string;
  keeper: string;
}

export type MasterChange =
  | { outcome: "elected"; old: MasterRef; new: MasterRef; durationMs: number }
  | { outcome: "timeout"; old: MasterRef; durationMs: number; saw: string };

export interface ClusterKeys {
  clusterData: string;
  keepersInfo: string;
  sentinelsInfo: string;
  proxiesInfo: string;
}

/**
 * Stolon's state in Consul, read and changed as stolonctl does: one cluster data key the sentinel
 * rewrites every few seconds, and ephemeral info keys of the live keepers, sentinels and proxies.
 */
export class StolonBackend {
  /** The last ModifyIndex seen per cluster, and when it was seen to change. */
  private readonly seen = new Map<string, { index: bigint; changedAt?: number }>();
  private readonly casAttempts: number;
  private readonly casBackoffMs: number;
  private readonly followIntervalMs: number;

  constructor(private readonly opts: StolonBackendOptions) {
    this.casAttempts = opts.casAttempts ?? 8;
    this.casBackoffMs = opts.casBackoffMs ?? 250;
    this.followIntervalMs = opts.followIntervalMs ?? 500;
  }

  keys(cluster: string): ClusterKeys {
    const base = `${this.opts.prefix}/${cluster}`;
    return {
      clusterData: `${base}/clusterdata`,
      keepersInfo: `${base}/keepers/info/`,
      sentinelsInfo: `${base}/sentinels/info/`,
      proxiesInfo: `${base}/proxies/info/`,
    };
  }

  /** The cluster data key as it is now, parsed (or the reason it could not be). */
  async read(cluster: string): Promise<{ entry: KvEntry; parsed: ParsedClusterData; index: bigint }> {
    const key = this.keys(cluster).clusterData;
    const { value: entry, index } = await this.opts.kv.get(key);
    if (!entry)
      throw new StolonRefusal(`there is no cluster data at ${key}: is ${cluster} a Stolon cluster?`);
    this.observe(cluster, entry.modifyIndex);
    return { entry, parsed: parseClusterData(entry.value?.toString("utf8") ?? ""), index };
  }

  async live(cluster: string): Promise<LiveComponents> {
    const keys = this.keys(cluster);
    const uids = async (prefix: string) =>
      (await this.opts.kv.list(prefix)).value
        .map((e) => e.key.slice(prefix.length))
        .filter(Boolean)
        .sort();
    const [keepers, sentinels, proxies] = await Promise.all([
      uids(keys.keepersInfo),
      uids(keys.sentinelsInfo),
      uids(keys.proxiesInfo),
    ]);
    return { keepers, sentinels, proxies };
  }

  /** Like `stolonctl status`. Throws StolonRefusal when the cluster data cannot be read as Stolon's. */
  async status(cluster: string): Promise<ClusterStatus> {
    const { entry, parsed, index } = await this.read(cluster);
    if (!parsed.ok) throw new StolonRefusal(parsed.reason);
    const [live, rewriting] = await Promise.all([this.live(cluster), this.rewriting(cluster, index)]);
    return describeCluster(cluster, parsed.doc.view, live, rewriting, entry.modifyIndex);
  }

  /** What a failover would find; `refusal` says why it must not be attempted. */
  async preflight(cluster: string): Promise<Preflight> {
    let status: ClusterStatus;
    try {
      status = await this.status(cluster);
    } catch (error) {
      if (error instanceof StolonRefusal) return { cluster, eligible: [], refusal: error.message };
      throw error;
    }
    return preflightOf(status);
  }

  /**
   * What `stolonctl failkeeper` does: `forceFail` on the keeper, written with a check-and-set on the
   * ModifyIndex read, keeping the key's Flags and every other field. On a conflict (the sentinel wrote
   * in between) it reads again and re-applies. With `onlyWhileMaster`, refuses once the keeper is no
   * longer the master (the sentinel may have failed over on its own meanwhile).
   */
  async failkeeper(
    cluster: string,
    keeperUid: string,
    opts: { onlyWhileMaster?: boolean } = {},
  ): Promise<{ attempts: number; modifyIndex: bigint }> {
    const key = this.keys(cluster).clusterData;
    for (let attempt = 1; attempt <= this.casAttempts; attempt++) {
      const { entry, parsed } = await this.read(cluster);
      if (!parsed.ok) throw new StolonRefusal(`not written: ${parsed.reason}`);
      const { view, raw } = parsed.doc;
      if (!view.keepers[keeperUid]) throw new StolonRefusal(`keeper ${keeperUid} is not in the cluster data`);
      const masterKeeper = view.dbs[view.cluster.status.master]!.spec.keeperUID;
      if (opts.onlyWhileMaster && masterKeeper !== keeperUid)
        throw new StolonRefusal(`keeper ${keeperUid} is no longer the master (${masterKeeper} is)`);
      const text = serializeClusterData(withForceFail(raw, keeperUid));
      if (await this.opts.kv.cas(key, text, entry.modifyIndex, entry.flags)) {
        return { attempts: attempt, modifyIndex: entry.modifyIndex };
      }
      if (attempt < this.casAttempts) await this.opts.clock.sleep(this.casBackoffMs * attempt);
    }
    throw new StolonRefusal(
      `the cluster data changed under every one of ${this.casAttempts} check-and-set attempts; nothing was written`,
    );
  }

  /**
   * Follows the cluster data (blocking queries) until `cluster.status.master` is a healthy database of
   * another keeper, or the timeout passes. `progress` hears what is seen, when it changes.
   */
  async waitForNewMaster(
    cluster: string,
    old: MasterRef,
    timeoutMs: number,
    progress?: (seen: string) => void | Promise<void>,
  ): Promise<MasterChange> {
    const { clock, kv } = this.opts;
    const key = this.keys(cluster).clusterData;
    const started = clock.now();
    const deadline = started + timeoutMs;
    let index = 0n;
    let saw = "nothing read yet";
    const see = async (now: string) => {
      if (now === saw) return;
      saw = now;
      await progress?.(saw);
    };
    let lastRead = -Infinity;
    for (;;) {
      const remaining = deadline - clock.now();
      if (remaining <= 0) return { outcome: "timeout", old, durationMs: clock.now() - started, saw };
      // Consul may answer a blocking query at once (another key's write, or an index reset): pace it.
      const pause = lastRead + this.followIntervalMs - clock.now();
      if (pause > 0) await clock.sleep(Math.min(pause, remaining));
      lastRead = clock.now();
      let read;
      try {
        read = await this.until(deadline, (signal) =>
          kv.get(key, { index, waitMs: Math.min(deadline - clock.now(), 60_000), signal }),
        );
      } catch (error) {
        // A failover often comes with turbulence: Consul unreachable for a moment is not the end.
        if (!(error instanceof ConsulKvError)) throw error;
        index = 0n;
        await see(`the cluster data could not be read (${error.message})`);
        continue;
      }
      if (!read) continue;
      index = read.index < index ? 0n : read.index;
      if (!read.value) {
        await see("the cluster data key is gone");
        continue;
      }
      this.observe(cluster, read.value.modifyIndex);
      const parsed = parseClusterData(read.value.value?.toString("utf8") ?? "");
      const now = parsed.ok
        ? describeMaster(parsed.doc, old)
        : `an unreadable cluster data (${parsed.reason})`;
      if (parsed.ok) {
        const master = parsed.doc.view.cluster.status.master;
        const db = parsed.doc.view.dbs[master]!;
        const keeper = db.spec.keeperUID;
        const healthy =
          db.status?.healthy === true && parsed.doc.view.keepers[keeper]?.status?.healthy === true;
        if (master !== old.db && keeper !== old.keeper && healthy) {
          return { outcome: "elected", old, new: { db: master, keeper }, durationMs: clock.now() - started };
        }
      }
      await see(now);
    }
  }

  /** Whether a sentinel rewrote the cluster data within the window: from memory, else by watching. */
  private async rewriting(cluster: string, index: bigint): Promise<boolean> {
    const { clock, rewriteWindowMs } = this.opts;
    const changedAt = this.seen.get(cluster)?.changedAt;
    if (changedAt !== undefined && clock.now() - changedAt <= rewriteWindowMs) return true;
    const deadline = clock.now() + rewriteWindowMs;
    const key = this.keys(cluster).clusterData;
    const before = this.seen.get(cluster)?.index;
    for (;;) {
      const read = await this.until(deadline, (signal) =>
        this.opts.kv.get(key, { index, waitMs: Math.max(1, deadline - clock.now()), signal }),
      );
      if (!read?.value) return false;
      if (read.value.modifyIndex !== before) {
        this.observe(cluster, read.value.modifyIndex);
        return true;
      }
      if (clock.now() >= deadline) return false;
      index = read.index;
    }
  }

  /** Runs a read that is abandoned (undefined) when the clock reaches the deadline. */
  private async until<T>(
    deadline: number,
    read: (signal: AbortSignal) => Promise<T>,
  ): Promise<T | undefined> {
    const { clock } = this.opts;
    const abort = new AbortController();
    const timer = clock.setTimeout(
      () => abort.abort(new Error("deadline")),
      Math.max(0, deadline - clock.now()),
    );
    try {
      return await read(abort.signal);
    } catch (error) {
      if (abort.signal.aborted) return undefined;
      throw error;
    } finally {
      clock.clearTimeout(timer);
    }
  }

  private observe(cluster: string, index: bigint): void {
    const previous = this.seen.get(cluster);
    if (!previous) this.seen.set(cluster, { index });
    else if (previous.index !== index) this.seen.set(cluster, { index, changedAt: this.opts.clock.now() });
  }
}

/** In words: who is master and what the old master's keeper looks like, for progress and timeouts. */
function describeMaster(doc: ClusterDataDocument, old: MasterRef): string {
  const { view } = doc;
  const master = view.cluster.status.master;
  const keeper = view.dbs[master]!.spec.keeperUID;
  const oldKeeper = view.keepers[old.keeper]?.status;
  const oldState = oldKeeper
    ? `${old.keeper} ${oldKeeper.forceFail ? "force-failed (the sentinel has not acted yet)" : oldKeeper.healthy ? "healthy" : "unhealthy"}`
    : `${old.keeper} gone from the cluster data`;
  if (master === old.db) return `master still ${keeper} (database ${master}); ${oldState}`;
  const healthy = view.dbs[master]!.status?.healthy === true;
  return `master is now ${keeper} (database ${master}, ${healthy ? "healthy" : "not healthy yet"}); ${oldState}`;
}
