import { z } from "zod";
import {
  cloneLossless,
  isLosslessObject,
  parseLossless,
  stringifyLossless,
  toPlain,
  type LosslessObject,
  type LosslessValue,
} from "./lossless.js";

/** Stolon's default cluster spec `maxStandbyLag` (cluster.go: 1024 * 1204, a typo for 1 MiB kept as is). */
export const DEFAULT_MAX_STANDBY_LAG = 1024 * 1204;

const uint = z.union([z.number().int().nonnegative(), z.bigint().nonnegative()]).transform((v) => BigInt(v));
const names = z.array(z.string()).nullish();

/**
 * The parts of Stolon's ClusterData (internal/cluster/cluster.go) majordome reads. Only for reading:
 * the document written back is the lossless one, whole. Missing health flags mean false (omitempty).
 */
const clusterDataSchema = z.object({
  cluster: z.object({
    spec: z
      .object({
        synchronousReplication: z.boolean().nullish(),
        maxStandbyLag: z.number().int().nonnegative().nullish(),
        sleepInterval: z.string().nullish(),
      })
      .nullish(),
    status: z.object({
      phase: z.string().nullish(),
      master: z.string().min(1, "no master database is set"),
    }),
  }),
  keepers: z.record(
    z.string(),
    z.object({
      status: z
        .object({
          healthy: z.boolean().nullish(),
          forceFail: z.boolean().nullish(),
          lastHealthyTime: z.string().nullish(),
        })
        .nullish(),
    }),
  ),
  dbs: z.record(
    z.string(),
    z.object({
      spec: z.object({
        keeperUID: z.string().min(1),
        role: z.string().nullish(),
        synchronousStandbys: names,
        followConfig: z.object({ type: z.string().nullish(), dbuid: z.string().nullish() }).nullish(),
      }),
      status: z
        .object({
          healthy: z.boolean().nullish(),
          listenAddress: z.string().nullish(),
          port: z.string().nullish(),
          timelineID: z.number().int().nullish(),
          xLogPos: uint.nullish(),
          synchronousStandbys: names,
        })
        .nullish(),
    }),
  ),
  proxy: z
    .object({
      generation: z.number().int().nullish(),
      spec: z.object({ masterDbUid: z.string().nullish(), enabledProxies: names }).nullish(),
    })
    .nullish(),
});

export type ClusterDataView = z.infer<typeof clusterDataSchema>;

/** The cluster data as read: the whole lossless document, and the checked view of it. */
export interface ClusterDataDocument {
  readonly raw: LosslessObject;
  readonly view: ClusterDataView;
}

export type ParsedClusterData = { ok: true; doc: ClusterDataDocument } | { ok: false; reason: string };

/** Parses the key's value; never throws: a document it cannot make sense of comes back with the reason. */
export function parseClusterData(text: string): ParsedClusterData {
  let raw: LosslessValue;
  try {
    raw = parseLossless(text);
  } catch (error) {
    return { ok: false, reason: `the cluster data is not JSON (${(error as Error).message})` };
  }
  if (!isLosslessObject(raw)) return { ok: false, reason: "the cluster data is not a JSON object" };
  const checked = clusterDataSchema.safeParse(toPlain(raw));
  if (!checked.success) {
    const issue = checked.error.issues[0];
    const where = issue?.path.length ? issue.path.join(".") : "the document";
    return { ok: false, reason: `the cluster data is not as Stolon writes it: ${where}: ${issue?.message}` };
  }
  const view = checked.data;
  const masterDb = view.dbs[view.cluster.status.master];
  if (!masterDb)
    return {
      ok: false,
      reason: `the cluster data names master database ${view.cluster.status.master}, which is not among its databases`,
    };
  if (!view.keepers[masterDb.spec.keeperUID])
    return {
      ok: false,
      reason: `the master database's keeper ${masterDb.spec.keeperUID} is not among the cluster data's keepers`,
    };
  return { ok: true, doc: { raw, view } };
}

/**
 * What `stolonctl failkeeper` changes: `keepers[uid].status.forceFail = true`, and nothing else. The
 * result is a new document; the input is left as it was.
 */
export function withForceFail(raw: LosslessObject, keeperUid: string): LosslessObject {
  const copy = cloneLossless(raw) as LosslessObject;
  const keepers = copy.keepers;
  const keeper = isLosslessObject(keepers) ? keepers[keeperUid] : undefined;
  if (!isLosslessObject(keeper)) throw new Error(`keeper ${keeperUid} is not in the cluster data`);
  if (!isLosslessObject(keeper.status)) keeper.status = {};
  (keeper.status as LosslessObject).forceFail = true;
  return copy;
}

export function serializeClusterData(raw: LosslessObject): string {
  return stringifyLossless(raw);
}

/** The keeper that runs a database. */
export function keeperOf(view: ClusterDataView, dbUid: string): string | undefined {
  return view.dbs[dbUid]?.spec.keeperUID;
}
