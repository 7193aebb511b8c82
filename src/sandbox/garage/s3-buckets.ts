import {
  badRequest,
  bucketAlreadyExists,
  escapeXml,
  forbidden,
  GarageError,
  INVALID_BUCKET_NAME_MESSAGE,
} from "./errors.js";
import type { Reply } from "./http.js";
import { isValidBucketName } from "./ids.js";
import { XML_HEADERS, type BucketContext, type S3Context } from "./s3-context.js";
import { parseLocationConstraint, tag, text, xmlDocument } from "./s3-xml.js";
import { anyPermission } from "./store.js";

/** Bucket-level S3 operations. */

const iso = (ms: number): string => new Date(ms).toISOString();

/** Buckets the key has a permission on, under their global aliases and the key's local aliases. */
export function listBuckets(ctx: S3Context): Reply {
  const { store, key } = ctx;
  const entries: { name: string; created: number }[] = [];
  for (const bucket of store.allBuckets()) {
    if (!anyPermission(store.permissionsOf(bucket, key.id))) continue;
    for (const alias of bucket.globalAliases) entries.push({ name: alias, created: bucket.created });
    for (const [alias, id] of key.localAliases) {
      if (id === bucket.id) entries.push({ name: alias, created: bucket.created });
    }
  }
  entries.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  const buckets = entries.map((e) =>
    tag("Bucket", text("Name", e.name), text("CreationDate", iso(e.created))),
  );
  const body = xmlDocument(
    "ListAllMyBucketsResult",
    tag("Owner", text("ID", key.id), text("DisplayName", key.name)),
    tag("Buckets", ...buckets),
  );
  return { status: 200, headers: XML_HEADERS, body };
}

/**
 * S3 CreateBucket only ever makes a local alias, in the calling key's namespace, and needs the key's
 * createBucket permission. A name that already resolves for this key is fine if the key may write to
 * that bucket, and BucketAlreadyExists otherwise.
 */
export function createBucket(ctx: S3Context, name: string): Reply {
  checkLocation(ctx);
  const { store, key } = ctx;
  const existing = store.resolveBucket(name, key);
  if (existing) {
    const perm = store.permissionsOf(existing, key.id);
    if (!(perm.write || perm.owner)) throw bucketAlreadyExists();
  } else {
    if (!key.allowCreateBucket) throw forbidden(`Access key ${key.id} is not allowed to create buckets`);
    if (!isValidBucketName(name)) throw badRequest(`${name}: ${INVALID_BUCKET_NAME_MESSAGE}`);
    const bucket = store.createBucket();
    store.setPermissions(bucket, key, { read: true, write: true, owner: true });
    store.setLocalAlias(bucket, key, name);
  }
  return { status: 200, headers: { Location: `/${name}` } };
}

function checkLocation(ctx: S3Context): void {
  let location: string | undefined;
  try {
    location = parseLocationConstraint(ctx.payload.data.toString("utf8"));
  } catch (error) {
    if (error instanceof GarageError) throw badRequest("Invalid create bucket XML query");
    throw error;
  }
  if (location !== undefined && location !== ctx.region) {
    throw badRequest(
      `Cannot satisfy location constraint \`${location}\`: buckets can only be created in region \`${ctx.region}\``,
    );
  }
}

export function headBucket(): Reply {
  return { status: 200, headers: {} };
}

export function getBucketLocation(ctx: BucketContext): Reply {
  return {
    status: 200,
    headers: XML_HEADERS,
    body: xmlDocument("LocationConstraint", escapeXml(ctx.region)),
  };
}
