import {
  badRequest,
  bucketNotEmpty,
  internalError,
  invalidBucketName,
  keyAlreadyExists,
  noSuchAccessKey,
  noSuchBucket,
} from "./errors.js";
import { isBucketId, isKeyId, isSecret, isValidBucketName, newBucketId, newKeyId, newSecret } from "./ids.js";

export interface Permissions {
  read: boolean;
  write: boolean;
  owner: boolean;
}

export const NO_PERMISSIONS: Readonly<Permissions> = { read: false, write: false, owner: false };

export interface Website {
  indexDocument: string;
  errorDocument: string | null;
}

export interface Quotas {
  maxSize: number | null;
  maxObjects: number | null;
}

export interface ChecksumValue {
  /** x-amz-checksum-<algorithm>: crc32, crc32c, crc64nvme, sha1 or sha256. */
  readonly algorithm: string;
  /** Base64, as in the header. */
  readonly value: string;
}

export interface StoredObject {
  readonly key: string;
  readonly body: Buffer;
  /** Hex MD5 of the body, unquoted. */
  readonly etag: string;
  readonly lastModified: number;
  /** Content-Type and the other standard headers Garage keeps, then x-amz-meta-*. */
  readonly headers: ReadonlyArray<readonly [string, string]>;
  readonly checksum: ChecksumValue | undefined;
}

export interface Bucket {
  readonly id: string;
  readonly created: number;
  readonly globalAliases: Set<string>;
  /** Like Garage, a key keeps its entry (all false) after DenyBucketKey. */
  readonly permissions: Map<string, Permissions>;
  website: Website | null;
  quotas: Quotas;
  readonly objects: Map<string, StoredObject>;
}

export interface AccessKey {
  readonly id: string;
  readonly secret: string;
  name: string;
  readonly created: number;
  expiration: number | null;
  allowCreateBucket: boolean;
  /** Alias → bucket id, in this key's own namespace. */
  readonly localAliases: Map<string, string>;
  /** Deleted keys stay as tombstones: ImportKey refuses their id, as Garage does. */
  deleted: boolean;
}

export interface LocalAlias {
  readonly accessKeyId: string;
  readonly alias: string;
}

const byId = <T extends { id: string }>(a: T, b: T): number => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0);

/** The cluster's metadata and objects, with the rules Garage's helpers enforce on them. */
export class GarageStore {
  private readonly buckets = new Map<string, Bucket>();
  private readonly keys = new Map<string, AccessKey>();
  private readonly aliases = new Map<string, string>();

  constructor(readonly now: () => number) {}

  // ---- buckets ----

  allBuckets(): Bucket[] {
    return [...this.buckets.values()].sort(byId);
  }

  findBucket(id: string): Bucket | undefined {
    return this.buckets.get(id.toLowerCase());
  }

  /** By the hex id of an admin request: 400 when it is not one, 404 when no such bucket. */
  bucket(idText: string): Bucket {
    if (!isBucketId(idText)) throw badRequest("Invalid bucket id");
    const bucket = this.findBucket(idText);
    if (!bucket) throw noSuchBucket(idText.toLowerCase());
    return bucket;
  }

  bucketByGlobalAlias(alias: string): Bucket {
    const id = this.aliases.get(alias);
    const bucket = id === undefined ? undefined : this.buckets.get(id);
    if (!bucket) throw noSuchBucket(alias);
    return bucket;
  }

  /** GetBucketInfo?search=: an exact global alias, else a unique prefix of the hex id. */
  searchBucket(search: string): Bucket {
    const aliased = this.aliases.get(search);
    if (aliased !== undefined) return this.bucket(aliased);
    const prefix = search.toLowerCase();
    const candidates = /^[0-9a-f]{2,}$/.test(prefix)
      ? this.allBuckets().filter((b) => b.id.startsWith(prefix))
      : [];
    if (candidates.length > 1) throw badRequest(`Several matching buckets: ${search}`);
    const [bucket] = candidates;
    if (!bucket) throw noSuchBucket(search);
    return bucket;
  }

  createBucket(): Bucket {
    const bucket: Bucket = {
      id: newBucketId(),
      created: this.now(),
      globalAliases: new Set(),
      permissions: new Map(),
      website: null,
      quotas: { maxSize: null, maxObjects: null },
      objects: new Map(),
    };
    this.buckets.set(bucket.id, bucket);
    return bucket;
  }

  /** Refuses a bucket with objects; otherwise drops its permissions and every alias, then the bucket. */
  deleteBucket(bucket: Bucket): void {
    if (bucket.objects.size > 0) throw bucketNotEmpty();
    for (const { accessKeyId, alias } of this.localAliasesOf(bucket)) {
      this.keys.get(accessKeyId)?.localAliases.delete(alias);
    }
    for (const alias of bucket.globalAliases) this.aliases.delete(alias);
    this.buckets.delete(bucket.id);
  }

  globalAliasTarget(alias: string): string | undefined {
    return this.aliases.get(alias);
  }

  setGlobalAlias(bucket: Bucket, alias: string): void {
    if (!isValidBucketName(alias)) throw invalidBucketName(alias);
    const current = this.aliases.get(alias);
    if (current !== undefined && current !== bucket.id) {
      throw badRequest(`Alias ${alias} already exists and points to different bucket: ${current}`);
    }
    this.aliases.set(alias, bucket.id);
    bucket.globalAliases.add(alias);
  }

  unsetGlobalAlias(bucket: Bucket, alias: string): void {
    if (this.aliases.get(alias) !== bucket.id) {
      throw internalError(`alias not found or does not point to bucket ${bucket.id}`);
    }
    const otherGlobal = [...bucket.globalAliases].some((name) => name !== alias);
    if (!otherGlobal && this.localAliasesOf(bucket).length === 0) {
      throw badRequest(
        `Bucket ${alias} doesn't have other aliases, please delete it instead of just unaliasing.`,
      );
    }
    this.aliases.delete(alias);
    bucket.globalAliases.delete(alias);
  }

  setLocalAlias(bucket: Bucket, key: AccessKey, alias: string): void {
    if (!isValidBucketName(alias)) throw invalidBucketName(alias);
    const current = key.localAliases.get(alias);
    if (current !== undefined && current !== bucket.id) {
      throw badRequest(
        `Alias ${alias} already exists in namespace of key ${key.id} and points to different bucket: ${current}`,
      );
    }
    key.localAliases.set(alias, bucket.id);
  }

  /**
   * Garage's "bucket has no other alias" test for local aliases counts the alias being removed, so it
   * never refuses: a bucket can be left with no alias at all, and so it is here.
   */
  unsetLocalAlias(bucket: Bucket, key: AccessKey, alias: string): void {
    if (key.localAliases.get(alias) !== bucket.id) {
      throw internalError(`Bucket ${bucket.id} does not have alias ${alias} in namespace of key ${key.id}`);
    }
    key.localAliases.delete(alias);
  }

  localAliasesOf(bucket: Bucket): LocalAlias[] {
    const found: LocalAlias[] = [];
    for (const key of this.keys.values()) {
      if (key.deleted) continue;
      for (const [alias, bucketId] of key.localAliases) {
        if (bucketId === bucket.id) found.push({ accessKeyId: key.id, alias });
      }
    }
    return found;
  }

  setPermissions(bucket: Bucket, key: AccessKey, permissions: Permissions): void {
    bucket.permissions.set(key.id, { ...permissions });
  }

  permissionsOf(bucket: Bucket, keyId: string): Permissions {
    return bucket.permissions.get(keyId) ?? { ...NO_PERMISSIONS };
  }

  usage(bucket: Bucket): { objects: number; bytes: number } {
    let bytes = 0;
    for (const object of bucket.objects.values()) bytes += object.body.length;
    return { objects: bucket.objects.size, bytes };
  }

  // ---- keys ----

  allKeys(): AccessKey[] {
    return [...this.keys.values()].filter((key) => !key.deleted).sort(byId);
  }

  /** A key that exists and is not deleted, or 404 NoSuchAccessKey. */
  key(id: string): AccessKey {
    const key = this.activeKey(id);
    if (!key) throw noSuchAccessKey(id);
    return key;
  }

  activeKey(id: string): AccessKey | undefined {
    const key = this.keys.get(id);
    return key && !key.deleted ? key : undefined;
  }

  /** GetKeyInfo?search=: a prefix of the key id, or the whole name, case-insensitively. */
  searchKey(pattern: string): AccessKey {
    const lower = pattern.toLowerCase();
    const candidates = this.allKeys().filter(
      (key) => key.id.toLowerCase().startsWith(lower) || key.name.toLowerCase() === lower,
    );
    const [key] = candidates;
    if (!key) throw noSuchAccessKey(pattern);
    if (candidates.length > 1) throw badRequest(`${candidates.length} matching keys`);
    return key;
  }

  createKey(name: string): AccessKey {
    return this.addKey(newKeyId(), newSecret(), name);
  }

  importKey(id: string, secret: string, name: string): AccessKey {
    if (this.keys.has(id)) throw keyAlreadyExists(id);
    if (!isKeyId(id)) {
      throw badRequest(
        "Invalid key format: The specified key ID is not a valid Garage key ID (starts with `GK`, followed by 12 hex-encoded bytes)",
      );
    }
    if (!isSecret(secret)) {
      throw badRequest(
        "Invalid key format: The specified secret key is not a valid Garage secret key (composed of 32 hex-encoded bytes)",
      );
    }
    return this.addKey(id, secret, name);
  }

  deleteKey(key: AccessKey): void {
    key.localAliases.clear();
    for (const bucket of this.buckets.values()) bucket.permissions.delete(key.id);
    key.deleted = true;
  }

  isExpired(key: AccessKey): boolean {
    return key.expiration !== null && key.expiration <= this.now();
  }

  /** Buckets the key has some permission on or a local alias to, in creation order. */
  bucketsOfKey(key: AccessKey): Bucket[] {
    const ids = new Set(key.localAliases.values());
    return [...this.buckets.values()].filter((bucket) => {
      const perm = bucket.permissions.get(key.id);
      return ids.has(bucket.id) || (perm !== undefined && anyPermission(perm));
    });
  }

  // ---- S3 ----

  /** An S3 bucket name as Garage resolves it: the key's local alias, a hex id, then a global alias. */
  resolveBucket(name: string, key: AccessKey): Bucket | undefined {
    const local = key.localAliases.get(name);
    if (local !== undefined) return this.buckets.get(local);
    if (isBucketId(name)) return this.findBucket(name);
    const global = this.aliases.get(name);
    return global === undefined ? undefined : this.buckets.get(global);
  }

  private addKey(id: string, secret: string, name: string): AccessKey {
    const key: AccessKey = {
      id,
      secret,
      name,
      created: this.now(),
      expiration: null,
      allowCreateBucket: false,
      localAliases: new Map(),
      deleted: false,
    };
    this.keys.set(id, key);
    return key;
  }
}

export const anyPermission = (perm: Permissions): boolean => perm.read || perm.write || perm.owner;
