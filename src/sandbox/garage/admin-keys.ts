import { bodyOf, param, requiredParam, type AdminContext } from "./admin-context.js";
import { keyInfo, listKeys } from "./admin-views.js";
import { badRequest } from "./errors.js";
import type { JsonReader } from "./json.js";
import type { AccessKey } from "./store.js";

/** Admin API v2 access key endpoints. Each returns the JSON body to send. */

export function handleListKeys(ctx: AdminContext): unknown {
  return listKeys(ctx.store);
}

export function handleGetKeyInfo(ctx: AdminContext): unknown {
  const showSecret = parseBool(param(ctx, "showSecretKey"));
  const id = param(ctx, "id");
  const search = param(ctx, "search");
  if ((id === undefined) === (search === undefined)) {
    throw badRequest("Either id or search must be provided (but not both)");
  }
  const key = id !== undefined ? ctx.store.key(id) : ctx.store.searchKey(search ?? "");
  return keyInfo(ctx.store, key, showSecret);
}

function parseBool(value: string | undefined): boolean {
  if (value === undefined || value === "false") return false;
  if (value === "true") return true;
  throw badRequest("Failed to parse query parameter");
}

/** The secret is in this response and, later, only in GetKeyInfo with showSecretKey=true. */
export function handleCreateKey(ctx: AdminContext): unknown {
  const updates = readKeyUpdates(bodyOf(ctx, "UpdateKeyRequestBody"));
  const key = ctx.store.createKey("Unnamed key");
  applyKeyUpdates(key, updates);
  return keyInfo(ctx.store, key, true);
}

export function handleImportKey(ctx: AdminContext): unknown {
  const body = bodyOf(ctx, "ImportKeyRequest");
  const accessKeyId = body.string("accessKeyId");
  const secretAccessKey = body.string("secretAccessKey");
  const name = body.optString("name") ?? "Imported key";
  return keyInfo(ctx.store, ctx.store.importKey(accessKeyId, secretAccessKey, name), false);
}

export function handleUpdateKey(ctx: AdminContext): unknown {
  const updates = readKeyUpdates(bodyOf(ctx, "UpdateKeyRequestBody"));
  const key = ctx.store.key(requiredParam(ctx, "id"));
  applyKeyUpdates(key, updates);
  return keyInfo(ctx.store, key, false);
}

export function handleDeleteKey(ctx: AdminContext): unknown {
  ctx.store.deleteKey(ctx.store.key(requiredParam(ctx, "id")));
  return null;
}

interface KeyUpdates {
  name: string | undefined;
  expiration: number | undefined;
  neverExpires: boolean;
  allowCreateBucket: boolean;
  denyCreateBucket: boolean;
}

function readKeyUpdates(body: JsonReader): KeyUpdates {
  const expiration = body.optString("expiration");
  const expirationMs = expiration === undefined ? undefined : Date.parse(expiration);
  if (expirationMs !== undefined && Number.isNaN(expirationMs)) {
    throw badRequest("Invalid JSON: input contains invalid characters (`expiration`)");
  }
  const neverExpires = body.optBool("neverExpires") ?? false;
  if (neverExpires && expirationMs !== undefined) {
    throw badRequest("cannot specify `expiration` and `never_expires`");
  }
  return {
    name: body.optString("name"),
    expiration: expirationMs,
    neverExpires,
    allowCreateBucket: body.optObject("allow")?.optBool("createBucket") ?? false,
    denyCreateBucket: body.optObject("deny")?.optBool("createBucket") ?? false,
  };
}

function applyKeyUpdates(key: AccessKey, updates: KeyUpdates): void {
  if (updates.name !== undefined) key.name = updates.name;
  if (updates.expiration !== undefined) key.expiration = updates.expiration;
  if (updates.neverExpires) key.expiration = null;
  if (updates.allowCreateBucket) key.allowCreateBucket = true;
  if (updates.denyCreateBucket) key.allowCreateBucket = false;
}
