import { bodyOf, param, requiredParam, type AdminContext } from "./admin-context.js";
import { bucketInfo, listBuckets } from "./admin-views.js";
import { badRequest, bucketAlreadyExists, INVALID_BUCKET_NAME_MESSAGE } from "./errors.js";
import { isValidBucketName } from "./ids.js";
import type { JsonReader } from "./json.js";
import { NO_PERMISSIONS, type Permissions, type Quotas, type Website } from "./store.js";

/** Admin API v2 bucket, permission and alias endpoints. Each returns the JSON body to send. */

export function handleListBuckets(ctx: AdminContext): unknown {
  return listBuckets(ctx.store, true);
}

export function handleGetBucketInfo(ctx: AdminContext): unknown {
  const id = param(ctx, "id");
  const globalAlias = param(ctx, "globalAlias");
  const search = param(ctx, "search");
  const given = [id, globalAlias, search].filter((value) => value !== undefined);
  if (given.length !== 1) {
    throw badRequest("Either id, globalAlias or search must be provided (but not several of them)");
  }
  const bucket =
    id !== undefined
      ? ctx.store.bucket(id)
      : globalAlias !== undefined
        ? ctx.store.bucketByGlobalAlias(globalAlias)
        : ctx.store.searchBucket(search ?? "");
  return bucketInfo(ctx.store, bucket);
}

function checkedName(name: string): string {
  if (!isValidBucketName(name)) throw badRequest(`${name}: ${INVALID_BUCKET_NAME_MESSAGE}`);
  return name;
}

export function handleCreateBucket(ctx: AdminContext): unknown {
  const body = bodyOf(ctx, "CreateBucketRequest");
  const globalAlias = body.optString("globalAlias");
  const local = body.optObject("localAlias");
  const localAlias = local && {
    accessKeyId: local.string("accessKeyId"),
    alias: local.string("alias"),
    allow: readPermissions(local.optObject("allow")),
  };
  if (globalAlias !== undefined && ctx.store.globalAliasTarget(checkedName(globalAlias)) !== undefined) {
    throw bucketAlreadyExists();
  }
  if (localAlias) checkedName(localAlias.alias);
  const key = localAlias && ctx.store.key(localAlias.accessKeyId);
  if (localAlias && key?.localAliases.has(localAlias.alias)) throw badRequest("Local alias already exists");
  const bucket = ctx.store.createBucket();
  if (globalAlias !== undefined) ctx.store.setGlobalAlias(bucket, globalAlias);
  if (localAlias && key) {
    ctx.store.setLocalAlias(bucket, key, localAlias.alias);
    const { read, write, owner } = localAlias.allow;
    if (read || write || owner) ctx.store.setPermissions(bucket, key, localAlias.allow);
  }
  return bucketInfo(ctx.store, bucket);
}

function readPermissions(reader: JsonReader | undefined): Permissions {
  if (!reader) return { ...NO_PERMISSIONS };
  return {
    read: reader.optBool("read") ?? false,
    write: reader.optBool("write") ?? false,
    owner: reader.optBool("owner") ?? false,
  };
}

/** Reads and checks the whole body before changing anything, so a refused update leaves no trace. */
export function handleUpdateBucket(ctx: AdminContext): unknown {
  const body = bodyOf(ctx, "UpdateBucketRequestBody");
  const websiteAccess = body.optObject("websiteAccess");
  const quotas = body.optObject("quotas");
  // Both quotas are replaced: an absent one is removed (the trap the README warns about).
  const newQuotas: Quotas | undefined = quotas && {
    maxSize: quotas.optCount("maxSize") ?? null,
    maxObjects: quotas.optCount("maxObjects") ?? null,
  };
  const access = websiteAccess && {
    enabled: websiteAccess.bool("enabled"),
    indexDocument: websiteAccess.optString("indexDocument"),
    errorDocument: websiteAccess.optString("errorDocument"),
  };
  const bucket = ctx.store.bucket(requiredParam(ctx, "id"));
  const website = access && websiteConfig(access);
  if (website !== undefined) bucket.website = website;
  if (newQuotas) bucket.quotas = newQuotas;
  return bucketInfo(ctx.store, bucket);
}

function websiteConfig(access: {
  enabled: boolean;
  indexDocument: string | undefined;
  errorDocument: string | undefined;
}): Website | null {
  const { enabled, indexDocument, errorDocument } = access;
  if (!enabled) {
    if (indexDocument !== undefined || errorDocument !== undefined) {
      throw badRequest("Cannot specify indexDocument or errorDocument when disabling website access.");
    }
    return null;
  }
  if (indexDocument === undefined) {
    throw badRequest("Please specify indexDocument when enabling website access.");
  }
  return { indexDocument, errorDocument: errorDocument ?? null };
}

export function handleDeleteBucket(ctx: AdminContext): unknown {
  ctx.store.deleteBucket(ctx.store.bucket(requiredParam(ctx, "id")));
  return null;
}

export function handleCleanupIncompleteUploads(ctx: AdminContext): unknown {
  const body = bodyOf(ctx, "CleanupIncompleteUploadsRequest");
  const bucketId = body.string("bucketId");
  body.count("olderThanSecs");
  ctx.store.bucket(bucketId);
  // Multipart uploads are not implemented, so there is never anything to clean up.
  return { uploadsDeleted: 0 };
}

/** AllowBucketKey sets the flags that are true; DenyBucketKey clears them. Others are left alone. */
export function handleChangeKeyPermission(ctx: AdminContext, allow: boolean): unknown {
  const body = bodyOf(ctx, "BucketKeyPermChangeRequest");
  const bucketId = body.string("bucketId");
  const accessKeyId = body.string("accessKeyId");
  const change = readPermissions(body.object("permissions"));
  const bucket = ctx.store.bucket(bucketId);
  const key = ctx.store.key(accessKeyId);
  const perm = ctx.store.permissionsOf(bucket, key.id);
  if (change.read) perm.read = allow;
  if (change.write) perm.write = allow;
  if (change.owner) perm.owner = allow;
  ctx.store.setPermissions(bucket, key, perm);
  return bucketInfo(ctx.store, bucket);
}

/** Add/RemoveBucketAlias: `globalAlias`, or `localAlias` with `accessKeyId` (an untagged enum). */
export function handleBucketAlias(ctx: AdminContext, add: boolean): unknown {
  const body = bodyOf(ctx, add ? "AddBucketAliasRequest" : "RemoveBucketAliasRequest");
  const bucketIdText = body.string("bucketId");
  const globalAlias = body.optString("globalAlias");
  const localAlias = body.optString("localAlias");
  const accessKeyId = body.optString("accessKeyId");
  if (globalAlias === undefined && (localAlias === undefined || accessKeyId === undefined)) {
    throw badRequest("Invalid JSON: data did not match any variant of untagged enum BucketAliasEnum");
  }
  const bucket = ctx.store.bucket(bucketIdText);
  if (globalAlias !== undefined) {
    if (add) ctx.store.setGlobalAlias(bucket, globalAlias);
    else ctx.store.unsetGlobalAlias(bucket, globalAlias);
  } else if (localAlias !== undefined && accessKeyId !== undefined) {
    const key = ctx.store.key(accessKeyId);
    if (add) ctx.store.setLocalAlias(bucket, key, localAlias);
    else ctx.store.unsetLocalAlias(bucket, key, localAlias);
  }
  return bucketInfo(ctx.store, bucket);
}
