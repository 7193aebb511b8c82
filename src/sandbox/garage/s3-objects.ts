import { createHash } from "node:crypto";
import { forbidden, invalidRange, noSuchKey } from "./errors.js";
import type { Reply } from "./http.js";
import { headerValue, XML_HEADERS, type BucketContext } from "./s3-context.js";
import { parseDeleteRequest, tag, text, xmlDocument } from "./s3-xml.js";
import type { Bucket, GarageStore, StoredObject } from "./store.js";

/** Object-level S3 operations on the in-memory bucket. */

/** Standard headers Garage stores with an object and gives back on GET/HEAD, besides x-amz-meta-*. */
const KEPT_HEADERS = [
  "content-type",
  "cache-control",
  "content-disposition",
  "content-encoding",
  "content-language",
  "expires",
  "x-amz-website-redirect-location",
];

function objectKey(ctx: BucketContext): string {
  return ctx.endpoint.key ?? "";
}

export function putObject(ctx: BucketContext): Reply {
  const key = objectKey(ctx);
  const data = Buffer.from(ctx.payload.data);
  checkQuotas(ctx.store, ctx.bucket, key, data.length);
  const object: StoredObject = {
    key,
    body: data,
    etag: createHash("md5").update(data).digest("hex"),
    lastModified: ctx.store.now(),
    headers: keptHeaders(ctx),
    checksum: ctx.payload.checksum,
  };
  ctx.bucket.objects.set(key, object);
  const checksum = object.checksum;
  return {
    status: 200,
    headers: {
      ETag: `"${object.etag}"`,
      ...(checksum ? { [`x-amz-checksum-${checksum.algorithm}`]: checksum.value } : {}),
    },
  };
}

function keptHeaders(ctx: BucketContext): [string, string][] {
  const kept: [string, string][] = [];
  for (const name of KEPT_HEADERS) {
    let value = headerValue(ctx.headers, name);
    // aws-chunked is the upload's framing, not the object's encoding.
    if (name === "content-encoding" && value !== undefined) {
      value = value
        .split(",")
        .map((part) => part.trim())
        .filter((part) => part !== "aws-chunked" && part !== "")
        .join(",");
    }
    if (value !== undefined && value !== "") kept.push([name, value]);
  }
  for (const name of Object.keys(ctx.headers).sort()) {
    const value = headerValue(ctx.headers, name);
    if (name.startsWith("x-amz-meta-") && value !== undefined) kept.push([name, value]);
  }
  return kept;
}

/** Garage's check_quotas: only growth is checked, so overwriting with a smaller object always works. */
function checkQuotas(store: GarageStore, bucket: Bucket, key: string, size: number): void {
  const { maxObjects, maxSize } = bucket.quotas;
  const previous = bucket.objects.get(key);
  const objectsAdded = previous ? 0 : 1;
  const bytesAdded = size - (previous?.body.length ?? 0);
  const usage = store.usage(bucket);
  if (maxObjects !== null && objectsAdded > 0 && usage.objects + objectsAdded > maxObjects) {
    throw forbidden(`Object quota is reached, maximum objects for this bucket: ${maxObjects}`);
  }
  if (maxSize !== null && bytesAdded > 0 && usage.bytes + bytesAdded > maxSize) {
    throw forbidden(
      `Bucket size quota is reached, maximum total size of objects for this bucket: ${maxSize}. ` +
        `The bucket is already ${usage.bytes} bytes, and this object would add ${bytesAdded} bytes.`,
    );
  }
}

export function getObject(ctx: BucketContext, withBody: boolean): Reply {
  const object = ctx.bucket.objects.get(objectKey(ctx));
  if (!object) throw noSuchKey();
  // Lower-case names throughout: stored headers must replace the default content-type, not repeat it.
  const headers: Record<string, string> = {
    "content-type": "binary/octet-stream",
    ...Object.fromEntries(object.headers),
    etag: `"${object.etag}"`,
    "last-modified": new Date(object.lastModified).toUTCString(),
    "accept-ranges": "bytes",
  };
  const range = parseRange(headerValue(ctx.headers, "range"), object.body.length);
  if (range) {
    const body = object.body.subarray(range.start, range.end + 1);
    headers["content-range"] = `bytes ${range.start}-${range.end}/${object.body.length}`;
    return reply(206, headers, body, withBody);
  }
  const checksum = object.checksum;
  if (checksum && headerValue(ctx.headers, "x-amz-checksum-mode") === "ENABLED") {
    headers[`x-amz-checksum-${checksum.algorithm}`] = checksum.value;
  }
  return reply(200, headers, object.body, withBody);
}

function reply(status: number, headers: Record<string, string>, body: Buffer, withBody: boolean): Reply {
  return withBody
    ? { status, headers, body }
    : { status, headers: { ...headers, "content-length": String(body.length) } };
}

/** One `bytes=` range; anything else is ignored (the whole object is sent), as S3 does. */
function parseRange(header: string | undefined, size: number): { start: number; end: number } | undefined {
  const match = header === undefined ? null : /^bytes=(\d*)-(\d*)$/.exec(header.trim());
  if (!match || (match[1] === "" && match[2] === "")) return undefined;
  const [first, last] = [match[1] ?? "", match[2] ?? ""];
  const start = first === "" ? Math.max(0, size - Number(last)) : Number(first);
  const end = first === "" || last === "" ? size - 1 : Math.min(Number(last), size - 1);
  if (start >= size || start > end) throw invalidRange(size);
  return { start, end };
}

/** Deleting a missing key succeeds (204), as in Garage and S3. */
export function deleteObject(ctx: BucketContext): Reply {
  ctx.bucket.objects.delete(objectKey(ctx));
  return { status: 204, headers: {} };
}

export function deleteObjects(ctx: BucketContext): Reply {
  const request = parseDeleteRequest(ctx.payload.data.toString("utf8"));
  for (const key of request.keys) ctx.bucket.objects.delete(key);
  const deleted = request.quiet ? [] : request.keys.map((key) => tag("Deleted", text("Key", key)));
  return { status: 200, headers: XML_HEADERS, body: xmlDocument("DeleteResult", ...deleted) };
}
