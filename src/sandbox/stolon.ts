import { randomUUID } from "node:crypto";
import { isLosslessNumber, LosslessNumber, parse, stringify } from "lossless-json";
import type { Clock, TimerHandle } from "../clock.js";

/**
 * A double of a Stolon cluster's processes as Consul sees them: keepers and proxies that refresh
 * their ephemeral info keys, and a sentinel that rewrites the cluster data every sleep interval with a
 * check-and-set, notices `forceFail` on the master's keeper and elects a standby. It talks to the
 * Consul double over HTTP as the real processes do through libkv (ephemeral keys are held by TTL
 * sessions with Behavior=delete, writes carry libkv's lock flag). Field names follow Stolon's Go struct
 * tags (see the constructed samples in shared/reference/stolon/); what a real sentinel also does —
 * convergence timeouts, resyncs, removing old masters' databases, waiting for proxies before naming
 * the new master to them — is left out: here the old master's database simply turns standby.
 */

/** libkv's api.LockFlagValue, which every libkv Put sets as the key's Flags (above 2^53). */
export const LIBKV_LOCK_FLAGS = "3304740253564472344";
/** Stolon's default maxStandbyLag (1024 * 1204). */
const MAX_STANDBY_LAG = 1024n * 1204n;
/** How much WAL the master writes per round. */
const WAL_PER_ROUND = 16_384n;
/** libkv sets TTL/2 on the session (Consul invalidates after twice the TTL): info keys go 20 s after the last refresh. */
const INFO_SESSION_TTL = "10s";

export interface StolonDoubleOptions {
  consulUrl: string;
  clock: Clock;
  cluster?: string;
  prefix?: string;
  /** The sentinel's and keepers' sleepInterval (Stolon's default: 5 s). */
  sleepIntervalMs?: number;
  synchronousReplication?: boolean;
}

export interface StolonDouble {
  readonly cluster: string;
  readonly clusterDataKey: string;
  readonly keepers: readonly string[];
  /** One round now: keepers and proxies refresh their info keys, the sentinel rewrites the cluster data. */
  tick(): Promise<void>;
  /** Resolves when the rounds due so far have run. */
  idle(): Promise<void>;
  /** The master as the sentinel last wrote it. */
  master(): { db: string; keeper: string };
  /** The keeper stops: its info key is no longer refreshed (it disappears when its session expires). */
  keeperDown(uid: string): void;
  keeperUp(uid: string): void;
  /** Standbys fall behind the master by more than maxStandbyLag (none is in sync), or catch up. */
  noSyncStandby(on: boolean): void;
  /** Replaces the cluster data by something Stolon could not read; `repair` puts the last good one back. */
  corrupt(): Promise<void>;
  repair(): Promise<void>;
  /** The sentinel stops (no rewrite, no info refresh), or starts again. */
  pause(): void;
  resume(): void;
  /** In words, for `sim: stolon`. */
  describe(): string;
  close(): Promise<void>;
}

type Json = null | boolean | string | LosslessNumber | Json[] | { [key: string]: Json };
type JsonObject = { [key: string]: Json };

interface Keeper {
  uid: string;
  db: string;
  address: string;
  bootUUID: string;
  up: boolean;
  session?: string;
}

interface Component {
  uid: string;
  session?: string;
}

export async function startStolonDouble(opts: StolonDoubleOptions): Promise<StolonDouble> {
  const double = new StolonProcesses(opts);
  await double.seed();
  return double;
}

class StolonProcesses implements StolonDouble {
  readonly cluster: string;
  readonly clusterDataKey: string;
  private readonly base: string;
  private readonly interval: number;
  private readonly keeperList: Keeper[] = [
    { uid: "keeper_a", db: "5a363897", address: "10.0.0.1", bootUUID: randomUUID(), up: true },
    { uid: "keeper_b", db: "7c1e0a11", address: "10.0.0.2", bootUUID: randomUUID(), up: true },
    { uid: "keeper_c", db: "9d2f3b22", address: "10.0.0.3", bootUUID: randomUUID(), up: true },
  ];
  private readonly sentinel: Component = { uid: "c1d2e3f4" };
  private readonly proxies: Component[] = [{ uid: "1a2b3c4d" }, { uid: "5e6f7a8b" }];
  private masterDb = "5a363897";
  private masterXLogPos = 318_767_104n;
  private proxyGeneration = 1;
  private lagging = false;
  private paused = false;
  private closed = false;
  private lastGood = "";
  /** The infoUID of each keeper's info when the sentinel last looked: an unchanged one is not updated. */
  private readonly seenInfo = new Map<string, string>();
  private chain: Promise<void> = Promise.resolve();
  private timer: TimerHandle | undefined;
  private lastError = "";

  constructor(private readonly opts: StolonDoubleOptions) {
    this.cluster = opts.cluster ?? "pg";
    this.base = `${opts.prefix ?? "stolon/cluster"}/${this.cluster}`;
    this.clusterDataKey = `${this.base}/clusterdata`;
    this.interval = opts.sleepIntervalMs ?? 5000;
  }

  get keepers(): readonly string[] {
    return this.keeperList.map((k) => k.uid);
  }

  async seed(): Promise<void> {
    await this.refreshInfos();
    const text = stringify(this.initialClusterData())!;
    await this.put(this.clusterDataKey, text, [`flags=${LIBKV_LOCK_FLAGS}`]);
    this.lastGood = text;
    await this.refreshSentinelInfo();
    this.schedule();
  }

  tick(): Promise<void> {
    this.chain = this.chain.then(() => this.round());
    return this.chain;
  }

  idle(): Promise<void> {
    return this.chain;
  }

  master(): { db: string; keeper: string } {
    return { db: this.masterDb, keeper: this.keeperOfDb(this.masterDb) };
  }

  keeperDown(uid: string): void {
    this.keeper(uid).up = false;
  }

  keeperUp(uid: string): void {
    this.keeper(uid).up = true;
  }

  noSyncStandby(on: boolean): void {
    this.lagging = on;
  }

  async corrupt(): Promise<void> {
    await this.chain;
    await this.put(this.clusterDataKey, '{"formatVersion":1,"cluster":{"uid":', [
      `flags=${LIBKV_LOCK_FLAGS}`,
    ]);
  }

  async repair(): Promise<void> {
    await this.chain;
    await this.put(this.clusterDataKey, this.lastGood, [`flags=${LIBKV_LOCK_FLAGS}`]);
  }

  pause(): void {
    this.paused = true;
  }

  resume(): void {
    this.paused = false;
  }

  describe(): string {
    const keepers = this.keeperList
      .map((k) => `${k.uid}${k.db === this.masterDb ? " (master)" : ""}${k.up ? "" : " DOWN"}`)
      .join(", ");
    return [
      `stolon cluster ${this.cluster}: keepers ${keepers}`,
      `sentinel ${this.paused ? "paused" : "running"}, standbys ${this.lagging ? "lagging (none in sync)" : "in sync"}`,
      ...(this.lastError ? [`last error: ${this.lastError}`] : []),
    ].join("; ");
  }

  async close(): Promise<void> {
    this.closed = true;
    this.opts.clock.clearTimeout(this.timer);
    await this.chain;
  }

  /** Rounds at a fixed rate on the clock, run one after another (a manual clock may fire several at once). */
  private schedule(): void {
    if (this.closed) return;
    this.timer = this.opts.clock.setTimeout(() => {
      void this.tick();
      this.schedule();
    }, this.interval);
  }

  private async round(): Promise<void> {
    if (this.closed) return;
    try {
      this.masterXLogPos += WAL_PER_ROUND;
      await this.refreshInfos();
      if (this.paused) return;
      await this.refreshSentinelInfo();
      await this.rewriteClusterData();
      this.lastError = "";
    } catch (error) {
      this.lastError = (error as Error).message;
    }
  }

  private async refreshInfos(): Promise<void> {
    for (const keeper of this.keeperList) {
      if (!keeper.up) continue;
      await this.putEphemeral(`${this.base}/keepers/info/${keeper.uid}`, keeper, this.keeperInfo(keeper));
    }
    for (const proxy of this.proxies) {
      await this.putEphemeral(`${this.base}/proxies/info/${proxy.uid}`, proxy, {
        infoUID: shortUid(),
        UID: proxy.uid,
        Generation: num(this.proxyGeneration),
        ProxyTimeout: new LosslessNumber("15000000000"),
      });
    }
  }

  private refreshSentinelInfo(): Promise<void> {
    return this.putEphemeral(`${this.base}/sentinels/info/${this.sentinel.uid}`, this.sentinel, {
      UID: this.sentinel.uid,
    });
  }

  private keeperInfo(keeper: Keeper): JsonObject {
    const isMaster = keeper.db === this.masterDb;
    const behind = isMaster ? 0n : this.lagging ? 2n * MAX_STANDBY_LAG : 0n;
    return {
      infoUID: shortUid(),
      uid: keeper.uid,
      clusterUID: "5c41c64c",
      bootUUID: keeper.bootUUID,
      postgresBinaryVersion: { Maj: num(15), Min: num(4) },
      postgresState: {
        uid: keeper.db,
        generation: num(1),
        listenAddress: keeper.address,
        port: "5432",
        healthy: true,
        systemID: "6995433573035143173",
        timelineID: num(3),
        xLogPos: num(this.masterXLogPos - behind),
        synchronousStandbys: this.syncStandbysReported(isMaster),
      },
      canBeMaster: true,
      canBeSynchronousReplica: true,
    };
  }

  /** What the master's PostgreSQL reports as in-sync standbys (only with synchronous replication). */
  private syncStandbysReported(isMaster: boolean): Json {
    if (!isMaster || !this.opts.synchronousReplication || this.lagging) return null;
    return this.keeperList
      .filter((k) => k.up && k.db !== this.masterDb)
      .map((k) => k.db)
      .sort();
  }

  /** The sentinel's round: read, update health from the info keys, elect if the master failed, CAS-write. */
  private async rewriteClusterData(): Promise<void> {
    const entry = await this.get(this.clusterDataKey);
    if (!entry) return;
    let cd: JsonObject;
    try {
      cd = asObject(parse(entry.value) as Json);
    } catch {
      return; // a real sentinel logs the error and tries again next round
    }
    const infos = await this.keeperInfos();
    const now = new Date(this.opts.clock.now()).toISOString();
    const keepers = asObject(cd.keepers);
    for (const [uid, keeperJson] of Object.entries(keepers)) {
      const status = child(asObject(keeperJson), "status");
      const info = infos.get(uid);
      const updated = info !== undefined && info.infoUID !== this.seenInfo.get(uid);
      if (info) this.seenInfo.set(uid, String(info.infoUID));
      const pgHealthy = updated && asObject(info?.postgresState ?? {}).healthy === true;
      const healthy = pgHealthy && status.forceFail !== true;
      delete status.forceFail;
      setFlag(status, "healthy", healthy);
      if (healthy) status.lastHealthyTime = now;
    }
    const dbs = asObject(cd.dbs);
    for (const [dbUid, dbJson] of Object.entries(dbs)) {
      const db = asObject(dbJson);
      const keeperUid = String(asObject(db.spec).keeperUID);
      const status = child(db, "status");
      const pg = asObject(infos.get(keeperUid)?.postgresState ?? {});
      const keeperHealthy = asObject(asObject(keepers[keeperUid] ?? {}).status ?? {}).healthy === true;
      const reported = pg.uid === dbUid;
      if (reported && pg.healthy === true) status.xLogPos = pg.xLogPos ?? num(0);
      setFlag(status, "healthy", reported && pg.healthy === true && keeperHealthy);
      if (dbUid === this.masterDb && this.opts.synchronousReplication) {
        // The standbys the sentinel wants synchronous, and those the master reports in sync.
        asObject(db.spec).synchronousStandbys = Object.keys(dbs)
          .filter((uid) => uid !== dbUid)
          .sort();
        status.synchronousStandbys = pg.synchronousStandbys ?? null;
      }
    }
    this.electIfMasterFailed(cd);
    cd.changeTime = now;
    const text = stringify(cd)!;
    if (
      await this.put(this.clusterDataKey, text, [`cas=${entry.modifyIndex}`, `flags=${LIBKV_LOCK_FLAGS}`])
    ) {
      this.lastGood = text;
      this.masterDb = String(asObject(asObject(cd.cluster).status).master);
    }
  }

  private electIfMasterFailed(cd: JsonObject): void {
    const clusterStatus = asObject(asObject(cd.cluster).status);
    const current = String(clusterStatus.master);
    const dbs = asObject(cd.dbs);
    const masterDb = asObject(dbs[current] ?? {});
    if (asObject(masterDb.status ?? {}).healthy === true) return;
    const masterPos = bigintOf(asObject(masterDb.status ?? {}).xLogPos);
    const syncRepl = asObject(asObject(cd.cluster).spec ?? {}).synchronousReplication === true;
    const inSync = new Set(
      ((asObject(masterDb.status ?? {}).synchronousStandbys as Json[] | null) ?? []).map(String),
    );
    const candidates = Object.entries(dbs)
      .map(([uid, db]) => ({ uid, db: asObject(db) }))
      .filter(({ uid, db }) => uid !== current && asObject(db.spec).role === "standby")
      .filter(({ db }) => asObject(db.status ?? {}).healthy === true)
      .filter(({ uid, db }) =>
        syncRepl
          ? inSync.has(uid)
          : masterPos - bigintOf(asObject(db.status ?? {}).xLogPos) <= MAX_STANDBY_LAG,
      )
      .sort((a, b) => {
        const diff = bigintOf(asObject(b.db.status).xLogPos) - bigintOf(asObject(a.db.status).xLogPos);
        return diff > 0n ? 1 : diff < 0n ? -1 : a.uid.localeCompare(b.uid);
      });
    const elected = candidates[0];
    if (!elected) return; // "no eligible masters": nothing changes
    clusterStatus.master = elected.uid;
    for (const [uid, dbJson] of Object.entries(dbs)) {
      const spec = asObject(asObject(dbJson).spec);
      if (uid === elected.uid) {
        spec.role = "master";
        delete spec.followConfig;
        spec.followers = Object.keys(dbs)
          .filter((other) => other !== uid)
          .sort();
      } else {
        spec.role = "standby";
        spec.followConfig = { type: "internal", dbuid: elected.uid };
        spec.followers = [];
      }
    }
    const proxy = asObject(cd.proxy ?? {});
    this.proxyGeneration = Number(String(proxy.generation ?? 0)) + 1;
    proxy.generation = num(this.proxyGeneration);
    child(proxy, "spec").masterDbUid = elected.uid;
  }

  private async keeperInfos(): Promise<Map<string, JsonObject>> {
    const prefix = `${this.base}/keepers/info/`;
    const response = await fetch(`${this.opts.consulUrl}/v1/kv/${prefix}?recurse`);
    const infos = new Map<string, JsonObject>();
    if (response.status === 404) return infos;
    if (!response.ok) throw new Error(`Consul answered ${response.status} to the keepers' info`);
    for (const item of parse(await response.text()) as Array<{ Key: string; Value: string | null }>) {
      try {
        infos.set(
          item.Key.slice(prefix.length),
          asObject(parse(Buffer.from(item.Value ?? "", "base64").toString("utf8")) as Json),
        );
      } catch {
        // an unreadable keeper info is ignored, as the sentinel does
      }
    }
    return infos;
  }

  /** libkv's Put with a TTL: the key is held by a session that deletes it when it expires. */
  private async putEphemeral(key: string, owner: Component, value: Json): Promise<void> {
    if (owner.session) {
      const renewed = await fetch(`${this.opts.consulUrl}/v1/session/renew/${owner.session}`, {
        method: "PUT",
      });
      await renewed.arrayBuffer();
      if (renewed.status === 404) delete owner.session;
    }
    if (!owner.session) {
      const created = await fetch(`${this.opts.consulUrl}/v1/session/create`, {
        method: "PUT",
        body: JSON.stringify({
          Name: `stolon ${key}`,
          TTL: INFO_SESSION_TTL,
          Behavior: "delete",
          LockDelay: "1ms",
        }),
      });
      if (!created.ok) throw new Error(`Consul refused a session: ${await created.text()}`);
      owner.session = ((await created.json()) as { ID: string }).ID;
    }
    await this.put(key, stringify(value)!, [`acquire=${owner.session}`, `flags=${LIBKV_LOCK_FLAGS}`]);
  }

  private async get(key: string): Promise<{ value: string; modifyIndex: string } | undefined> {
    const response = await fetch(`${this.opts.consulUrl}/v1/kv/${key}`);
    if (response.status === 404) return undefined;
    if (!response.ok) throw new Error(`Consul answered ${response.status} to GET ${key}`);
    const [entry] = parse(await response.text()) as Array<{
      Value: string | null;
      ModifyIndex: LosslessNumber;
    }>;
    if (!entry) return undefined;
    return {
      value: Buffer.from(entry.Value ?? "", "base64").toString("utf8"),
      modifyIndex: String(entry.ModifyIndex),
    };
  }

  private async put(key: string, value: string, query: string[]): Promise<boolean> {
    const response = await fetch(`${this.opts.consulUrl}/v1/kv/${key}?${query.join("&")}`, {
      method: "PUT",
      body: value,
    });
    const answer = (await response.text()).trim();
    if (!response.ok) throw new Error(`Consul answered ${response.status} to PUT ${key}: ${answer}`);
    return answer === "true";
  }

  private keeper(uid: string): Keeper {
    const keeper = this.keeperList.find((k) => k.uid === uid);
    if (!keeper) throw new Error(`no keeper ${uid} (keepers: ${this.keepers.join(", ")})`);
    return keeper;
  }

  private keeperOfDb(db: string): string {
    return this.keeperList.find((k) => k.db === db)?.uid ?? "?";
  }

  /** Like the constructed sample: keeper_a's database is master, keeper_b's and keeper_c's follow it. */
  private initialClusterData(): JsonObject {
    const now = new Date(this.opts.clock.now()).toISOString();
    const keepers: JsonObject = {};
    const dbs: JsonObject = {};
    for (const keeper of this.keeperList) {
      const master = keeper.db === this.masterDb;
      keepers[keeper.uid] = {
        uid: keeper.uid,
        generation: num(1),
        changeTime: now,
        spec: {},
        status: {
          healthy: true,
          lastHealthyTime: now,
          bootUUID: keeper.bootUUID,
          postgresBinaryVersion: { Maj: num(15), Min: num(4) },
        },
      };
      dbs[keeper.db] = {
        uid: keeper.db,
        generation: num(1),
        changeTime: now,
        spec: {
          keeperUID: keeper.uid,
          requestTimeout: "10s",
          maxStandbys: num(20),
          additionalWalSenders: num(5),
          additionalReplicationSlots: null,
          initMode: master ? "none" : "resync",
          pgHBA: null,
          role: master ? "master" : "standby",
          ...(master ? {} : { followConfig: { type: "internal", dbuid: this.masterDb } }),
          followers: master ? this.keeperList.filter((k) => k !== keeper).map((k) => k.db) : [],
          synchronousStandbys: null,
          externalSynchronousStandbys: null,
        },
        status: {
          healthy: true,
          currentGeneration: num(1),
          listenAddress: keeper.address,
          port: "5432",
          systemdID: "6995433573035143173",
          timelineID: num(3),
          xLogPos: num(this.masterXLogPos),
          synchronousStandbys: null,
        },
      };
    }
    return {
      formatVersion: num(1),
      changeTime: now,
      cluster: {
        uid: "5c41c64c",
        generation: num(1),
        changeTime: now,
        spec: {
          sleepInterval: `${this.interval / 1000}s`,
          failInterval: "20s",
          synchronousReplication: this.opts.synchronousReplication ?? false,
          initMode: "new",
          pgParameters: { max_connections: "100" },
        },
        status: { currentGeneration: num(1), phase: "normal", master: this.masterDb },
      },
      keepers,
      dbs,
      proxy: {
        generation: num(this.proxyGeneration),
        changeTime: now,
        spec: { masterDbUid: this.masterDb, enabledProxies: this.proxies.map((p) => p.uid) },
        status: {},
      },
    };
  }
}

function num(value: number | bigint): LosslessNumber {
  return new LosslessNumber(String(value));
}

function bigintOf(value: Json | undefined): bigint {
  return isLosslessNumber(value) && /^\d+$/.test(value.value) ? BigInt(value.value) : 0n;
}

function asObject(value: Json | undefined): JsonObject {
  if (typeof value === "object" && value !== null && !Array.isArray(value) && !isLosslessNumber(value))
    return value;
  throw new Error("the cluster data is not shaped as Stolon writes it");
}

/** The object under `key`, created when missing. */
function child(parent: JsonObject, key: string): JsonObject {
  const existing = parent[key];
  if (
    typeof existing === "object" &&
    existing !== null &&
    !Array.isArray(existing) &&
    !isLosslessNumber(existing)
  )
    return existing;
  const created: JsonObject = {};
  parent[key] = created;
  return created;
}

/** Go's omitempty: a false bool is left out. */
function setFlag(target: JsonObject, key: string, value: boolean): void {
  if (value) target[key] = true;
  else delete target[key];
}

function shortUid(): string {
  return randomUUID().slice(0, 8);
}
