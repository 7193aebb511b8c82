import { badRequest } from "./errors.js";
import type { Reply } from "./http.js";
import { XML_HEADERS, type BucketContext } from "./s3-context.js";
import { tag, text, xmlDocument } from "./s3-xml.js";
import type { StoredObject } from "./store.js";

/**
 * ListObjectsV2 over the bucket's keys in byte order: prefix, delimiter (common prefixes count
 * towards max-keys, as in S3), max-keys clamped to 1..1000 as Garage does, start-after, and an opaque
 * continuation token that says where the previous page stopped.
 */

interface ListQuery {
  readonly prefix: string;
  readonly delimiter: string | undefined;
  readonly maxKeys: number;
  readonly startAfter: string | undefined;
  readonly token: string | undefined;
  readonly urlEncode: boolean;
}

interface Page {
  readonly contents: StoredObject[];
  readonly prefixes: string[];
  /** Where to resume: after this key, or after every key under this common prefix. */
  readonly next: Position | undefined;
}

interface Position {
  readonly kind: "key" | "prefix";
  readonly value: string;
}

export function listObjectsV2(ctx: BucketContext): Reply {
  const query = readQuery(ctx.endpoint.query);
  const page = listPage([...ctx.bucket.objects.values()], query);
  const enc = (value: string | undefined): string | undefined =>
    value !== undefined && query.urlEncode ? encodeURIComponent(value) : value;
  const body = xmlDocument(
    "ListBucketResult",
    text("Name", ctx.bucketName),
    text("Prefix", enc(query.prefix)),
    text("StartAfter", enc(query.startAfter)),
    text("ContinuationToken", query.token),
    text("NextContinuationToken", page.next && encodeToken(page.next)),
    text("KeyCount", page.contents.length + page.prefixes.length),
    text("MaxKeys", query.maxKeys),
    text("Delimiter", enc(query.delimiter)),
    text("EncodingType", query.urlEncode ? "url" : undefined),
    text("IsTruncated", page.next !== undefined),
    ...page.contents.map((object) =>
      tag(
        "Contents",
        text("Key", enc(object.key)),
        text("LastModified", new Date(object.lastModified).toISOString()),
        text("ETag", `"${object.etag}"`),
        text("Size", object.body.length),
        text("StorageClass", "STANDARD"),
      ),
    ),
    ...page.prefixes.map((prefix) => tag("CommonPrefixes", text("Prefix", enc(prefix)))),
  );
  return { status: 200, headers: XML_HEADERS, body };
}

function readQuery(query: ReadonlyMap<string, string>): ListQuery {
  const maxKeysText = query.get("max-keys");
  const maxKeys = maxKeysText === undefined ? 1000 : Number(maxKeysText);
  if (!Number.isInteger(maxKeys)) throw badRequest("Failed to parse query parameter");
  const delimiter = query.get("delimiter");
  return {
    prefix: query.get("prefix") ?? "",
    delimiter: delimiter === "" ? undefined : delimiter,
    maxKeys: Math.min(1000, Math.max(1, maxKeys)),
    startAfter: query.get("start-after"),
    token: query.get("continuation-token"),
    urlEncode: query.get("encoding-type") === "url",
  };
}

function listPage(objects: StoredObject[], query: ListQuery): Page {
  const start = startPosition(query);
  const sorted = objects
    .filter((object) => object.key.startsWith(query.prefix) && isAfter(object.key, start))
    .sort((a, b) => compareKeys(a.key, b.key));
  const contents: StoredObject[] = [];
  const prefixes: string[] = [];
  let last: Position | undefined;
  for (const object of sorted) {
    const common = commonPrefix(object.key, query);
    if (common !== undefined && common === prefixes.at(-1)) continue;
    if (contents.length + prefixes.length === query.maxKeys) return { contents, prefixes, next: last };
    if (common === undefined) contents.push(object);
    else prefixes.push(common);
    last = common === undefined ? { kind: "key", value: object.key } : { kind: "prefix", value: common };
  }
  return { contents, prefixes, next: undefined };
}

function startPosition(query: ListQuery): Position | undefined {
  if (query.token !== undefined) return decodeToken(query.token);
  return query.startAfter === undefined ? undefined : { kind: "key", value: query.startAfter };
}

function isAfter(key: string, start: Position | undefined): boolean {
  if (!start) return true;
  if (start.kind === "prefix" && key.startsWith(start.value)) return false;
  return compareKeys(key, start.value) > 0;
}

function commonPrefix(key: string, query: ListQuery): string | undefined {
  if (query.delimiter === undefined) return undefined;
  const at = key.indexOf(query.delimiter, query.prefix.length);
  return at < 0 ? undefined : key.slice(0, at + query.delimiter.length);
}

/** Byte order of the UTF-8 encodings, as S3 lists keys. */
function compareKeys(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a, "utf8"), Buffer.from(b, "utf8"));
}

function encodeToken(position: Position): string {
  return Buffer.from(`${position.kind === "key" ? "]" : "["}${position.value}`, "utf8").toString("base64url");
}

function decodeToken(token: string): Position {
  const decoded = Buffer.from(token, "base64url").toString("utf8");
  const kind = decoded.startsWith("]") ? "key" : decoded.startsWith("[") ? "prefix" : undefined;
  if (kind === undefined) throw badRequest("Invalid continuation token");
  return { kind, value: decoded.slice(1) };
}
