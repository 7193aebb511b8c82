import type { IncomingMessage, ServerResponse } from "node:http";
import {
  forbidden,
  GarageError,
  noSuchBucket,
  notImplemented,
  quorumUnavailable,
  s3ErrorBody,
  toGarageError,
} from "./errors.js";
import type { FaultInjector } from "./faults.js";
import { MAX_BODY_BYTES, readBody, send, splitTarget, type Reply } from "./http.js";
import { decodePayload } from "./payload.js";
import { createBucket, getBucketLocation, headBucket, listBuckets } from "./s3-buckets.js";
import { XML_HEADERS, type BucketContext, type S3Context } from "./s3-context.js";
import { identifyEndpoint, type Access } from "./s3-endpoints.js";
import { listObjectsV2 } from "./s3-list.js";
import { deleteObject, deleteObjects, getObject, putObject } from "./s3-objects.js";
import { parseQueryPairs, verifySigV4 } from "./sigv4.js";
import type { AccessKey, Bucket, GarageStore } from "./store.js";

export interface S3Deps {
  readonly store: GarageStore;
  readonly region: string;
  readonly faults: FaultInjector;
  readonly isDown: () => boolean;
}

const BUCKET_HANDLERS: Readonly<Record<string, (ctx: BucketContext) => Reply>> = {
  HeadBucket: headBucket,
  GetBucketLocation: getBucketLocation,
  ListObjectsV2: listObjectsV2,
  PutObject: putObject,
  GetObject: (ctx) => getObject(ctx, true),
  HeadObject: (ctx) => getObject(ctx, false),
  DeleteObject: deleteObject,
  DeleteObjects: deleteObjects,
};

/** The operations the double implements; Garage's others answer 501 NotImplemented here. */
export const S3_OPERATIONS: readonly string[] = [
  "ListBuckets",
  "CreateBucket",
  ...Object.keys(BUCKET_HANDLERS),
];

/**
 * The S3 API, in Garage's order: routing, signature (403 for an unknown key or a wrong signature),
 * aws-chunked decoding and digest checks, then bucket resolution for this key (404 NoSuchBucket),
 * the key's permission on it (403), and the operation. Errors are S3 XML, without a body on HEAD.
 */
export function createS3Listener(deps: S3Deps): (req: IncomingMessage, res: ServerResponse) => void {
  return (req, res) => {
    void readBody(req).then((raw) => {
      const { rawPath } = splitTarget(req.url);
      let reply: Reply;
      try {
        reply = handle(deps, req, raw);
      } catch (error) {
        const garageError = toGarageError(error);
        reply = {
          status: garageError.status,
          headers: { ...XML_HEADERS, ...garageError.headers },
          body: s3ErrorBody(garageError, deps.region, rawPath),
        };
      }
      send(res, reply, req.method !== "HEAD");
    });
  };
}

function handle(deps: S3Deps, req: IncomingMessage, raw: Buffer | null): Reply {
  if (raw === null) {
    throw new GarageError(
      400,
      "EntityTooLarge",
      `The double keeps objects in memory: ${MAX_BODY_BYTES} bytes at most`,
    );
  }
  const method = req.method ?? "GET";
  const { rawPath, rawQuery } = splitTarget(req.url);
  const query = new Map(parseQueryPairs(rawQuery));
  const endpoint = identifyEndpoint(method, rawPath, query, req.headers["x-amz-copy-source"] !== undefined);
  if (deps.isDown()) throw quorumUnavailable();
  const signature = verifySigV4(
    { method, rawPath, rawQuery, headers: req.headers },
    { region: deps.region, now: deps.store.now(), secretOf: (id) => deps.store.activeKey(id)?.secret },
  );
  const key = deps.store.key(signature.keyId);
  if (deps.store.isExpired(key)) throw forbidden(`Access key ${key.id} has expired`);
  const fault = deps.faults.take("s3", endpoint.name);
  if (fault) throw fault;
  const payload = decodePayload(raw, req.headers, signature);
  return dispatch({ store: deps.store, region: deps.region, key, endpoint, payload, headers: req.headers });
}

function dispatch(ctx: S3Context): Reply {
  const { endpoint, store, key } = ctx;
  if (endpoint.bucket === undefined) return listBuckets(ctx);
  if (endpoint.name === "CreateBucket") return createBucket(ctx, endpoint.bucket);
  const bucket = store.resolveBucket(endpoint.bucket, key);
  if (!bucket) throw noSuchBucket(endpoint.bucket);
  if (!allowed(store, bucket, key, endpoint.access))
    throw forbidden("Operation is not allowed for this key.");
  const handler = BUCKET_HANDLERS[endpoint.name];
  if (!handler) throw notImplemented(endpoint.name);
  return handler({ ...ctx, bucket, bucketName: endpoint.bucket });
}

function allowed(store: GarageStore, bucket: Bucket, key: AccessKey, access: Access): boolean {
  const perm = store.permissionsOf(bucket, key.id);
  if (access === "read") return perm.read;
  if (access === "write") return perm.write;
  if (access === "owner") return perm.owner;
  return true;
}
