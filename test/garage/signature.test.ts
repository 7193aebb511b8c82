import { Sha256 } from "@aws-crypto/sha256-js";
import { SignatureV4 } from "@smithy/signature-v4";
import type { HttpRequest } from "@smithy/types";
import { createHash } from "node:crypto";
import { request as httpRequest } from "node:http";
import { crc32 } from "node:zlib";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { startGarageDouble, type GarageDouble } from "../../src/sandbox/garage/index.js";

/**
 * SigV4 at the protocol level, with requests signed by @smithy/signature-v4 (the AWS SDK's own
 * signer, an implementation independent of the double's): presigned URLs, request age, payload
 * digests, headers left unsigned, and aws-chunked bodies with chunk and trailer signatures.
 */

const TOKEN = "signature-tests-token";

interface Answer {
  status: number;
  body: string;
}

interface Key {
  accessKeyId: string;
  secretAccessKey: string;
}

let garage: GarageDouble;
let key: Key;

beforeEach(async () => {
  garage = await startGarageDouble({ adminToken: TOKEN });
  const admin = async (path: string, body: object): Promise<Record<string, unknown>> => {
    const response = await fetch(`${garage.adminUrl}${path}`, {
      method: "POST",
      headers: { authorization: `Bearer ${TOKEN}` },
      body: JSON.stringify(body),
    });
    return (await response.json()) as Record<string, unknown>;
  };
  const bucket = await admin("/v2/CreateBucket", { globalAlias: "raw" });
  const created = await admin("/v2/CreateKey", { name: "raw" });
  key = { accessKeyId: String(created.accessKeyId), secretAccessKey: String(created.secretAccessKey) };
  await admin("/v2/AllowBucketKey", {
    bucketId: bucket.id,
    accessKeyId: key.accessKeyId,
    permissions: { read: true, write: true },
  });
});

afterEach(async () => {
  await garage.close();
});

const signer = (k: Key = key): SignatureV4 =>
  new SignatureV4({ credentials: k, region: "garage", service: "s3", sha256: Sha256, uriEscapePath: false });

function unsignedRequest(
  method: string,
  path: string,
  headers: Record<string, string> = {},
  body?: Buffer,
): HttpRequest {
  const url = new URL(garage.s3Url);
  return {
    method,
    protocol: "http:",
    hostname: url.hostname,
    port: Number(url.port),
    path,
    query: {},
    headers: { host: url.host, ...headers },
    body,
  };
}

const encode = (text: string): string =>
  encodeURIComponent(text).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);

function send(req: HttpRequest): Promise<Answer> {
  const query = Object.entries(req.query ?? {})
    .map(([name, value]) => `${encode(name)}=${encode(String(value))}`)
    .join("&");
  return new Promise((resolve, reject) => {
    const outgoing = httpRequest(
      {
        host: req.hostname,
        port: req.port,
        method: req.method,
        path: query === "" ? req.path : `${req.path}?${query}`,
        headers: req.headers,
        agent: false,
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on("data", (chunk: Buffer) => chunks.push(chunk));
        res.on("end", () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString() }));
      },
    );
    outgoing.on("error", reject);
    outgoing.end(req.body as Buffer | undefined);
  });
}

async function signedPut(
  name: string,
  body: string,
  headers: Record<string, string> = {},
): Promise<HttpRequest> {
  const data = Buffer.from(body);
  const req = unsignedRequest(
    "PUT",
    `/raw/${name}`,
    { "content-length": String(data.length), ...headers },
    data,
  );
  return signer().sign(req);
}

async function getObject(name: string): Promise<Answer> {
  return send(await signer().sign(unsignedRequest("GET", `/raw/${name}`)));
}

function expectS3Error(answer: Answer, status: number, code: string, message?: string): void {
  expect(answer.status).toBe(status);
  expect(answer.body).toContain(`<Code>${code}</Code>`);
  if (message !== undefined) expect(answer.body).toContain(`<Message>${message}</Message>`);
}

describe("header signatures", () => {
  it("accepts a request signed by the SDK's signer, and refuses one without a signature", async () => {
    expect(await send(await signedPut("hello.txt", "hello"))).toMatchObject({ status: 200 });
    expect(await getObject("hello.txt")).toEqual({ status: 200, body: "hello" });
    const anonymous = await send(unsignedRequest("GET", "/raw/hello.txt"));
    expectS3Error(anonymous, 403, "AccessDenied", "Forbidden: Garage does not support anonymous access yet");
  });

  it("signs the path as sent: keys with spaces and unicode", async () => {
    const path = `${encode("dossier partagé")}/${encode("a+b (1).txt")}`;
    expect(await send(await signedPut(path, "x"))).toMatchObject({ status: 200 });
    expect(await getObject(path)).toEqual({ status: 200, body: "x" });
    expect(garage.objectCount("raw")).toBe(1);
  });

  it("refuses a request signed more than a day ago", async () => {
    const req = unsignedRequest("GET", "/raw/any");
    const old = await signer().sign(req, { signingDate: new Date(Date.now() - 25 * 3600 * 1000) });
    expectS3Error(await send(old), 400, "InvalidRequest", "Bad request: Date is too old");
  });

  it("refuses an x-amz-* header that is not signed", async () => {
    const req = await signedPut("k", "v");
    req.headers["x-amz-meta-sneaky"] = "1";
    expectS3Error(
      await send(req),
      400,
      "InvalidRequest",
      "Bad request: Header `x-amz-meta-sneaky` should be signed",
    );
  });

  it("checks the body against the signed x-amz-content-sha256", async () => {
    const req = await signedPut("k", "a");
    req.body = Buffer.from("b");
    const answer = await send(req);
    expectS3Error(answer, 400, "InvalidDigest");
    expect(answer.body).toContain("SHA256 checksum verification failed");
    expect(garage.objectCount("raw")).toBe(0);
  });

  it("checks x-amz-checksum-crc32 and Content-MD5", async () => {
    const wrongCrc = await signedPut("k", "data", { "x-amz-checksum-crc32": "AAAAAA==" });
    expectS3Error(await send(wrongCrc), 400, "InvalidDigest");
    const wrongMd5 = await signedPut("k", "data", {
      "content-md5": createHash("md5").update("other").digest("base64"),
    });
    expectS3Error(await send(wrongMd5), 400, "InvalidDigest");
    const good = await signedPut("k", "data", {
      "content-md5": createHash("md5").update("data").digest("base64"),
    });
    expect(await send(good)).toMatchObject({ status: 200 });
  });
});

describe("presigned URLs", () => {
  /** As @aws-sdk/s3-request-presigner does: S3 presigned URLs sign UNSIGNED-PAYLOAD, hoisted to the query. */
  const presign = (
    path: string,
    options: { expiresIn: number; signingDate?: Date },
    k?: Key,
  ): Promise<HttpRequest> =>
    signer(k).presign(unsignedRequest("GET", path, { "x-amz-content-sha256": "UNSIGNED-PAYLOAD" }), options);

  beforeEach(async () => {
    await send(await signedPut("shared.txt", "shared"));
  });

  it("serves a presigned GET", async () => {
    const url = await presign("/raw/shared.txt", { expiresIn: 300 });
    expect(url.query).toHaveProperty("X-Amz-Signature");
    expect(await send(url)).toEqual({ status: 200, body: "shared" });
  });

  it("refuses a presigned URL used for another object, or signed with another secret", async () => {
    const url = await presign("/raw/shared.txt", { expiresIn: 300 });
    expectS3Error(
      await send({ ...url, path: "/raw/other.txt" }),
      403,
      "AccessDenied",
      "Forbidden: Invalid signature",
    );
    const forgedUrl = await presign(
      "/raw/shared.txt",
      { expiresIn: 300 },
      { ...key, secretAccessKey: "f".repeat(64) },
    );
    expectS3Error(await send(forgedUrl), 403, "AccessDenied", "Forbidden: Invalid signature");
  });

  it("refuses an expired presigned URL", async () => {
    const url = await presign("/raw/shared.txt", {
      expiresIn: 60,
      signingDate: new Date(Date.now() - 120_000),
    });
    expectS3Error(await send(url), 400, "InvalidRequest", "Bad request: Date is too old");
  });
});

describe("aws-chunked bodies", () => {
  const chunks = [Buffer.from("first chunk, "), Buffer.from("second chunk")];
  const total = Buffer.concat(chunks);

  /** Frames the chunks with signatures from `sign` (called in order, final empty chunk included). */
  async function frame(sign: (data: Buffer) => Promise<string>, trailer?: string): Promise<Buffer> {
    const parts: Buffer[] = [];
    for (const data of [...chunks, Buffer.alloc(0)]) {
      const header = `${data.length.toString(16)};chunk-signature=${await sign(data)}\r\n`;
      parts.push(Buffer.from(header), data, Buffer.from(data.length > 0 ? "\r\n" : ""));
    }
    parts.push(Buffer.from(trailer ?? "\r\n"));
    return Buffer.concat(parts);
  }

  async function signedChunkedPut(
    name: string,
    mode: "STREAMING-AWS4-HMAC-SHA256-PAYLOAD" | "STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER",
    tamper = false,
  ): Promise<Answer> {
    const signingDate = new Date();
    const withTrailer = mode.endsWith("-TRAILER");
    const trailerLine = `x-amz-checksum-crc32:${crcBase64(total)}`;
    const placeholder = await frame(
      () => Promise.resolve("0".repeat(64)),
      withTrailer ? trailerOf("0".repeat(64)) : undefined,
    );
    const headers: Record<string, string> = {
      "content-encoding": "aws-chunked",
      "content-length": String(placeholder.length),
      "x-amz-content-sha256": mode,
      "x-amz-decoded-content-length": String(total.length),
      ...(withTrailer ? { "x-amz-trailer": "x-amz-checksum-crc32" } : {}),
    };
    const s = signer();
    const req = await s.sign(unsignedRequest("PUT", `/raw/${name}`, headers), { signingDate });
    let previous = /Signature=([0-9a-f]{64})/.exec(String(req.headers.authorization))?.[1] ?? "";
    const chunkSigner = async (data: Buffer): Promise<string> => {
      previous = await s.sign(
        { headers: new Uint8Array(0), payload: data },
        { signingDate, priorSignature: previous },
      );
      return previous;
    };
    function trailerOf(signature: string): string {
      return `${trailerLine}\r\nx-amz-trailer-signature:${signature}\r\n\r\n`;
    }
    const body = await frame(chunkSigner);
    const trailerSignature = await s.sign(
      [
        "AWS4-HMAC-SHA256-TRAILER",
        amzDate(signingDate),
        scope(signingDate),
        previous,
        sha256Hex(`${trailerLine}\n`),
      ].join("\n"),
      { signingDate },
    );
    const framed = withTrailer
      ? Buffer.concat([body.subarray(0, body.length - 2), Buffer.from(trailerOf(trailerSignature))])
      : body;
    if (tamper) framed[framed.indexOf("second")] = "S".charCodeAt(0);
    return send({ ...req, body: framed });
  }

  it("accepts STREAMING-AWS4-HMAC-SHA256-PAYLOAD with valid chunk signatures", async () => {
    expect(await signedChunkedPut("signed", "STREAMING-AWS4-HMAC-SHA256-PAYLOAD")).toMatchObject({
      status: 200,
    });
    expect(await getObject("signed")).toEqual({ status: 200, body: total.toString() });
  });

  it("accepts signed chunks with a signed CRC32 trailer", async () => {
    const answer = await signedChunkedPut("trailer", "STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER");
    expect(answer).toMatchObject({ status: 200 });
    expect(await getObject("trailer")).toEqual({ status: 200, body: total.toString() });
  });

  it("refuses a chunk changed after signing", async () => {
    const answer = await signedChunkedPut("tampered", "STREAMING-AWS4-HMAC-SHA256-PAYLOAD", true);
    expectS3Error(answer, 403, "AccessDenied", "Forbidden: Invalid signature");
    expect(garage.objectCount("raw")).toBe(0);
  });

  it("refuses an unsigned-payload trailer whose CRC32 does not match", async () => {
    const body = Buffer.from(
      `5\r\nhello\r\n0\r\nx-amz-checksum-crc32:${crcBase64(Buffer.from("other"))}\r\n\r\n`,
    );
    const req = await signer().sign(
      unsignedRequest("PUT", "/raw/crc", {
        "content-encoding": "aws-chunked",
        "content-length": String(body.length),
        "x-amz-content-sha256": "STREAMING-UNSIGNED-PAYLOAD-TRAILER",
        "x-amz-decoded-content-length": "5",
        "x-amz-trailer": "x-amz-checksum-crc32",
      }),
    );
    expectS3Error(await send({ ...req, body }), 400, "InvalidDigest");
  });
});

function crcBase64(data: Buffer): string {
  const bytes = Buffer.alloc(4);
  bytes.writeUInt32BE(crc32(data));
  return bytes.toString("base64");
}

const sha256Hex = (text: string): string => createHash("sha256").update(text).digest("hex");

const amzDate = (date: Date): string =>
  date
    .toISOString()
    .replace(/[-:]/g, "")
    .replace(/\.\d{3}/, "");

const scope = (date: Date): string => `${amzDate(date).slice(0, 8)}/garage/s3/aws4_request`;
