import { badRequest } from "./errors.js";

/**
 * Which S3 operation a path-style request is (Garage's s3/router.rs): the method, whether the path
 * names a bucket and a key, and the sub-resource keyword in the query (?delete, ?uploads, …).
 */

export type Access = "none" | "read" | "write" | "owner";

export interface S3Endpoint {
  readonly name: string;
  readonly bucket: string | undefined;
  readonly key: string | undefined;
  readonly access: Access;
  readonly query: ReadonlyMap<string, string>;
}

type Methods = Partial<Record<string, string>>;

const BUCKET_SUBRESOURCES: Readonly<Record<string, Methods>> = {
  delete: { POST: "DeleteObjects" },
  location: { GET: "GetBucketLocation" },
  versioning: { GET: "GetBucketVersioning", PUT: "PutBucketVersioning" },
  versions: { GET: "ListObjectVersions" },
  uploads: { GET: "ListMultipartUploads" },
  website: { GET: "GetBucketWebsite", PUT: "PutBucketWebsite", DELETE: "DeleteBucketWebsite" },
  cors: { GET: "GetBucketCors", PUT: "PutBucketCors", DELETE: "DeleteBucketCors" },
  lifecycle: {
    GET: "GetBucketLifecycleConfiguration",
    PUT: "PutBucketLifecycleConfiguration",
    DELETE: "DeleteBucketLifecycle",
  },
  acl: { GET: "GetBucketAcl", PUT: "PutBucketAcl" },
  policy: { GET: "GetBucketPolicy", PUT: "PutBucketPolicy", DELETE: "DeleteBucketPolicy" },
  tagging: { GET: "GetBucketTagging", PUT: "PutBucketTagging", DELETE: "DeleteBucketTagging" },
  encryption: { GET: "GetBucketEncryption", PUT: "PutBucketEncryption", DELETE: "DeleteBucketEncryption" },
};

const OBJECT_SUBRESOURCES: Readonly<Record<string, Methods>> = {
  uploads: { POST: "CreateMultipartUpload" },
  uploadId: {
    GET: "ListParts",
    PUT: "UploadPart",
    POST: "CompleteMultipartUpload",
    DELETE: "AbortMultipartUpload",
  },
  acl: { GET: "GetObjectAcl", PUT: "PutObjectAcl" },
  tagging: { GET: "GetObjectTagging", PUT: "PutObjectTagging", DELETE: "DeleteObjectTagging" },
  retention: { GET: "GetObjectRetention", PUT: "PutObjectRetention" },
  "legal-hold": { GET: "GetObjectLegalHold", PUT: "PutObjectLegalHold" },
};

export function identifyEndpoint(
  method: string,
  rawPath: string,
  query: ReadonlyMap<string, string>,
  copySource: boolean,
): S3Endpoint {
  const { bucket, key } = splitPath(rawPath);
  const name =
    bucket === undefined
      ? rootEndpoint(method)
      : key === undefined
        ? bucketEndpoint(method, query)
        : objectEndpoint(method, query, copySource);
  return { name, bucket, key, access: accessOf(name), query };
}

function splitPath(rawPath: string): { bucket: string | undefined; key: string | undefined } {
  const path = rawPath.replace(/^\/+/, "");
  const slash = path.indexOf("/");
  const bucket = decode(slash < 0 ? path : path.slice(0, slash));
  const key = slash < 0 ? "" : decode(path.slice(slash + 1));
  return { bucket: bucket === "" ? undefined : bucket, key: key === "" ? undefined : key };
}

function decode(segment: string): string {
  try {
    return decodeURIComponent(segment);
  } catch {
    throw badRequest("Invalid UTF-8 in path");
  }
}

function rootEndpoint(method: string): string {
  if (method === "GET") return "ListBuckets";
  throw badRequest(`Unknown API endpoint: ${method} /`);
}

function bucketEndpoint(method: string, query: ReadonlyMap<string, string>): string {
  const sub = fromSubresource(BUCKET_SUBRESOURCES, method, query);
  if (sub !== undefined) return sub;
  const plain: Methods = {
    GET: query.get("list-type") === "2" ? "ListObjectsV2" : "ListObjects",
    HEAD: "HeadBucket",
    PUT: "CreateBucket",
    DELETE: "DeleteBucket",
    POST: "PostObject",
  };
  return plain[method] ?? unknownMethod(method);
}

function objectEndpoint(method: string, query: ReadonlyMap<string, string>, copySource: boolean): string {
  const sub = fromSubresource(OBJECT_SUBRESOURCES, method, query);
  if (sub !== undefined) return sub === "UploadPart" && copySource ? "UploadPartCopy" : sub;
  const plain: Methods = {
    GET: "GetObject",
    HEAD: "HeadObject",
    PUT: copySource ? "CopyObject" : "PutObject",
    DELETE: "DeleteObject",
  };
  return plain[method] ?? unknownMethod(method);
}

function fromSubresource(
  table: Readonly<Record<string, Methods>>,
  method: string,
  query: ReadonlyMap<string, string>,
): string | undefined {
  for (const keyword of Object.keys(table)) {
    if (query.has(keyword)) return table[keyword]?.[method] ?? unknownMethod(`${method} ?${keyword}`);
  }
  return undefined;
}

function unknownMethod(what: string): never {
  throw badRequest(`Unknown method: ${what}`);
}

/** Garage's authorization_type: bucket configuration needs owner, reads need read, the rest write. */
function accessOf(name: string): Access {
  if (name === "ListBuckets" || name === "CreateBucket") return "none";
  if (name === "DeleteBucket" || /Bucket(Website|Cors|Lifecycle)/.test(name)) return "owner";
  if (/^(Get|Head|List)/.test(name)) return "read";
  return "write";
}
