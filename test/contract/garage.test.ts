import { readdirSync, readFileSync } from "node:fs";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parse as parseYaml } from "yaml";
import { adminRoutes } from "../../src/sandbox/garage/admin-routes.js";
import { startGarageDouble, type GarageDouble } from "../../src/sandbox/garage/index.js";
import { readReference, referenceDir, shapeProblems } from "../support/reference.js";

/**
 * Contract tests of the Garage double's admin API against ../shared/reference/garage:
 *
 * - every endpoint the double serves is in garage-admin-v2.json (or, for the v1 probe calls and the
 *   v1-only mode, garage-admin-v1.yml) with the same method;
 * - every v2 response sample is matched field for field (same JSON types) by the double's answer to
 *   the same call, on a fixture shaped like the sample (a key with a local alias on the bucket, …);
 * - every v2 request sample is accepted, once its example ids are replaced by real ones (the samples'
 *   own ids are examples, and bucket ids cannot be chosen);
 * - every call's answer conforms to the spec's schema for it (required fields, JSON types, nullability).
 *
 * The samples come from a draft marked DEPRECATED upstream. Where Garage itself would refuse one, so
 * does the double, and the test says why: the CreateBucket samples' "NameOfMyBucket" is not a valid
 * bucket name for Garage (is_valid_bucket_name: lowercase only), so it is sent as is (400 expected)
 * and then lower-cased.
 */

const TOKEN = "contract-token";
const SAMPLE_KEY_ID = "GK31c2f218a2e44f485b94239e";
const SAMPLE_SECRET = "b892c0665f0ada8a4755dae98baa3b133590e11dae3bcc1f9d769d67f16c3835";
const SAMPLE_BUCKET_ID = "e6a14cd6a27f48684579ec6b381c078ab11697e6bc8513b72b2f5307e25fff9b";

type Json = Record<string, unknown>;

const isObject = (value: unknown): value is Json =>
  typeof value === "object" && value !== null && !Array.isArray(value);

interface Answer {
  status: number;
  body: unknown;
}

async function call(base: string, method: string, pathAndQuery: string, body?: unknown): Promise<Answer> {
  const response = await fetch(`${base}${pathAndQuery}`, {
    method,
    headers: { authorization: `Bearer ${TOKEN}` },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  const text = await response.text();
  const json = response.headers.get("content-type") === "application/json" && text !== "";
  return { status: response.status, body: json ? (JSON.parse(text) as unknown) : text };
}

// ---- a small OpenAPI schema checker: $ref, oneOf, allOf, type (with null), required, properties, items ----

function resolve(spec: Json, schema: unknown): Json {
  if (!isObject(schema) || typeof schema.$ref !== "string") return isObject(schema) ? schema : {};
  const target = schema.$ref
    .replace(/^#\//, "")
    .split("/")
    .reduce<unknown>((node, part) => (isObject(node) ? node[part] : undefined), spec);
  return resolve(spec, target);
}

function jsonTypeMatches(type: string, value: unknown): boolean {
  switch (type) {
    case "null":
      return value === null;
    case "integer":
      return Number.isInteger(value);
    case "number":
      return typeof value === "number";
    case "array":
      return Array.isArray(value);
    case "object":
      return isObject(value);
    default:
      return typeof value === type;
  }
}

function schemaProblems(spec: Json, rawSchema: unknown, value: unknown, at = "(root)"): string[] {
  const schema = resolve(spec, rawSchema);
  if (Array.isArray(schema.oneOf)) {
    const all = schema.oneOf.map((option) => schemaProblems(spec, option, value, at));
    return all.some((problems) => problems.length === 0)
      ? []
      : [`${at}: matches no oneOf option`, ...(all[0] ?? [])];
  }
  const fromAllOf = Array.isArray(schema.allOf)
    ? schema.allOf.flatMap((part) => schemaProblems(spec, part, value, at))
    : [];
  const types =
    typeof schema.type === "string" ? [schema.type] : Array.isArray(schema.type) ? schema.type : [];
  const nullable = schema.nullable === true && value === null;
  if (types.length > 0 && !nullable && !types.some((t) => jsonTypeMatches(String(t), value))) {
    return [...fromAllOf, `${at}: expected ${types.join("|")}, got ${JSON.stringify(value)}`];
  }
  return [
    ...fromAllOf,
    ...objectProblems(spec, schema, value, at),
    ...arrayProblems(spec, schema, value, at),
  ];
}

function objectProblems(spec: Json, schema: Json, value: unknown, at: string): string[] {
  if (!isObject(value)) return [];
  const required = Array.isArray(schema.required) ? schema.required.map(String) : [];
  const missing = required.filter((name) => !(name in value)).map((name) => `${at}.${name}: missing`);
  const properties = isObject(schema.properties) ? schema.properties : {};
  return [
    ...missing,
    ...Object.entries(properties).flatMap(([name, property]) =>
      name in value ? schemaProblems(spec, property, value[name], `${at}.${name}`) : [],
    ),
  ];
}

function arrayProblems(spec: Json, schema: Json, value: unknown, at: string): string[] {
  if (!Array.isArray(value) || schema.items === undefined) return [];
  return value.flatMap((item, i) => schemaProblems(spec, schema.items, item, `${at}[${i}]`));
}

interface Operation {
  readonly method: string;
  readonly path: string;
  readonly operation: Json;
}

function operations(spec: Json): Operation[] {
  const paths = isObject(spec.paths) ? spec.paths : {};
  return Object.entries(paths).flatMap(([specPath, item]) =>
    isObject(item)
      ? Object.entries(item).flatMap(([method, operation]) =>
          isObject(operation) ? [{ method: method.toUpperCase(), path: specPath, operation }] : [],
        )
      : [],
  );
}

function successSchema(operation: Json): unknown {
  const responses = isObject(operation.responses) ? operation.responses : {};
  const ok = responses["200"];
  const content = isObject(ok) && isObject(ok.content) ? ok.content["application/json"] : undefined;
  return isObject(content) ? content.schema : undefined;
}

function requestSchema(operation: Json): unknown {
  const body = isObject(operation.requestBody) ? operation.requestBody : {};
  const content = isObject(body.content) ? body.content["application/json"] : undefined;
  return isObject(content) ? content.schema : undefined;
}

// ---- samples ----

const samplesDir = (): string => path.join(referenceDir() ?? "", "garage", "samples");

function sampleFiles(kind: "request" | "response"): { file: string; operation: string }[] {
  return readdirSync(samplesDir())
    .filter((file) => file.startsWith("v2-") && file.includes(`.${kind}.`))
    .sort()
    .map((file) => ({ file, operation: file.slice(3, file.indexOf(".")) }));
}

const sample = (file: string): unknown => readReference("garage", "samples", file);

/** Replaces the samples' example ids with ids of the fixture. */
function withIds(value: unknown, ids: Readonly<Record<string, string>>): unknown {
  let text = JSON.stringify(value);
  for (const [from, to] of Object.entries(ids)) text = text.split(from).join(to);
  return JSON.parse(text) as unknown;
}

describe.skipIf(referenceDir() === undefined)("Garage double vs the admin API v2 reference", () => {
  let spec: Json;
  let garage: GarageDouble;
  const ids = { debugBucket: "", otherBucket: "", secondKey: "" };
  /** Every answer, by operation name, for the schema check. */
  const answers: { operation: string; answer: Answer }[] = [];

  const admin = async (operation: string, method: string, query = "", body?: unknown): Promise<Answer> => {
    const answer = await call(garage.adminUrl, method, `/v2/${operation}${query}`, body);
    answers.push({ operation, answer });
    return answer;
  };

  const okBody = async (operation: string, method: string, query = "", body?: unknown): Promise<unknown> => {
    const answer = await admin(operation, method, query, body);
    expect(answer.status, `${operation}: ${JSON.stringify(answer.body)}`).toBe(200);
    return answer.body;
  };

  /** Shaped like the samples: the sample key, holding a local alias "debug" on one of two buckets. */
  beforeAll(async () => {
    spec = readReference("garage", "garage-admin-v2.json") as Json;
    garage = await startGarageDouble({ adminToken: TOKEN });
    await okBody("ImportKey", "POST", "", {
      accessKeyId: SAMPLE_KEY_ID,
      secretAccessKey: SAMPLE_SECRET,
      name: "test",
    });
    ids.secondKey = String(((await okBody("CreateKey", "POST", "", { name: "test2" })) as Json).accessKeyId);
    ids.otherBucket = String(
      ((await okBody("CreateBucket", "POST", "", { globalAlias: "test2" })) as Json).id,
    );
    ids.debugBucket = String(
      ((await okBody("CreateBucket", "POST", "", { globalAlias: "debugging" })) as Json).id,
    );
    const allow = (bucketId: string, owner: boolean): Promise<unknown> =>
      okBody("AllowBucketKey", "POST", "", {
        bucketId,
        accessKeyId: SAMPLE_KEY_ID,
        permissions: { read: true, write: true, owner },
      });
    await allow(ids.otherBucket, false);
    await allow(ids.debugBucket, true);
    await okBody("AddBucketAlias", "POST", "", {
      bucketId: ids.debugBucket,
      accessKeyId: SAMPLE_KEY_ID,
      localAlias: "debug",
    });
  });

  afterAll(async () => {
    await garage.close();
  });

  it("serves only endpoints of garage-admin-v2.json, each with the spec's method", () => {
    const specOps = operations(spec).map((op) => `${op.method} ${op.path}`);
    const served = adminRoutes("v2")
      .filter((route) => !route.path.startsWith("/v1/"))
      .map((route) => `${route.method} ${route.path}`);
    expect(served.filter((endpoint) => !specOps.includes(endpoint))).toEqual([]);
    expect(served.length).toBeGreaterThan(15);
  });

  it("serves the v1 probe calls (and the v1-only mode's endpoints) as garage-admin-v1.yml has them", () => {
    const v1Spec = readV1Spec();
    const v1Ops = operations(v1Spec).map((op) => `${op.method} ${op.path}`);
    for (const route of [...adminRoutes("v2"), ...adminRoutes("v1-only")]) {
      if (!route.path.startsWith("/v1/")) continue;
      const specPath = route.path.slice(3) + (route.unless ? "?list" : "");
      expect(v1Ops, `${route.method} ${route.path}`).toContain(`${route.method} ${specPath}`);
    }
  });

  const RESPONSE_CALLS: Readonly<Record<string, () => Promise<Answer>>> = {
    GetBucketInfo: () => admin("GetBucketInfo", "GET", `?id=${ids.debugBucket}`),
    GetClusterHealth: () => admin("GetClusterHealth", "GET"),
    GetKeyInfo: () => admin("GetKeyInfo", "GET", `?id=${SAMPLE_KEY_ID}&showSecretKey=true`),
    ListBuckets: () => admin("ListBuckets", "GET"),
    ListKeys: () => admin("ListKeys", "GET"),
    CleanupIncompleteUploads: () =>
      admin("CleanupIncompleteUploads", "POST", "", { bucketId: ids.debugBucket, olderThanSecs: 3600 }),
  };

  it("answers with every field of each v2 response sample, with the same JSON types", async () => {
    const files = sampleFiles("response");
    expect(files.length).toBeGreaterThan(0);
    for (const { file, operation } of files) {
      const run = RESPONSE_CALLS[operation];
      expect(run, `no call for the sample ${file}`).toBeDefined();
      if (!run) continue;
      const answer = await run();
      expect(answer.status, file).toBe(200);
      expect(shapeProblems(sample(file), answer.body), file).toEqual([]);
    }
  });

  it("accepts every v2 request sample (with the fixture's ids)", async () => {
    const fresh = await startGarageDouble({ adminToken: TOKEN });
    try {
      await acceptRequestSamples(fresh, spec);
    } finally {
      await fresh.close();
    }
  });

  it("answers every served v2 endpoint as the spec's response schema says", async () => {
    const run = (operation: string, method: string, query = "", body?: unknown): Promise<unknown> =>
      okBody(operation, method, query, body);
    await run("GetClusterStatus", "GET");
    await run("GetBucketInfo", "GET", "?globalAlias=test2");
    await run("UpdateBucket", "POST", `?id=${ids.otherBucket}`, {
      websiteAccess: { enabled: true, indexDocument: "index.html" },
      quotas: { maxSize: 100, maxObjects: null },
    });
    await run("DenyBucketKey", "POST", "", {
      bucketId: ids.otherBucket,
      accessKeyId: SAMPLE_KEY_ID,
      permissions: { write: true },
    });
    await run("UpdateKey", "POST", `?id=${ids.secondKey}`, {
      name: "renamed",
      allow: { createBucket: true },
    });
    await run("AddBucketAlias", "POST", "", { bucketId: ids.otherBucket, globalAlias: "extra" });
    await run("RemoveBucketAlias", "POST", "", { bucketId: ids.otherBucket, globalAlias: "extra" });
    const temporary = String(
      ((await run("CreateBucket", "POST", "", { globalAlias: "temporary" })) as Json).id,
    );
    await run("DeleteBucket", "POST", `?id=${temporary}`);
    await run("DeleteKey", "POST", `?id=${ids.secondKey}`);
    for (const call of Object.values(RESPONSE_CALLS)) await call();

    const byOperation = new Map(operations(spec).map((op) => [String(op.operation.operationId), op]));
    const served = adminRoutes("v2").filter((route) => route.path.startsWith("/v2/"));
    for (const route of served) {
      const seen = answers.filter((a) => a.operation === route.name);
      expect(seen.length, `${route.name} was never called`).toBeGreaterThan(0);
      const schema = successSchema(byOperation.get(route.name)?.operation ?? {});
      for (const { answer } of seen) {
        if (answer.status !== 200 || schema === undefined) continue;
        expect(schemaProblems(spec, schema, answer.body), route.name).toEqual([]);
      }
    }
  });

  it("answers the v1-only mode's calls as garage-admin-v1.yml's schemas say", async () => {
    const old = await startGarageDouble({ adminToken: TOKEN, apiVersion: "v1-only" });
    try {
      const v1Spec = readV1Spec();
      const byPath = new Map(operations(v1Spec).map((op) => [`${op.method} ${op.path}`, op]));
      for (const [served, specKey] of [
        ["/v1/health", "GET /health"],
        ["/v1/bucket", "GET /bucket?list"],
      ] as const) {
        const answer = await call(old.adminUrl, "GET", served);
        expect(answer.status).toBe(200);
        const schema = successSchema(byPath.get(specKey)?.operation ?? {});
        expect(schema, specKey).toBeDefined();
        expect(schemaProblems(v1Spec, schema, answer.body), served).toEqual([]);
      }
    } finally {
      await old.close();
    }
  });
});

/** The v1 spec is YAML; readReference only reads JSON. */
function readV1Spec(): Json {
  const text = readFileSync(path.join(referenceDir() ?? "", "garage", "garage-admin-v1.yml"), "utf8");
  const parsed: unknown = parseYaml(text);
  return isObject(parsed) ? parsed : {};
}

/**
 * Sends each request sample to a fresh double: ImportKey first (it creates the sample's key), then
 * the others with the sample bucket id replaced by a real bucket's. Each sample must also conform to
 * the spec's request schema (a check of the reference data itself).
 */
async function acceptRequestSamples(garage: GarageDouble, spec: Json): Promise<void> {
  const files = sampleFiles("request");
  expect(files.length).toBeGreaterThan(0);
  const byOperation = new Map(operations(spec).map((op) => [String(op.operation.operationId), op]));
  const ordered = [...files].sort(
    (a, b) => Number(b.operation === "ImportKey") - Number(a.operation === "ImportKey"),
  );
  let bucketId = "";
  for (const { file, operation } of ordered) {
    const op = byOperation.get(operation);
    expect(op, `${file}: ${operation} is not in the spec`).toBeDefined();
    const body = sample(file);
    expect(schemaProblems(spec, requestSchema(op?.operation ?? {}), body), file).toEqual([]);
    if (bucketId === "" && operation !== "ImportKey") {
      const created = await call(garage.adminUrl, "POST", "/v2/CreateBucket", {
        globalAlias: "sample-target",
      });
      bucketId = String((created.body as Json).id);
    }
    const query =
      operation === "UpdateBucket"
        ? `?id=${bucketId}`
        : operation === "UpdateKey"
          ? `?id=${SAMPLE_KEY_ID}`
          : "";
    const sent = withIds(body, { [SAMPLE_BUCKET_ID]: bucketId });
    const answer = await call(garage.adminUrl, op?.method ?? "POST", `/v2/${operation}${query}`, sent);
    if (operation === "CreateBucket" && JSON.stringify(sent).includes("NameOfMyBucket")) {
      // Garage refuses upper-case bucket names; so does the double. The lower-cased sample must pass.
      expect(answer.status, file).toBe(400);
      const lowered = withIds(sent, { NameOfMyBucket: "nameofmybucket" });
      const retried = await call(garage.adminUrl, "POST", "/v2/CreateBucket", lowered);
      expect(retried.status, `${file} lower-cased: ${JSON.stringify(retried.body)}`).toBe(200);
      continue;
    }
    expect(answer.status, `${file}: ${JSON.stringify(answer.body)}`).toBe(200);
  }
}
