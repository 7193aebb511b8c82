import {
  handleBucketAlias,
  handleChangeKeyPermission,
  handleCleanupIncompleteUploads,
  handleCreateBucket,
  handleDeleteBucket,
  handleGetBucketInfo,
  handleListBuckets,
  handleUpdateBucket,
} from "./admin-buckets.js";
import type { AdminContext, AdminParam } from "./admin-context.js";
import {
  handleCreateKey,
  handleDeleteKey,
  handleGetKeyInfo,
  handleImportKey,
  handleListKeys,
  handleUpdateKey,
} from "./admin-keys.js";
import { clusterHealth, clusterStatus, listBuckets } from "./admin-views.js";

export interface AdminReply {
  readonly status: number;
  readonly contentType: string;
  readonly body: string;
}

export interface AdminRoute {
  readonly method: "GET" | "POST";
  readonly path: string;
  /** The operation name, for failNext. */
  readonly name: string;
  /** Parsed as JSON before authentication, as Garage's router does. */
  readonly body: boolean;
  /** Query parameters the router requires (400 "Missing argument" without them). */
  readonly params: readonly AdminParam[];
  readonly auth: boolean;
  /** Only served when the request has none of these parameters (v1 shares paths between endpoints). */
  readonly unless?: readonly AdminParam[];
  /** Health endpoints answer while the cluster is down; everything else needs a quorum. */
  readonly needsQuorum: boolean;
  readonly run: (ctx: AdminContext) => AdminReply;
}

const json = (body: unknown): AdminReply => ({
  status: 200,
  contentType: "application/json",
  body: JSON.stringify(body, null, 2),
});

interface RouteSpec {
  readonly body?: boolean;
  readonly params?: readonly AdminParam[];
  readonly auth?: boolean;
  readonly unless?: readonly AdminParam[];
  readonly needsQuorum?: boolean;
  readonly run: (ctx: AdminContext) => AdminReply;
}

function route(method: "GET" | "POST", path: string, name: string, spec: RouteSpec): AdminRoute {
  return {
    method,
    path,
    name,
    body: spec.body ?? false,
    params: spec.params ?? [],
    auth: spec.auth ?? true,
    needsQuorum: spec.needsQuorum ?? true,
    run: spec.run,
    ...(spec.unless ? { unless: spec.unless } : {}),
  };
}

const v2 = (method: "GET" | "POST", name: string, spec: RouteSpec): AdminRoute =>
  route(method, `/v2/${name}`, name, spec);

/** GET /health: no token, plain text, 503 without quorum. */
const health = route("GET", "/health", "Health", {
  auth: false,
  needsQuorum: false,
  run: (ctx) =>
    ctx.down
      ? { status: 503, contentType: "text/plain", body: "Quorum is not available for some/all partitions." }
      : { status: 200, contentType: "text/plain", body: "Garage is fully operational" },
});

const getClusterHealth = (ctx: AdminContext): AdminReply => json(clusterHealth(ctx.down));

export const ADMIN_V2_ROUTES: readonly AdminRoute[] = [
  health,
  v2("GET", "GetClusterHealth", { needsQuorum: false, run: getClusterHealth }),
  v2("GET", "GetClusterStatus", {
    needsQuorum: false,
    run: (ctx) => json(clusterStatus(ctx.nodeId, ctx.down)),
  }),
  v2("GET", "ListBuckets", { run: (ctx) => json(handleListBuckets(ctx)) }),
  v2("GET", "GetBucketInfo", { run: (ctx) => json(handleGetBucketInfo(ctx)) }),
  v2("POST", "CreateBucket", { body: true, run: (ctx) => json(handleCreateBucket(ctx)) }),
  v2("POST", "UpdateBucket", { body: true, params: ["id"], run: (ctx) => json(handleUpdateBucket(ctx)) }),
  v2("POST", "DeleteBucket", { params: ["id"], run: (ctx) => json(handleDeleteBucket(ctx)) }),
  v2("POST", "CleanupIncompleteUploads", {
    body: true,
    run: (ctx) => json(handleCleanupIncompleteUploads(ctx)),
  }),
  v2("POST", "AllowBucketKey", { body: true, run: (ctx) => json(handleChangeKeyPermission(ctx, true)) }),
  v2("POST", "DenyBucketKey", { body: true, run: (ctx) => json(handleChangeKeyPermission(ctx, false)) }),
  v2("POST", "AddBucketAlias", { body: true, run: (ctx) => json(handleBucketAlias(ctx, true)) }),
  v2("POST", "RemoveBucketAlias", { body: true, run: (ctx) => json(handleBucketAlias(ctx, false)) }),
  v2("GET", "ListKeys", { run: (ctx) => json(handleListKeys(ctx)) }),
  v2("GET", "GetKeyInfo", { run: (ctx) => json(handleGetKeyInfo(ctx)) }),
  v2("POST", "CreateKey", { body: true, run: (ctx) => json(handleCreateKey(ctx)) }),
  v2("POST", "ImportKey", { body: true, run: (ctx) => json(handleImportKey(ctx)) }),
  v2("POST", "UpdateKey", { body: true, params: ["id"], run: (ctx) => json(handleUpdateKey(ctx)) }),
  v2("POST", "DeleteKey", { params: ["id"], run: (ctx) => json(handleDeleteKey(ctx)) }),
];

/** The two v1 calls a version probe makes; Garage 2 still answers them (its v1 compatibility layer). */
function v1Routes(withCreated: boolean): AdminRoute[] {
  return [
    route("GET", "/v1/health", "GetClusterHealth", { needsQuorum: false, run: getClusterHealth }),
    route("GET", "/v1/bucket", "ListBuckets", {
      unless: ["id", "globalAlias"],
      run: (ctx) => json(listBuckets(ctx.store, withCreated)),
    }),
  ];
}

export function adminRoutes(apiVersion: "v2" | "v1-only"): readonly AdminRoute[] {
  return apiVersion === "v2" ? [...ADMIN_V2_ROUTES, ...v1Routes(true)] : [health, ...v1Routes(false)];
}
