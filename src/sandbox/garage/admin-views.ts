import { anyPermission, NO_PERMISSIONS, type AccessKey, type Bucket, type GarageStore } from "./store.js";

/** Admin API v2 response bodies, field for field as Garage's api.rs serializes them. */

const iso = (ms: number): string => new Date(ms).toISOString();

export function bucketInfo(store: GarageStore, bucket: Bucket): object {
  const usage = store.usage(bucket);
  return {
    id: bucket.id,
    created: iso(bucket.created),
    globalAliases: [...bucket.globalAliases],
    websiteAccess: bucket.website !== null,
    websiteConfig: bucket.website && { ...bucket.website },
    keys: bucketKeys(store, bucket),
    objects: usage.objects,
    bytes: usage.bytes,
    unfinishedUploads: 0,
    unfinishedMultipartUploads: 0,
    unfinishedMultipartUploadParts: 0,
    unfinishedMultipartUploadBytes: 0,
    quotas: { ...bucket.quotas },
  };
}

/** Keys with a permission entry on the bucket (even all false), then keys with a local alias to it. */
function bucketKeys(store: GarageStore, bucket: Bucket): object[] {
  const ids = new Set(bucket.permissions.keys());
  for (const { accessKeyId } of store.localAliasesOf(bucket)) ids.add(accessKeyId);
  return [...ids].flatMap((id) => {
    const key = store.activeKey(id);
    if (!key) return [];
    const aliases = [...key.localAliases].filter(([, target]) => target === bucket.id);
    return [
      {
        accessKeyId: key.id,
        name: key.name,
        permissions: store.permissionsOf(bucket, key.id),
        bucketLocalAliases: aliases.map(([alias]) => alias),
      },
    ];
  });
}

export function listBuckets(store: GarageStore, withCreated: boolean): object[] {
  return store.allBuckets().map((bucket) => ({
    id: bucket.id,
    ...(withCreated ? { created: iso(bucket.created) } : {}),
    globalAliases: [...bucket.globalAliases],
    localAliases: store.localAliasesOf(bucket).map(({ accessKeyId, alias }) => ({ accessKeyId, alias })),
  }));
}

export function keyInfo(store: GarageStore, key: AccessKey, showSecret: boolean): object {
  return {
    accessKeyId: key.id,
    created: iso(key.created),
    name: key.name,
    expiration: key.expiration === null ? null : iso(key.expiration),
    expired: store.isExpired(key),
    // Garage skips the field (serde skip_serializing_if) rather than sending null.
    ...(showSecret ? { secretAccessKey: key.secret } : {}),
    permissions: { createBucket: key.allowCreateBucket },
    buckets: store.bucketsOfKey(key).map((bucket) => {
      const perm = store.permissionsOf(bucket, key.id);
      return {
        id: bucket.id,
        globalAliases: [...bucket.globalAliases],
        localAliases: [...key.localAliases].filter(([, id]) => id === bucket.id).map(([alias]) => alias),
        permissions: anyPermission(perm) ? perm : { ...NO_PERMISSIONS },
      };
    }),
  };
}

export function listKeys(store: GarageStore): object[] {
  return store.allKeys().map((key) => ({
    id: key.id,
    name: key.name,
    created: iso(key.created),
    expiration: key.expiration === null ? null : iso(key.expiration),
    expired: store.isExpired(key),
  }));
}

export function clusterHealth(down: boolean): object {
  const up = down ? 0 : 1;
  return {
    status: down ? "unavailable" : "healthy",
    knownNodes: 1,
    connectedNodes: up,
    storageNodes: 1,
    storageNodesOk: up,
    partitions: 256,
    partitionsQuorum: up * 256,
    partitionsAllOk: up * 256,
  };
}

/** One node, the one answering. */
export function clusterStatus(nodeId: string, down: boolean): object {
  const space = { available: 900 * 2 ** 30, total: 1000 * 2 ** 30 };
  return {
    layoutVersion: 1,
    nodes: [
      {
        id: nodeId,
        garageVersion: "v2.0.0",
        addr: "127.0.0.1:3901",
        hostname: "garage-double",
        isUp: !down,
        lastSeenSecsAgo: null,
        role: { zone: "dc1", tags: ["double"], capacity: space.total },
        draining: false,
        dataPartition: space,
        metadataPartition: space,
      },
    ],
  };
}
