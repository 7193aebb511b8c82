import {
  DeleteObjectCommand,
  DeleteObjectsCommand,
  GetObjectCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  S3Client,
} from "@aws-sdk/client-s3";
import { fetch } from "undici";
import type { Clock } from "../clock.js";

export interface GarageOptions {
  adminUrl: string;
  adminToken: string;
  s3Endpoint: string;
  s3Region: string;
  timeoutMs: number;
  clock: Clock;
}

export class GarageError extends Error {
  constructor(
    message: string,
    readonly status?: number,
    readonly code?: string,
  ) {
    super(message);
  }
}

export interface BucketInfo {
  id: string;
  globalAliases: string[];
  websiteAccess: boolean;
  quotas: { maxSize: number | null; maxObjects: number | null };
  keys: Array<{
    accessKeyId: string;
    name: string;
    permissions: { read: boolean; write: boolean; owner: boolean };
  }>;
  objects: number;
  bytes: number;
}

export interface KeyInfo {
  accessKeyId: string;
  name: string;
  secretAccessKey?: string | null;
  /** GetKeyInfo: the buckets the key has a permission on. */
  buckets?: Array<{ id: string; globalAliases: string[] }>;
}

/**
 * Garage's admin API v2 (Garage 2.x), hand-written over fetch: there is no maintained client on npm.
 * Ids go in the query string, as the server reads them (its spec says path).
 */
export class GarageAdmin {
  constructor(private readonly opts: GarageOptions) {}

  /** Fails with a clear message on a Garage without the v2 admin API (1.x and older). */
  async checkVersion(): Promise<void> {
    try {
      await this.call("GET", "GetClusterHealth");
    } catch (error) {
      // Garage 1.x answers an unknown path with 400 "Unknown API endpoint"; older ones or proxies with 404.
      const v1 =
        error instanceof GarageError &&
        (error.status === 404 || (error.status === 400 && /Unknown API endpoint/.test(error.message)));
      if (v1)
        throw new GarageError("unsupported Garage version: the admin API v2 (Garage 2.x) is needed", 404);
      throw error;
    }
  }

  async bucketByAlias(alias: string): Promise<BucketInfo | undefined> {
    try {
      return await this.call<BucketInfo>("GET", "GetBucketInfo", { globalAlias: alias });
    } catch (error) {
      if (error instanceof GarageError && error.status === 404) return undefined;
      throw error;
    }
  }

  listBuckets(): Promise<Array<{ id: string; globalAliases: string[] }>> {
    return this.call("GET", "ListBuckets");
  }

  createBucket(globalAlias: string): Promise<BucketInfo> {
    return this.call("POST", "CreateBucket", undefined, { globalAlias });
  }

  updateBucket(
    id: string,
    body: {
      quotas?: { maxSize: number | null; maxObjects: number | null };
      websiteAccess?: { enabled: boolean; indexDocument?: string; errorDocument?: string };
    },
  ): Promise<BucketInfo> {
    return this.call("POST", "UpdateBucket", { id }, body);
  }

  deleteBucket(id: string): Promise<void> {
    return this.call("POST", "DeleteBucket", { id });
  }

  /** ListKeys names a key's ID `id` (GetKeyInfo and CreateKey: `accessKeyId`). */
  async keyByName(name: string): Promise<KeyInfo | undefined> {
    const keys = await this.call<Array<{ id: string; name: string }>>("GET", "ListKeys");
    const found = keys.filter((k) => k.name === name);
    if (found.length > 1) throw new GarageError(`several Garage keys are named ${name}; name one with --key`);
    return found[0] && { accessKeyId: found[0].id, name: found[0].name };
  }

  keyInfo(accessKeyId: string, opts: { showSecretKey?: boolean } = {}): Promise<KeyInfo> {
    return this.call("GET", "GetKeyInfo", {
      id: accessKeyId,
      ...(opts.showSecretKey ? { showSecretKey: "true" } : {}),
    });
  }

  /** The secret is in this answer only: Garage does not show it again unless asked explicitly. */
  createKey(name: string): Promise<KeyInfo & { secretAccessKey: string }> {
    return this.call("POST", "CreateKey", undefined, { name });
  }

  deleteKey(accessKeyId: string): Promise<void> {
    return this.call("POST", "DeleteKey", { id: accessKeyId });
  }

  allowBucketKey(
    bucketId: string,
    accessKeyId: string,
    permissions: { read: boolean; write: boolean; owner: boolean },
  ): Promise<BucketInfo> {
    return this.call("POST", "AllowBucketKey", undefined, { bucketId, accessKeyId, permissions });
  }

  denyBucketKey(bucketId: string, accessKeyId: string): Promise<BucketInfo> {
    return this.call("POST", "DenyBucketKey", undefined, {
      bucketId,
      accessKeyId,
      permissions: { read: true, write: true, owner: true },
    });
  }

  /**
   * Deletes every object of a bucket through S3 with a temporary key of majordome's own (the admin API
   * cannot delete objects), removed afterwards. Returns how many objects were deleted.
   */
  async emptyBucket(bucketId: string, bucket: string): Promise<number> {
    const key = await this.createKey(`majordome-purge-${this.opts.clock.now()}`);
    const s3 = this.s3(key);
    let deleted = 0;
    try {
      await this.allowBucketKey(bucketId, key.accessKeyId, { read: true, write: true, owner: false });
      for (;;) {
        const page = await s3.send(new ListObjectsV2Command({ Bucket: bucket, MaxKeys: 1000 }));
        const objects = (page.Contents ?? []).flatMap((o) => (o.Key ? [{ Key: o.Key }] : []));
        if (objects.length === 0) break;
        await s3.send(
          new DeleteObjectsCommand({ Bucket: bucket, Delete: { Objects: objects, Quiet: true } }),
        );
        deleted += objects.length;
      }
      return deleted;
    } finally {
      s3.destroy();
      await this.deleteKey(key.accessKeyId);
    }
  }

  /** Proves a key works on a bucket: put, read back and delete a small object through S3. */
  async probe(bucket: string, key: { accessKeyId: string; secretAccessKey: string }): Promise<void> {
    const s3 = this.s3(key);
    const object = `.majordome-probe-${this.opts.clock.now()}`;
    try {
      await s3.send(new PutObjectCommand({ Bucket: bucket, Key: object, Body: "majordome probe" }));
      const got = await s3.send(new GetObjectCommand({ Bucket: bucket, Key: object }));
      const body = await got.Body?.transformToString();
      if (body !== "majordome probe")
        throw new GarageError("the probe object read back differs from what was written");
      await s3.send(new DeleteObjectCommand({ Bucket: bucket, Key: object }));
    } catch (error) {
      if (error instanceof GarageError) throw error;
      const e = error as { name?: string; message?: string };
      throw new GarageError(
        `the S3 probe with the new key failed: ${e.name ?? "error"}: ${e.message ?? ""}`.trim(),
      );
    } finally {
      s3.destroy();
    }
  }

  private s3(key: { accessKeyId: string; secretAccessKey: string }): S3Client {
    return new S3Client({
      endpoint: this.opts.s3Endpoint,
      region: this.opts.s3Region,
      forcePathStyle: true,
      credentials: { accessKeyId: key.accessKeyId, secretAccessKey: key.secretAccessKey },
    });
  }

  private async call<T>(
    method: "GET" | "POST",
    endpoint: string,
    query?: Record<string, string>,
    body?: unknown,
  ): Promise<T> {
    const url = new URL(`/v2/${endpoint}`, this.opts.adminUrl);
    for (const [k, v] of Object.entries(query ?? {})) url.searchParams.set(k, v);
    const abort = new AbortController();
    const timer = this.opts.clock.setTimeout(() => abort.abort(), this.opts.timeoutMs);
    try {
      const response = await fetch(url, {
        method,
        signal: abort.signal,
        headers: {
          authorization: `Bearer ${this.opts.adminToken}`,
          ...(body === undefined ? {} : { "content-type": "application/json" }),
        },
        ...(body === undefined ? {} : { body: JSON.stringify(body) }),
      });
      const text = await response.text();
      if (!response.ok) {
        let detail: { code?: string; message?: string } = {};
        try {
          detail = JSON.parse(text) as typeof detail;
        } catch {
          detail = { message: text.slice(0, 300) };
        }
        throw new GarageError(
          `Garage refused ${endpoint}: ${detail.message ?? `HTTP ${response.status}`}`,
          response.status,
          detail.code,
        );
      }
      return (text ? JSON.parse(text) : undefined) as T;
    } catch (error) {
      if (error instanceof GarageError) throw error;
      throw new GarageError(
        `Garage's admin API is unreachable at ${this.opts.adminUrl}: ${abort.signal.aborted ? "timeout" : ((error as { cause?: { code?: string } }).cause?.code ?? (error as Error).message)}`,
      );
    } finally {
      this.opts.clock.clearTimeout(timer);
    }
  }
}

/** S3 bucket naming rules (as Garage enforces them for global aliases), checked before any call. */
export function bucketNameProblem(name: string): string | null {
  if (name.length < 3 || name.length > 63) return "a bucket name has 3 to 63 characters";
  if (!/^[a-z0-9][a-z0-9.-]*[a-z0-9]$/.test(name)) {
    return "a bucket name has lowercase letters, digits, dots and hyphens, and starts and ends with a letter or digit";
  }
  if (name.includes("..") || name.includes(".-") || name.includes("-."))
    return "a bucket name has no two dots (or a dot and a hyphen) side by side";
  if (/^\d+\.\d+\.\d+\.\d+$/.test(name)) return "a bucket name is not an IP address";
  if (name.startsWith("xn--") || name.endsWith("-s3alias"))
    return "a bucket name does not start with xn-- nor end with -s3alias";
  return null;
}
