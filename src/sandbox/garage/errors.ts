/**
 * Errors as Garage reports them: an HTTP status, an AWS-style code and Garage's message (the Display
 * form of its Rust error, so "Bad request: …", "Forbidden: …"). The admin API renders them as JSON,
 * the S3 API as XML; both carry the region and the request path.
 */
export class GarageError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly headers: Readonly<Record<string, string>> = {},
  ) {
    super(message);
    this.name = "GarageError";
  }
}

export const INVALID_BUCKET_NAME_MESSAGE =
  "Invalid bucket name. See AWS documentation for constraints on S3 bucket names:\n" +
  "https://docs.aws.amazon.com/AmazonS3/latest/userguide/bucketnamingrules.html";

export const badRequest = (message: string): GarageError =>
  new GarageError(400, "InvalidRequest", `Bad request: ${message}`);

export const forbidden = (message: string): GarageError =>
  new GarageError(403, "AccessDenied", `Forbidden: ${message}`);

export const noSuchBucket = (name: string): GarageError =>
  new GarageError(404, "NoSuchBucket", `Bucket not found: ${name}`);

export const noSuchAccessKey = (id: string): GarageError =>
  new GarageError(404, "NoSuchAccessKey", `Access key not found: ${id}`);

export const keyAlreadyExists = (id: string): GarageError =>
  new GarageError(
    409,
    "KeyAlreadyExists",
    `Key ${id} already exists in data store. Even if it is deleted, we can't let you create a new key with the same ID. Sorry.`,
  );

export const bucketNotEmpty = (): GarageError =>
  new GarageError(409, "BucketNotEmpty", "Tried to delete a non-empty bucket");

export const bucketAlreadyExists = (): GarageError =>
  new GarageError(409, "BucketAlreadyExists", "Bucket already exists");

export const invalidBucketName = (name: string): GarageError =>
  new GarageError(400, "InvalidBucketName", `Invalid bucket name: ${name}`);

export const noSuchKey = (): GarageError => new GarageError(404, "NoSuchKey", "Key not found");

export const notImplemented = (endpoint: string): GarageError =>
  new GarageError(501, "NotImplemented", `Unimplemented action: ${endpoint}`);

export const invalidDigest = (message: string): GarageError =>
  new GarageError(400, "InvalidDigest", `Invalid digest: ${message}`);

export const malformedXml = (message: string): GarageError =>
  new GarageError(400, "MalformedXML", `Invalid XML: ${message}`);

export const authorizationHeaderMalformed = (unexpected: string, expected: string): GarageError =>
  new GarageError(
    400,
    "AuthorizationHeaderMalformed",
    `Authorization header malformed, unexpected scope: '${unexpected}', expected: '${expected}'`,
  );

export const invalidRange = (size: number): GarageError =>
  new GarageError(416, "InvalidRange", "Invalid HTTP range", { "Content-Range": `bytes */${size}` });

/** What a Garage node answers when it cannot reach a quorum of storage nodes (GarageError::Quorum). */
export const quorumUnavailable = (): GarageError =>
  new GarageError(
    503,
    "ServiceUnavailable",
    'Internal error: Could not reach quorum of 2. 1 of 3 request succeeded, others returned errors: ["Timeout", "Timeout"]',
  );

export const internalError = (message: string): GarageError =>
  new GarageError(500, "InternalError", `Internal error: ${message}`);

export function toGarageError(error: unknown): GarageError {
  if (error instanceof GarageError) return error;
  console.error("garage double: internal error", error);
  return internalError(error instanceof Error ? error.message : String(error));
}

/** The admin API's error body: `serde_json::to_string_pretty` of {code, message, region, path}. */
export function adminErrorBody(error: GarageError, region: string, path: string): string {
  return JSON.stringify({ code: error.code, message: error.message, region, path }, null, 2);
}

export function escapeXml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => `&${XML_ENTITIES[c] ?? "amp"};`);
}

const XML_ENTITIES: Readonly<Record<string, string>> = {
  "&": "amp",
  "<": "lt",
  ">": "gt",
  '"': "quot",
  "'": "apos",
};

/** The S3 API's error body, as Garage's s3_xml::Error serializes it. */
export function s3ErrorBody(error: GarageError, region: string, path: string): string {
  return (
    '<?xml version="1.0" encoding="UTF-8"?>' +
    `<Error><Code>${escapeXml(error.code)}</Code><Message>${escapeXml(error.message)}</Message>` +
    `<Resource>${escapeXml(path)}</Resource><Region>${escapeXml(region)}</Region></Error>`
  );
}
