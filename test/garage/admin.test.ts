import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { startGarageDouble, type GarageDouble } from "../../src/sandbox/garage/index.js";

/** The admin API v2 of the Garage double, driven with fetch as majordome's client would. */

const TOKEN = "admin-token-for-tests";

interface Answer {
  status: number;
  contentType: string | null;
  body: unknown;
}

interface Json {
  [key: string]: unknown;
}

let garage: GarageDouble;
let clockMs: number;

beforeEach(async () => {
  clockMs = Date.UTC(2026, 0, 1);
  garage = await startGarageDouble({ adminToken: TOKEN, now: () => clockMs });
});

afterEach(async () => {
  await garage.close();
});

async function call(
  method: string,
  pathAndQuery: string,
  body?: unknown,
  headers: Record<string, string> = { authorization: `Bearer ${TOKEN}` },
): Promise<Answer> {
  const response = await fetch(`${garage.adminUrl}${pathAndQuery}`, {
    method,
    headers,
    ...(body === undefined ? {} : { body: typeof body === "string" ? body : JSON.stringify(body) }),
  });
  const text = await response.text();
  const contentType = response.headers.get("content-type");
  return {
    status: response.status,
    contentType,
    body: contentType === "application/json" && text !== "" ? (JSON.parse(text) as unknown) : text,
  };
}

/** The JSON object of a successful answer. */
async function ok(method: string, pathAndQuery: string, body?: unknown): Promise<Json> {
  const answer = await call(method, pathAndQuery, body);
  expect(answer.status, JSON.stringify(answer.body)).toBe(200);
  return answer.body as Json;
}

async function createBucket(globalAlias: string): Promise<string> {
  return String((await ok("POST", "/v2/CreateBucket", { globalAlias })).id);
}

async function createKey(name: string): Promise<{ id: string; secret: string }> {
  const key = await ok("POST", "/v2/CreateKey", { name });
  return { id: String(key.accessKeyId), secret: String(key.secretAccessKey) };
}

function expectError(answer: Answer, status: number, code: string, message?: RegExp): void {
  expect(answer.status).toBe(status);
  expect(answer.contentType).toBe("application/json");
  expect(answer.body).toMatchObject({ code, region: "garage" });
  if (message) expect((answer.body as Json).message).toMatch(message);
}

describe("authentication", () => {
  it("refuses a request without the token or with another one, 403 AccessDenied", async () => {
    expectError(await call("GET", "/v2/ListBuckets", undefined, {}), 403, "AccessDenied", /must be provided/);
    const wrong = await call("GET", "/v2/ListBuckets", undefined, { authorization: "Bearer nope" });
    expectError(wrong, 403, "AccessDenied", /Invalid authorization token/);
    expect((wrong.body as Json).path).toBe("/v2/ListBuckets");
  });

  it("serves /health without a token", async () => {
    expect(await call("GET", "/health", undefined, {})).toMatchObject({ status: 200 });
  });

  it("routes before it authenticates: an unknown endpoint is 400 even without a token", async () => {
    expectError(await call("GET", "/v2/Nope", undefined, {}), 400, "InvalidRequest", /Unknown API endpoint/);
  });
});

describe("buckets", () => {
  it("creates a bucket with a global alias and reports it like GetBucketInfo", async () => {
    const created = await ok("POST", "/v2/CreateBucket", { globalAlias: "site-assets" });
    expect(created.id).toMatch(/^[0-9a-f]{64}$/);
    expect(created).toMatchObject({
      globalAliases: ["site-assets"],
      websiteAccess: false,
      websiteConfig: null,
      keys: [],
      objects: 0,
      bytes: 0,
      quotas: { maxSize: null, maxObjects: null },
      created: new Date(clockMs).toISOString(),
    });
    expect(await ok("GET", "/v2/GetBucketInfo?globalAlias=site-assets")).toEqual(created);
    expect(await ok("GET", `/v2/GetBucketInfo?id=${String(created.id)}`)).toEqual(created);
    expect(await ok("GET", `/v2/GetBucketInfo?search=${String(created.id).slice(0, 8)}`)).toEqual(created);
    expect(garage.bucketNames()).toEqual(["site-assets"]);
  });

  it("refuses a taken global alias (409) and names S3 would refuse (400)", async () => {
    await createBucket("taken");
    expectError(await call("POST", "/v2/CreateBucket", { globalAlias: "taken" }), 409, "BucketAlreadyExists");
    expectError(await call("POST", "/v2/CreateBucket", { globalAlias: "Upper" }), 400, "InvalidRequest");
    expectError(
      await call("POST", "/v2/CreateBucket", { globalAlias: "192.168.1.1" }),
      400,
      "InvalidRequest",
    );
  });

  it("answers 404 NoSuchBucket for an unknown id and 400 for something that is not an id", async () => {
    expectError(await call("GET", `/v2/GetBucketInfo?id=${"a".repeat(64)}`), 404, "NoSuchBucket");
    expectError(await call("GET", "/v2/GetBucketInfo?globalAlias=none"), 404, "NoSuchBucket");
    expectError(await call("GET", "/v2/GetBucketInfo?id=xyz"), 400, "InvalidRequest", /Invalid bucket id/);
    expectError(await call("GET", "/v2/GetBucketInfo"), 400, "InvalidRequest", /Either id, globalAlias/);
  });

  it("reads ids from the query string and refuses them in the path, as Garage's router does", async () => {
    const id = await createBucket("by-query");
    expectError(await call("POST", `/v2/DeleteBucket/${id}`), 400, "InvalidRequest", /Unknown API endpoint/);
    expectError(await call("POST", "/v2/DeleteBucket"), 400, "InvalidRequest", /Missing argument `id`/);
    expectError(
      await call("POST", `/v2/UpdateBucket/${id}`, { quotas: { maxSize: 1, maxObjects: 1 } }),
      400,
      "InvalidRequest",
      /Unknown API endpoint/,
    );
    expectError(await call("POST", `/v2/DeleteBucket?id=${id}&id=${id}`), 400, "InvalidRequest", /repeated/);
    expect(await call("POST", `/v2/DeleteBucket?id=${id}`)).toMatchObject({ status: 200, body: null });
    expect(garage.bucketNames()).toEqual([]);
  });

  it("refuses a method the endpoint does not have", async () => {
    expectError(await call("GET", "/v2/CreateBucket"), 400, "InvalidRequest", /Unknown API endpoint: GET/);
  });

  it("replaces both quotas on UpdateBucket: an absent one is removed", async () => {
    const id = await createBucket("quota");
    const both = await ok("POST", `/v2/UpdateBucket?id=${id}`, { quotas: { maxSize: 1000, maxObjects: 10 } });
    expect(both.quotas).toEqual({ maxSize: 1000, maxObjects: 10 });
    const one = await ok("POST", `/v2/UpdateBucket?id=${id}`, { quotas: { maxObjects: 5 } });
    expect(one.quotas).toEqual({ maxSize: null, maxObjects: 5 });
    const untouched = await ok("POST", `/v2/UpdateBucket?id=${id}`, {});
    expect(untouched.quotas).toEqual({ maxSize: null, maxObjects: 5 });
  });

  it("configures website access and checks its documents", async () => {
    const id = await createBucket("www");
    const website = { enabled: true, indexDocument: "index.html", errorDocument: "404.html" };
    const on = await ok("POST", `/v2/UpdateBucket?id=${id}`, { websiteAccess: website });
    expect(on).toMatchObject({
      websiteAccess: true,
      websiteConfig: { indexDocument: "index.html", errorDocument: "404.html" },
    });
    const noIndex = await call("POST", `/v2/UpdateBucket?id=${id}`, { websiteAccess: { enabled: true } });
    expectError(noIndex, 400, "InvalidRequest", /indexDocument/);
    const off = await ok("POST", `/v2/UpdateBucket?id=${id}`, { websiteAccess: { enabled: false } });
    expect(off).toMatchObject({ websiteAccess: false, websiteConfig: null });
  });

  it("refuses malformed bodies as Garage's serde does", async () => {
    expectError(await call("POST", "/v2/CreateBucket"), 400, "InvalidRequest", /Invalid JSON: EOF/);
    expectError(await call("POST", "/v2/CreateBucket", "{nope"), 400, "InvalidRequest", /Invalid JSON/);
    expectError(
      await call("POST", "/v2/CreateBucket", { globalAlias: 3 }),
      400,
      "InvalidRequest",
      /invalid type/,
    );
    const id = await createBucket("perm");
    const missing = await call("POST", "/v2/AllowBucketKey", { bucketId: id, accessKeyId: "GKx" });
    expectError(missing, 400, "InvalidRequest", /missing field `permissions`/);
  });

  it("manages global and local aliases, and will not remove a bucket's last alias", async () => {
    const id = await createBucket("first");
    const key = await createKey("aliaser");
    const added = await ok("POST", "/v2/AddBucketAlias", { bucketId: id, globalAlias: "second" });
    expect(added.globalAliases).toEqual(["first", "second"]);
    await ok("POST", "/v2/AddBucketAlias", { bucketId: id, localAlias: "mine", accessKeyId: key.id });
    const listed = (await ok("GET", "/v2/ListBuckets")) as unknown as Json[];
    expect(listed[0]).toMatchObject({ localAliases: [{ accessKeyId: key.id, alias: "mine" }] });
    await ok("POST", "/v2/RemoveBucketAlias", { bucketId: id, globalAlias: "first" });
    await ok("POST", "/v2/RemoveBucketAlias", { bucketId: id, localAlias: "mine", accessKeyId: key.id });
    const last = await call("POST", "/v2/RemoveBucketAlias", { bucketId: id, globalAlias: "second" });
    expectError(last, 400, "InvalidRequest", /doesn't have other aliases/);
  });
});

describe("DeleteBucket", () => {
  it("answers 409 BucketNotEmpty while the bucket has objects, then deletes it once emptied", async () => {
    const id = await createBucket("full");
    const key = await createKey("writer");
    await ok("POST", "/v2/AllowBucketKey", {
      bucketId: id,
      accessKeyId: key.id,
      permissions: { read: true, write: true, owner: false },
    });
    const { S3Client, PutObjectCommand, DeleteObjectCommand } = await import("@aws-sdk/client-s3");
    const s3 = new S3Client({
      endpoint: garage.s3Url,
      region: "garage",
      forcePathStyle: true,
      credentials: { accessKeyId: key.id, secretAccessKey: key.secret },
    });
    try {
      await s3.send(new PutObjectCommand({ Bucket: "full", Key: "probe", Body: "x" }));
      expectError(await call("POST", `/v2/DeleteBucket?id=${id}`), 409, "BucketNotEmpty");
      expect(await ok("GET", `/v2/GetBucketInfo?id=${id}`)).toMatchObject({ objects: 1, bytes: 1 });
      await s3.send(new DeleteObjectCommand({ Bucket: "full", Key: "probe" }));
    } finally {
      s3.destroy();
    }
    expect(await call("POST", `/v2/DeleteBucket?id=${id}`)).toMatchObject({ status: 200 });
    expectError(await call("GET", `/v2/GetBucketInfo?id=${id}`), 404, "NoSuchBucket");
    expect((await ok("GET", `/v2/GetKeyInfo?id=${key.id}`)).buckets).toEqual([]);
  });
});

describe("keys", () => {
  it("returns the secret on CreateKey, and afterwards only with showSecretKey=true", async () => {
    const created = await ok("POST", "/v2/CreateKey", { name: "site" });
    expect(created.accessKeyId).toMatch(/^GK[0-9a-f]{24}$/);
    expect(created.secretAccessKey).toMatch(/^[0-9a-f]{64}$/);
    expect(created).toMatchObject({ name: "site", expired: false, permissions: { createBucket: false } });
    const id = String(created.accessKeyId);
    const info = await ok("GET", `/v2/GetKeyInfo?id=${id}`);
    expect(info).not.toHaveProperty("secretAccessKey");
    expect(await ok("GET", `/v2/GetKeyInfo?id=${id}&showSecretKey=false`)).not.toHaveProperty(
      "secretAccessKey",
    );
    const shown = await ok("GET", `/v2/GetKeyInfo?id=${id}&showSecretKey=true`);
    expect(shown.secretAccessKey).toBe(created.secretAccessKey);
    expect(await ok("GET", "/v2/GetKeyInfo?search=site")).toMatchObject({ accessKeyId: id });
    expectError(await call("GET", `/v2/GetKeyInfo?id=${id}&showSecretKey=yes`), 400, "InvalidRequest");
  });

  it("names an unnamed key like Garage and lists keys by id", async () => {
    const created = await ok("POST", "/v2/CreateKey", {});
    expect(created.name).toBe("Unnamed key");
    const second = await createKey("second");
    const listed = (await ok("GET", "/v2/ListKeys")) as unknown as Json[];
    expect(listed.map((k) => k.id)).toEqual([String(created.accessKeyId), second.id].sort());
    expect(listed[0]).toMatchObject({ expired: false, expiration: null });
    expect(garage.keyIds()).toEqual([String(created.accessKeyId), second.id].sort());
  });

  it("updates a key (id in the query) without showing its secret", async () => {
    const key = await createKey("before");
    const updated = await ok("POST", `/v2/UpdateKey?id=${key.id}`, {
      name: "after",
      allow: { createBucket: true },
    });
    expect(updated).toMatchObject({ name: "after", permissions: { createBucket: true } });
    expect(updated).not.toHaveProperty("secretAccessKey");
    const expiring = await ok("POST", `/v2/UpdateKey?id=${key.id}`, { expiration: "2025-12-31T00:00:00Z" });
    expect(expiring).toMatchObject({ expiration: "2025-12-31T00:00:00.000Z", expired: true });
    const both = await call("POST", `/v2/UpdateKey?id=${key.id}`, {
      neverExpires: true,
      expiration: "2030-01-01T00:00:00Z",
    });
    expectError(both, 400, "InvalidRequest");
    expectError(
      await call("POST", `/v2/UpdateKey/${key.id}`, {}),
      400,
      "InvalidRequest",
      /Unknown API endpoint/,
    );
  });

  it("deletes a key, and never lets its id be imported again", async () => {
    const key = await createKey("doomed");
    expect(await call("POST", `/v2/DeleteKey?id=${key.id}`)).toMatchObject({ status: 200 });
    expectError(await call("GET", `/v2/GetKeyInfo?id=${key.id}`), 404, "NoSuchAccessKey");
    expectError(await call("POST", `/v2/DeleteKey?id=${key.id}`), 404, "NoSuchAccessKey");
    const again = await call("POST", "/v2/ImportKey", { accessKeyId: key.id, secretAccessKey: key.secret });
    expectError(again, 409, "KeyAlreadyExists");
    expect(garage.keyIds()).toEqual([]);
  });

  it("imports a key in Garage's format only, and does not echo its secret", async () => {
    const imported = await ok("POST", "/v2/ImportKey", {
      accessKeyId: "GK31c2f218a2e44f485b94239e",
      secretAccessKey: "b892c0665f0ada8a4755dae98baa3b133590e11dae3bcc1f9d769d67f16c3835",
    });
    expect(imported).toMatchObject({ accessKeyId: "GK31c2f218a2e44f485b94239e", name: "Imported key" });
    expect(imported).not.toHaveProperty("secretAccessKey");
    const bad = await call("POST", "/v2/ImportKey", { accessKeyId: "AKIA123", secretAccessKey: "s" });
    expectError(bad, 400, "InvalidRequest", /Invalid key format/);
  });
});

describe("permissions", () => {
  it("AllowBucketKey only turns flags on and DenyBucketKey only turns them off", async () => {
    const id = await createBucket("shared");
    const key = await createKey("reader");
    const change = (endpoint: string, permissions: object): Promise<Json> =>
      ok("POST", `/v2/${endpoint}`, { bucketId: id, accessKeyId: key.id, permissions });
    await change("AllowBucketKey", { read: true, write: true });
    const afterNoop = await change("AllowBucketKey", { read: false, write: false, owner: false });
    expect(afterNoop.keys).toEqual([
      {
        accessKeyId: key.id,
        name: "reader",
        permissions: { read: true, write: true, owner: false },
        bucketLocalAliases: [],
      },
    ]);
    const denied = await change("DenyBucketKey", { write: true });
    expect(denied.keys).toMatchObject([{ permissions: { read: true, write: false, owner: false } }]);
    const keyInfo = await ok("GET", `/v2/GetKeyInfo?id=${key.id}`);
    expect(keyInfo.buckets).toEqual([
      {
        id,
        globalAliases: ["shared"],
        localAliases: [],
        permissions: { read: true, write: false, owner: false },
      },
    ]);
  });

  it("answers 404 for an unknown key or bucket", async () => {
    const id = await createBucket("lonely");
    const perms = { read: true };
    const noKey = await call("POST", "/v2/AllowBucketKey", {
      bucketId: id,
      accessKeyId: "GK000000000000000000000000",
      permissions: perms,
    });
    expectError(noKey, 404, "NoSuchAccessKey");
    const key = await createKey("k");
    const noBucket = await call("POST", "/v2/AllowBucketKey", {
      bucketId: "b".repeat(64),
      accessKeyId: key.id,
      permissions: perms,
    });
    expectError(noBucket, 404, "NoSuchBucket");
  });

  it("creates a bucket with a local alias and permissions for one key", async () => {
    const key = await createKey("owner");
    const created = await ok("POST", "/v2/CreateBucket", {
      localAlias: { accessKeyId: key.id, alias: "private", allow: { read: true, write: true, owner: false } },
    });
    expect(created).toMatchObject({
      globalAliases: [],
      keys: [
        {
          accessKeyId: key.id,
          bucketLocalAliases: ["private"],
          permissions: { read: true, write: true, owner: false },
        },
      ],
    });
    expect(garage.bucketNames()).toEqual([]);
  });
});

describe("faults and outages", () => {
  it("fails the next calls to an endpoint with the injected status and code, after authentication", async () => {
    garage.failNext({ endpoint: "AllowBucketKey" }, 1, 500, "InternalError");
    const id = await createBucket("rollback");
    const key = await createKey("k");
    const body = { bucketId: id, accessKeyId: key.id, permissions: { read: true } };
    expectError(await call("POST", "/v2/AllowBucketKey", body, {}), 403, "AccessDenied");
    expectError(await call("POST", "/v2/AllowBucketKey", body), 500, "InternalError");
    expect(await call("POST", "/v2/AllowBucketKey", body)).toMatchObject({ status: 200 });
  });

  it("tells the admin CreateBucket from the S3 one when asked to", async () => {
    garage.failNext({ endpoint: "CreateBucket", api: "s3" }, 1, 503, "ServiceUnavailable");
    expect(await call("POST", "/v2/CreateBucket", { globalAlias: "unaffected" })).toMatchObject({
      status: 200,
    });
  });

  it("answers 503 without quorum while health endpoints report it", async () => {
    garage.unavailable(true);
    expect(await call("GET", "/health", undefined, {})).toMatchObject({ status: 503 });
    expect(await ok("GET", "/v2/GetClusterHealth")).toMatchObject({
      status: "unavailable",
      partitionsQuorum: 0,
    });
    expectError(await call("GET", "/v2/ListBuckets"), 503, "ServiceUnavailable", /quorum/);
    garage.unavailable(false);
    expect(await ok("GET", "/v2/GetClusterHealth")).toMatchObject({ status: "healthy", partitions: 256 });
    expect(await call("GET", "/v2/ListBuckets")).toMatchObject({ status: 200, body: [] });
  });
});

describe("v1-only (Garage 1.x)", () => {
  let old: GarageDouble;

  beforeEach(async () => {
    old = await startGarageDouble({ adminToken: TOKEN, apiVersion: "v1-only" });
  });

  afterEach(async () => {
    await old.close();
  });

  const oldCall = async (
    path: string,
    headers: Record<string, string> = { authorization: `Bearer ${TOKEN}` },
  ) => {
    const response = await fetch(`${old.adminUrl}${path}`, { headers });
    return { status: response.status, body: (await response.json()) as unknown };
  };

  it("has no /v2: Garage 1.x's router answers 400 InvalidRequest Unknown API endpoint", async () => {
    const answer = await oldCall("/v2/GetClusterHealth");
    expect(answer).toMatchObject({
      status: 400,
      body: {
        code: "InvalidRequest",
        message: "Bad request: Unknown API endpoint: GET /v2/GetClusterHealth",
      },
    });
  });

  it("serves GET /v1/health and GET /v1/bucket (list), with the token", async () => {
    expect(await oldCall("/v1/health")).toMatchObject({
      status: 200,
      body: { status: "healthy", knownNodes: 1 },
    });
    expect(await oldCall("/v1/bucket")).toEqual({ status: 200, body: [] });
    expect(await oldCall("/v1/bucket", {})).toMatchObject({ status: 403, body: { code: "AccessDenied" } });
  });

  it("v2 Garage still answers the v1 probe calls", async () => {
    const response = await fetch(`${garage.adminUrl}/v1/health`, {
      headers: { authorization: `Bearer ${TOKEN}` },
    });
    expect(response.status).toBe(200);
  });
});
