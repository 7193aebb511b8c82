import {
  CreateBucketCommand,
  DeleteObjectCommand,
  DeleteObjectsCommand,
  GetObjectCommand,
  HeadBucketCommand,
  HeadObjectCommand,
  ListBucketsCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  S3Client,
  type S3ClientConfig,
} from "@aws-sdk/client-s3";
import { Readable } from "node:stream";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { startGarageDouble, type GarageDouble } from "../../src/sandbox/garage/index.js";

/**
 * The S3 endpoint of the Garage double through the real AWS SDK v3 client, with its default
 * settings (checksums, aws-chunked stream uploads, retries) plus path-style addressing and the
 * double's region, keys and permissions set up through the admin API.
 */

const TOKEN = "s3-tests-admin-token";

interface Key {
  id: string;
  secret: string;
}

let garage: GarageDouble;
let clients: S3Client[];

beforeEach(async () => {
  clients = [];
  garage = await startGarageDouble({ adminToken: TOKEN });
});

afterEach(async () => {
  clients.forEach((client) => client.destroy());
  await garage.close();
});

async function admin(method: string, pathAndQuery: string, body?: unknown): Promise<Record<string, unknown>> {
  const response = await fetch(`${garage.adminUrl}${pathAndQuery}`, {
    method,
    headers: { authorization: `Bearer ${TOKEN}` },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  const text = await response.text();
  if (response.status !== 200) throw new Error(`${method} ${pathAndQuery}: ${response.status} ${text}`);
  return JSON.parse(text) as Record<string, unknown>;
}

async function bucket(globalAlias: string): Promise<string> {
  return String((await admin("POST", "/v2/CreateBucket", { globalAlias })).id);
}

async function key(name: string): Promise<Key> {
  const created = await admin("POST", "/v2/CreateKey", { name });
  return { id: String(created.accessKeyId), secret: String(created.secretAccessKey) };
}

async function allow(bucketId: string, k: Key, permissions: object): Promise<void> {
  await admin("POST", "/v2/AllowBucketKey", { bucketId, accessKeyId: k.id, permissions });
}

/** The SDK as majordome would configure it: defaults, path-style, the cluster's region. */
function s3(k: Key, extra: Partial<S3ClientConfig> = {}): S3Client {
  const client = new S3Client({
    endpoint: garage.s3Url,
    region: "garage",
    forcePathStyle: true,
    credentials: { accessKeyId: k.id, secretAccessKey: k.secret },
    ...extra,
  });
  clients.push(client);
  return client;
}

async function probeRoundTrip(client: S3Client, bucketName: string): Promise<string | undefined> {
  await client.send(new PutObjectCommand({ Bucket: bucketName, Key: "majordome-probe", Body: "probe" }));
  const got = await client.send(new GetObjectCommand({ Bucket: bucketName, Key: "majordome-probe" }));
  const text = await got.Body?.transformToString();
  await client.send(new DeleteObjectCommand({ Bucket: bucketName, Key: "majordome-probe" }));
  return text;
}

async function rejection(
  promise: Promise<unknown>,
): Promise<{ name: string; message: string; status: unknown }> {
  try {
    await promise;
  } catch (error) {
    const e = error as { name: string; message: string; $metadata?: { httpStatusCode?: number } };
    return { name: e.name, message: e.message, status: e.$metadata?.httpStatusCode };
  }
  throw new Error("expected the request to fail");
}

describe("the probe: bucket with a global alias, new key, AllowBucketKey", () => {
  let bucketId: string;
  let writer: Key;

  beforeEach(async () => {
    bucketId = await bucket("site-data");
    writer = await key("site-data-rw");
    await allow(bucketId, writer, { read: true, write: true, owner: false });
  });

  it("puts, gets and deletes a probe object with the new key", async () => {
    expect(await probeRoundTrip(s3(writer), "site-data")).toBe("probe");
    expect(garage.objectCount("site-data")).toBe(0);
  });

  it("accepts stream bodies (aws-chunked with a CRC32 trailer) and binary ones", async () => {
    const client = s3(writer);
    const streamed = Readable.from([Buffer.from("hello "), Buffer.from("stream")]);
    await client.send(
      new PutObjectCommand({ Bucket: "site-data", Key: "s", Body: streamed, ContentLength: 12 }),
    );
    await client.send(
      new PutObjectCommand({ Bucket: "site-data", Key: "b", Body: new Uint8Array([0, 1, 255]) }),
    );
    const got = await client.send(new GetObjectCommand({ Bucket: "site-data", Key: "s" }));
    expect(await got.Body?.transformToString()).toBe("hello stream");
    const bytes = await (
      await client.send(new GetObjectCommand({ Bucket: "site-data", Key: "b" }))
    ).Body?.transformToByteArray();
    expect([...(bytes ?? [])]).toEqual([0, 1, 255]);
    expect(garage.objectCount(bucketId)).toBe(2);
  });

  it("keeps content type and metadata, answers HEAD and ranges", async () => {
    const client = s3(writer);
    await client.send(
      new PutObjectCommand({
        Bucket: "site-data",
        Key: "dir/page.html",
        Body: "hello",
        ContentType: "text/html",
        Metadata: { owner: "alice" },
      }),
    );
    const head = await client.send(new HeadObjectCommand({ Bucket: "site-data", Key: "dir/page.html" }));
    expect(head).toMatchObject({ ContentType: "text/html", ContentLength: 5, Metadata: { owner: "alice" } });
    expect(head.ETag).toBe('"5d41402abc4b2a76b9719d911017c592"');
    const part = await client.send(
      new GetObjectCommand({ Bucket: "site-data", Key: "dir/page.html", Range: "bytes=1-3" }),
    );
    expect(await part.Body?.transformToString()).toBe("ell");
    expect(part.ContentRange).toBe("bytes 1-3/5");
  });

  it("fails with the wrong secret: 403 AccessDenied, Invalid signature", async () => {
    const forged = s3({ id: writer.id, secret: "0".repeat(64) });
    expect(await rejection(probeRoundTrip(forged, "site-data"))).toEqual({
      name: "AccessDenied",
      message: "Forbidden: Invalid signature",
      status: 403,
    });
  });

  it("fails once the key is deleted: 403 AccessDenied, No such key", async () => {
    const client = s3(writer);
    await admin("POST", `/v2/DeleteKey?id=${writer.id}`);
    expect(await rejection(probeRoundTrip(client, "site-data"))).toEqual({
      name: "AccessDenied",
      message: `Forbidden: No such key: ${writer.id}`,
      status: 403,
    });
  });

  it("fails for a key allowed on another bucket only: 403 AccessDenied", async () => {
    const other = await key("other-site");
    await allow(await bucket("other-site"), other, { read: true, write: true });
    expect(await rejection(probeRoundTrip(s3(other), "site-data"))).toEqual({
      name: "AccessDenied",
      message: "Forbidden: Operation is not allowed for this key.",
      status: 403,
    });
    expect(await probeRoundTrip(s3(other), "other-site")).toBe("probe");
  });

  it("checks read and write separately, and follows DenyBucketKey at once", async () => {
    const reader = await key("reader");
    await allow(bucketId, reader, { read: true });
    await s3(writer).send(new PutObjectCommand({ Bucket: "site-data", Key: "k", Body: "v" }));
    const readerClient = s3(reader);
    await readerClient.send(new GetObjectCommand({ Bucket: "site-data", Key: "k" }));
    const put = rejection(
      readerClient.send(new PutObjectCommand({ Bucket: "site-data", Key: "k", Body: "w" })),
    );
    expect(await put).toMatchObject({ name: "AccessDenied", status: 403 });
    await admin("POST", "/v2/DenyBucketKey", {
      bucketId,
      accessKeyId: reader.id,
      permissions: { read: true },
    });
    const get = rejection(readerClient.send(new GetObjectCommand({ Bucket: "site-data", Key: "k" })));
    expect(await get).toMatchObject({ name: "AccessDenied", status: 403 });
  });

  it("answers NoSuchBucket and NoSuchKey (NotFound on HEAD, which has no body)", async () => {
    const client = s3(writer);
    const noBucket = await rejection(client.send(new GetObjectCommand({ Bucket: "nope", Key: "k" })));
    expect(noBucket).toMatchObject({ name: "NoSuchBucket", status: 404 });
    const noKey = await rejection(client.send(new GetObjectCommand({ Bucket: "site-data", Key: "missing" })));
    expect(noKey).toMatchObject({ name: "NoSuchKey", message: "Key not found", status: 404 });
    const head = await rejection(client.send(new HeadObjectCommand({ Bucket: "site-data", Key: "missing" })));
    expect(head).toMatchObject({ name: "NotFound", status: 404 });
    await client.send(new HeadBucketCommand({ Bucket: "site-data" }));
    await client.send(new DeleteObjectCommand({ Bucket: "site-data", Key: "missing" }));
  });

  it("refuses a signature scoped to another region: 400 AuthorizationHeaderMalformed", async () => {
    const elsewhere = s3(writer, { region: "us-east-1" });
    const failure = await rejection(elsewhere.send(new HeadBucketCommand({ Bucket: "site-data" })));
    expect(failure.status).toBe(400);
    const put = rejection(elsewhere.send(new PutObjectCommand({ Bucket: "site-data", Key: "k", Body: "v" })));
    expect(await put).toMatchObject({ name: "AuthorizationHeaderMalformed", status: 400 });
  });
});

describe("listing and bulk deletion", () => {
  let client: S3Client;

  beforeEach(async () => {
    const id = await bucket("listing");
    const k = await key("lister");
    await allow(id, k, { read: true, write: true });
    client = s3(k);
    for (const name of ["a/1", "a/2", "a/sub/3", "b/1", "c"]) {
      await client.send(new PutObjectCommand({ Bucket: "listing", Key: name, Body: name }));
    }
  });

  it("lists with prefix and delimiter", async () => {
    const top = await client.send(new ListObjectsV2Command({ Bucket: "listing", Delimiter: "/" }));
    expect(top.CommonPrefixes?.map((p) => p.Prefix)).toEqual(["a/", "b/"]);
    expect(top.Contents?.map((o) => o.Key)).toEqual(["c"]);
    expect(top.KeyCount).toBe(3);
    const a = await client.send(
      new ListObjectsV2Command({ Bucket: "listing", Prefix: "a/", Delimiter: "/" }),
    );
    expect(a.Contents?.map((o) => o.Key)).toEqual(["a/1", "a/2"]);
    expect(a.CommonPrefixes?.map((p) => p.Prefix)).toEqual(["a/sub/"]);
    expect(a.Contents?.[0]).toMatchObject({ Size: 3, StorageClass: "STANDARD" });
  });

  it("pages with continuation tokens and start-after", async () => {
    const seen: string[] = [];
    let token: string | undefined;
    let pages = 0;
    do {
      const page = await client.send(
        new ListObjectsV2Command({ Bucket: "listing", MaxKeys: 2, ContinuationToken: token }),
      );
      seen.push(...(page.Contents ?? []).map((o) => o.Key ?? ""));
      token = page.NextContinuationToken;
      expect(page.IsTruncated).toBe(token !== undefined);
      pages += 1;
    } while (token !== undefined);
    expect(seen).toEqual(["a/1", "a/2", "a/sub/3", "b/1", "c"]);
    expect(pages).toBe(3);
    const after = await client.send(new ListObjectsV2Command({ Bucket: "listing", StartAfter: "a/sub/3" }));
    expect(after.Contents?.map((o) => o.Key)).toEqual(["b/1", "c"]);
  });

  it("deletes several objects at once, missing ones included", async () => {
    const result = await client.send(
      new DeleteObjectsCommand({
        Bucket: "listing",
        Delete: { Objects: [{ Key: "a/1" }, { Key: "c" }, { Key: "never" }] },
      }),
    );
    expect(result.Deleted?.map((d) => d.Key)).toEqual(["a/1", "c", "never"]);
    expect(garage.objectCount("listing")).toBe(3);
    const quiet = await client.send(
      new DeleteObjectsCommand({ Bucket: "listing", Delete: { Objects: [{ Key: "b/1" }], Quiet: true } }),
    );
    expect(quiet.Deleted).toBeUndefined();
    expect(garage.objectCount("listing")).toBe(2);
  });
});

describe("quotas", () => {
  let bucketId: string;
  let client: S3Client;

  beforeEach(async () => {
    bucketId = await bucket("limited");
    const k = await key("limited");
    await allow(bucketId, k, { read: true, write: true });
    client = s3(k);
  });

  const put = (name: string, body: string): Promise<unknown> =>
    client.send(new PutObjectCommand({ Bucket: "limited", Key: name, Body: body }));

  it("refuses a new object beyond maxObjects, with Garage's 403, and still allows overwrites", async () => {
    await admin("POST", `/v2/UpdateBucket?id=${bucketId}`, { quotas: { maxSize: null, maxObjects: 2 } });
    await put("one", "1");
    await put("two", "2");
    expect(await rejection(put("three", "3"))).toEqual({
      name: "AccessDenied",
      message: "Forbidden: Object quota is reached, maximum objects for this bucket: 2",
      status: 403,
    });
    await put("two", "2 again");
    expect(garage.objectCount("limited")).toBe(2);
  });

  it("refuses growth beyond maxSize, and lifts the limit when the quotas are cleared", async () => {
    await admin("POST", `/v2/UpdateBucket?id=${bucketId}`, { quotas: { maxSize: 10, maxObjects: null } });
    await put("a", "12345678");
    const failure = await rejection(put("b", "123"));
    expect(failure).toMatchObject({ name: "AccessDenied", status: 403 });
    expect(failure.message).toMatch(/Bucket size quota is reached.*already 8 bytes.*add 3 bytes/);
    await put("a", "1234");
    await admin("POST", `/v2/UpdateBucket?id=${bucketId}`, { quotas: { maxSize: null, maxObjects: null } });
    await put("b", "x".repeat(100));
  });
});

describe("buckets through S3", () => {
  it("lists the buckets a key may use, under global and its own local aliases", async () => {
    const k = await key("lister");
    await allow(await bucket("zeta"), k, { read: true });
    await bucket("hidden");
    const listed = await s3(k).send(new ListBucketsCommand({}));
    expect(listed.Buckets?.map((b) => b.Name)).toEqual(["zeta"]);
    expect(listed.Owner).toMatchObject({ ID: k.id, DisplayName: "lister" });
  });

  it("CreateBucket needs the key's createBucket permission", async () => {
    const k = await key("no-create");
    const failure = await rejection(s3(k).send(new CreateBucketCommand({ Bucket: "mine" })));
    expect(failure).toMatchObject({ name: "AccessDenied", status: 403 });
    expect(failure.message).toMatch(/not allowed to create buckets/);
  });

  it("CreateBucket makes a local alias in the calling key's namespace only", async () => {
    const alice = await key("alice");
    const bob = await key("bob");
    for (const k of [alice, bob])
      await admin("POST", `/v2/UpdateKey?id=${k.id}`, { allow: { createBucket: true } });
    await s3(alice).send(new CreateBucketCommand({ Bucket: "mine" }));
    await s3(alice).send(new PutObjectCommand({ Bucket: "mine", Key: "k", Body: "alice's" }));
    expect(garage.bucketNames()).toEqual([]);
    const buckets = (await admin("GET", "/v2/ListBuckets")) as unknown as Record<string, unknown>[];
    expect(buckets).toMatchObject([
      { globalAliases: [], localAliases: [{ accessKeyId: alice.id, alias: "mine" }] },
    ]);
    const bobSees = await rejection(s3(bob).send(new GetObjectCommand({ Bucket: "mine", Key: "k" })));
    expect(bobSees).toMatchObject({ name: "NoSuchBucket", status: 404 });
    await s3(bob).send(new CreateBucketCommand({ Bucket: "mine" }));
    expect(((await admin("GET", "/v2/ListBuckets")) as unknown as unknown[]).length).toBe(2);
    await s3(alice).send(new CreateBucketCommand({ Bucket: "mine" }));
  });

  it("CreateBucket on a global alias the key cannot write to is BucketAlreadyExists", async () => {
    await bucket("public-name");
    const k = await key("creator");
    await admin("POST", `/v2/UpdateKey?id=${k.id}`, { allow: { createBucket: true } });
    const failure = await rejection(s3(k).send(new CreateBucketCommand({ Bucket: "public-name" })));
    expect(failure).toMatchObject({ name: "BucketAlreadyExists", status: 409 });
  });
});

describe("faults and outages", () => {
  let k: Key;

  beforeEach(async () => {
    k = await key("faulty");
    await allow(await bucket("faulty"), k, { read: true, write: true });
  });

  it("fails the next PutObject with the injected error; the SDK's retry then succeeds", async () => {
    garage.failNext({ endpoint: "PutObject" }, 1, 503, "SlowDown");
    const result = await s3(k).send(new PutObjectCommand({ Bucket: "faulty", Key: "k", Body: "v" }));
    expect(result.$metadata.attempts).toBe(2);
    garage.failNext({ endpoint: "PutObject", api: "s3" }, 1, 500, "InternalError");
    const failure = await rejection(
      s3(k, { maxAttempts: 1 }).send(new PutObjectCommand({ Bucket: "faulty", Key: "k", Body: "v" })),
    );
    expect(failure).toMatchObject({ name: "InternalError", status: 500 });
  });

  it("answers 503 ServiceUnavailable while down", async () => {
    garage.unavailable(true);
    const client = s3(k, { maxAttempts: 1 });
    const failure = await rejection(client.send(new GetObjectCommand({ Bucket: "faulty", Key: "k" })));
    expect(failure).toMatchObject({ name: "ServiceUnavailable", status: 503 });
    garage.unavailable(false);
    await client.send(new PutObjectCommand({ Bucket: "faulty", Key: "k", Body: "back" }));
  });
});
