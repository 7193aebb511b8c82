import type { IncomingHttpHeaders } from "node:http";
import type { Payload } from "./payload.js";
import type { S3Endpoint } from "./s3-endpoints.js";
import type { AccessKey, Bucket, GarageStore } from "./store.js";

/** What an S3 handler gets once the request is authenticated and its body decoded. */
export interface S3Context {
  readonly store: GarageStore;
  readonly region: string;
  readonly key: AccessKey;
  readonly endpoint: S3Endpoint;
  readonly payload: Payload;
  readonly headers: IncomingHttpHeaders;
}

/** …and, for bucket and object operations, the bucket the name resolved to for this key. */
export interface BucketContext extends S3Context {
  readonly bucket: Bucket;
  readonly bucketName: string;
}

export const XML_HEADERS: Readonly<Record<string, string>> = { "Content-Type": "application/xml" };

export function headerValue(headers: IncomingHttpHeaders, name: string): string | undefined {
  const value = headers[name];
  return Array.isArray(value) ? value.join(",") : value;
}
