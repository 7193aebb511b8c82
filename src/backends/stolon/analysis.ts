import { DEFAULT_MAX_STANDBY_LAG, type ClusterDataView } from "./cluster-data.js";

/** UIDs of the components whose ephemeral info keys are present (they are alive). */
export interface LiveComponents {
  keepers: string[];
  sentinels: string[];
  proxies: string[];
}

export interface DatabaseState {
  db: string;
  keeper: string;
  healthy: boolean;
  /** host:port, when the database reported it. */
  address?: string;
  xLogPos?: bigint;
}

export interface StandbyState extends DatabaseState {
  /** Bytes behind the master, when both report a WAL position. */
  lagBytes?: bigint;
  inSync: boolean;
  eligible: boolean;
  /** Why the sentinel would not elect it, when it would not. */
  notEligible?: string;
}

export interface KeeperState {
  uid: string;
  /** The sentinel's verdict in the cluster data. */
  healthy: boolean;
  /** Its info key is present. */
  live: boolean;
  forceFail: boolean;
}

export interface ClusterStatus {
  cluster: string;
  phase: string;
  synchronousReplication: boolean;
  master: DatabaseState;
  standbys: StandbyState[];
  keepers: KeeperState[];
  live: LiveComponents;
  /** The cluster data's ModifyIndex changed within the rewrite window: a sentinel is at work. */
  sentinelRewriting: boolean;
  modifyIndex: bigint;
}

export interface Preflight {
  cluster: string;
  status?: ClusterStatus;
  eligible: StandbyState[];
  /** Set when the failover must not be attempted, with why. */
  refusal?: string;
}

/**
 * What `stolonctl status` shows, from the cluster data and the info keys. "In sync" follows the
 * sentinel's own rule for choosing a new master: with synchronous replication, a standby the master
 * reports (and wants) as synchronous; without, one whose WAL position is within `maxStandbyLag` of the
 * master's. Eligible: healthy, in sync, same timeline, its keeper not force-failed.
 */
export function describeCluster(
  cluster: string,
  view: ClusterDataView,
  live: LiveComponents,
  sentinelRewriting: boolean,
  modifyIndex: bigint,
): ClusterStatus {
  const masterUid = view.cluster.status.master;
  const masterDb = view.dbs[masterUid]!;
  const keeperHealthy = (uid: string) => view.keepers[uid]?.status?.healthy === true;
  const database = (uid: string): DatabaseState => {
    const db = view.dbs[uid]!;
    const status = db.status;
    return {
      db: uid,
      keeper: db.spec.keeperUID,
      healthy: status?.healthy === true && keeperHealthy(db.spec.keeperUID),
      ...(status?.listenAddress
        ? { address: `${status.listenAddress}${status.port ? `:${status.port}` : ""}` }
        : {}),
      ...(status?.xLogPos !== undefined && status.xLogPos !== null ? { xLogPos: status.xLogPos } : {}),
    };
  };
  const master = database(masterUid);
  const synchronousReplication = view.cluster.spec?.synchronousReplication === true;
  const maxLag = BigInt(view.cluster.spec?.maxStandbyLag ?? DEFAULT_MAX_STANDBY_LAG);
  const syncStandbys = new Set(
    (masterDb.status?.synchronousStandbys ?? []).filter((uid) =>
      (masterDb.spec.synchronousStandbys ?? []).includes(uid),
    ),
  );

  const standbys = Object.keys(view.dbs)
    .filter((uid) => uid !== masterUid && (view.dbs[uid]!.spec.role ?? "standby") === "standby")
    .filter((uid) => (view.dbs[uid]!.spec.followConfig?.type ?? "internal") === "internal")
    .sort()
    .map((uid): StandbyState => {
      const state = database(uid);
      const lagBytes =
        state.xLogPos !== undefined && master.xLogPos !== undefined
          ? master.xLogPos - state.xLogPos
          : undefined;
      const inSync = synchronousReplication
        ? syncStandbys.has(uid)
        : lagBytes !== undefined && lagBytes <= maxLag;
      const sameTimeline =
        view.dbs[uid]!.status?.timelineID === undefined ||
        view.dbs[uid]!.status?.timelineID === masterDb.status?.timelineID;
      const forceFailed = view.keepers[state.keeper]?.status?.forceFail === true;
      const why = !state.healthy
        ? "not healthy"
        : forceFailed
          ? "its keeper is being force-failed"
          : !inSync
            ? synchronousReplication
              ? "not a synchronous standby of the master"
              : lagBytes === undefined
                ? "no WAL position reported"
                : `${lagBytes} bytes behind the master (more than ${maxLag})`
            : !sameTimeline
              ? "on another timeline than the master"
              : undefined;
      return {
        ...state,
        ...(lagBytes !== undefined ? { lagBytes } : {}),
        inSync,
        eligible: why === undefined,
        ...(why ? { notEligible: why } : {}),
      };
    });

  const keeperUids = [...new Set([...Object.keys(view.keepers), ...live.keepers])].sort();
  return {
    cluster,
    phase: view.cluster.status.phase ?? "unknown",
    synchronousReplication,
    master,
    standbys,
    keepers: keeperUids.map((uid) => ({
      uid,
      healthy: keeperHealthy(uid),
      live: live.keepers.includes(uid),
      forceFail: view.keepers[uid]?.status?.forceFail === true,
    })),
    live,
    sentinelRewriting,
    modifyIndex,
  };
}

/**
 * Whether a failover may be attempted. Force-failing the master only asks the sentinel to elect
 * another: without an eligible standby, or without a sentinel at work, nothing would happen (or it would
 * happen later, unexpectedly).
 */
export function preflightOf(status: ClusterStatus): Preflight {
  const eligible = status.standbys.filter((s) => s.eligible);
  const refusal =
    status.phase !== "normal"
      ? `the cluster is in phase ${status.phase}, not normal`
      : eligible.length === 0
        ? `no standby is eligible (${
            status.standbys.map((s) => `${s.keeper}: ${s.notEligible}`).join("; ") || "there are no standbys"
          })`
        : !status.sentinelRewriting
          ? "no sentinel is rewriting the cluster data: nobody would elect a new master"
          : undefined;
  return { cluster: status.cluster, status, eligible, ...(refusal ? { refusal } : {}) };
}
