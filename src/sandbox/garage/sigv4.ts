import { createHash, createHmac, timingSafeEqual } from "node:crypto";
import type { IncomingHttpHeaders } from "node:http";
import { authorizationHeaderMalformed, badRequest, forbidden } from "./errors.js";

/**
 * AWS Signature Version 4 as Garage checks it (src/api/common/signature/payload.rs): the
 * Authorization header or a presigned URL's X-Amz-* query parameters, the canonical request over
 * the path as sent (S3 does not encode it again), the scope's region, then the key's secret.
 * Garage answers 403 AccessDenied both for an unknown key and for a wrong signature, with messages
 * "No such key: …" and "Invalid signature" (not AWS's InvalidAccessKeyId / SignatureDoesNotMatch).
 */

export const EMPTY_SHA256 = createHash("sha256").update("").digest("hex");
const ALGORITHM = "AWS4-HMAC-SHA256";
const MAX_PRESIGNED_SECONDS = 7 * 24 * 3600;
const MAX_AGE_MS = 24 * 3600 * 1000;

export interface SigV4Request {
  readonly method: string;
  readonly rawPath: string;
  readonly rawQuery: string;
  readonly headers: IncomingHttpHeaders;
}

export interface SigV4Options {
  readonly region: string;
  readonly now: number;
  /** The secret of a key that exists and is not deleted. */
  readonly secretOf: (keyId: string) => string | undefined;
}

export type PayloadHash =
  | { readonly kind: "unsigned" }
  | { readonly kind: "sha256"; readonly hex: string }
  | { readonly kind: "streaming"; readonly signed: boolean; readonly trailer: boolean };

/** What aws-chunked signed payloads chain their chunk signatures from. */
export interface SignatureChain {
  readonly amzDate: string;
  readonly scope: string;
  readonly signingKey: Buffer;
  readonly seed: string;
}

export interface VerifiedSignature {
  readonly keyId: string;
  readonly payload: PayloadHash;
  readonly chain: SignatureChain;
}

interface Authorization {
  readonly keyId: string;
  readonly scope: string;
  readonly signedHeaders: string[];
  readonly signature: string;
  readonly contentSha256: string;
  readonly amzDate: string;
}

type QueryPair = readonly [string, string];

/** Verifies the request's signature; throws the GarageError Garage would answer with. */
export function verifySigV4(req: SigV4Request, opts: SigV4Options): VerifiedSignature {
  const query = parseQueryPairs(req.rawQuery);
  const presigned = query.some(([name]) => name.toLowerCase() === "x-amz-algorithm");
  if (!presigned && req.headers.authorization === undefined) {
    throw forbidden("Garage does not support anonymous access yet");
  }
  const auth = presigned ? parsePresigned(query, opts.now) : parseHeader(req.headers, opts.now);
  checkSignedHeaders(req.headers, auth.signedHeaders);
  const signedQuery = presigned ? query.filter(([name]) => name.toLowerCase() !== "x-amz-signature") : query;
  const canonical = canonicalRequest(req, signedQuery, auth);
  const stringToSign = [ALGORITHM, auth.amzDate, auth.scope, sha256Hex(canonical)].join("\n");
  const signingKey = verifyV4(auth, stringToSign, opts);
  return {
    keyId: auth.keyId,
    payload: parsePayloadHash(auth.contentSha256),
    chain: { amzDate: auth.amzDate, scope: auth.scope, signingKey, seed: auth.signature },
  };
}

export function parseQueryPairs(rawQuery: string): QueryPair[] {
  const seen = new Set<string>();
  const pairs: QueryPair[] = [];
  for (const [name, value] of new URLSearchParams(rawQuery)) {
    const lower = name.toLowerCase();
    if (seen.has(lower)) throw badRequest(`duplicate query parameter: \`${name}\``);
    seen.add(lower);
    pairs.push([name, value]);
  }
  return pairs;
}

function parseHeader(headers: IncomingHttpHeaders, now: number): Authorization {
  const header = headers.authorization ?? "";
  const space = header.indexOf(" ");
  if (space < 0) throw badRequest("Authorization field to short");
  if (header.slice(0, space) !== ALGORITHM) throw badRequest("Unsupported authorization method");
  const params = new Map<string, string>();
  for (const part of header.slice(space + 1).split(",")) {
    const trimmed = part.trim();
    const eq = trimmed.indexOf("=");
    if (eq < 0) throw badRequest("Field without value in authorization header");
    params.set(trimmed.slice(0, eq), trimmed.slice(eq + 1));
  }
  const credential = required(params.get("Credential"), "Could not find Credential in Authorization field");
  const signedHeaders = required(
    params.get("SignedHeaders"),
    "Could not find SignedHeaders in Authorization field",
  );
  const signature = required(params.get("Signature"), "Could not find Signature in Authorization field");
  const contentSha256 = required(
    single(headers["x-amz-content-sha256"]),
    "Missing X-Amz-Content-Sha256 field",
  );
  const amzDate = required(single(headers["x-amz-date"]), "Missing X-Amz-Date field");
  if (now - parseAmzDate(amzDate) > MAX_AGE_MS) throw badRequest("Date is too old");
  return {
    ...parseCredential(credential),
    signedHeaders: splitHeaders(signedHeaders),
    signature,
    contentSha256,
    amzDate,
  };
}

function parsePresigned(query: readonly QueryPair[], now: number): Authorization {
  const get = (name: string): string | undefined => query.find(([key]) => key.toLowerCase() === name)?.[1];
  if (get("x-amz-algorithm") !== ALGORITHM) throw badRequest("Unsupported authorization method");
  const credential = required(get("x-amz-credential"), "X-Amz-Credential not found in query parameters");
  const signedHeaders = required(
    get("x-amz-signedheaders"),
    "X-Amz-SignedHeaders not found in query parameters",
  );
  const signature = required(get("x-amz-signature"), "X-Amz-Signature not found in query parameters");
  const expires = Number(required(get("x-amz-expires"), "X-Amz-Expires not found in query parameters"));
  if (!Number.isInteger(expires)) throw badRequest("X-Amz-Expires is not a number");
  if (expires > MAX_PRESIGNED_SECONDS) throw badRequest("X-Amz-Expires may not exceed a week");
  const amzDate = required(get("x-amz-date"), "Missing X-Amz-Date field");
  if (now - parseAmzDate(amzDate) > expires * 1000) throw badRequest("Date is too old");
  return {
    ...parseCredential(credential),
    signedHeaders: splitHeaders(signedHeaders),
    signature,
    contentSha256: "UNSIGNED-PAYLOAD",
    amzDate,
  };
}

function required(value: string | undefined, message: string): string {
  if (value === undefined) throw badRequest(message);
  return value;
}

const single = (value: string | string[] | undefined): string | undefined =>
  Array.isArray(value) ? value.join(",") : value;

function parseCredential(credential: string): { keyId: string; scope: string } {
  const slash = credential.indexOf("/");
  if (slash < 0) throw badRequest("Credentials does not contain '/' in authorization field");
  return { keyId: credential.slice(0, slash), scope: credential.slice(slash + 1) };
}

const splitHeaders = (list: string): string[] =>
  list
    .split(";")
    .map((name) => name.toLowerCase())
    .sort();

/** "20260101T120000Z" → epoch ms. */
function parseAmzDate(amzDate: string): number {
  const m = /^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z$/.exec(amzDate);
  if (!m) throw badRequest("Invalid date");
  const [, y, mo, d, h, mi, s] = m.map(Number);
  return Date.UTC(y ?? 0, (mo ?? 1) - 1, d, h, mi, s);
}

/** Host, and every x-amz-* header the request carries, must be signed. */
function checkSignedHeaders(headers: IncomingHttpHeaders, signed: readonly string[]): void {
  if (!signed.includes("host")) throw badRequest("Header `Host` should be signed");
  for (const name of Object.keys(headers)) {
    if (name.startsWith("x-amz-") && !signed.includes(name)) {
      throw badRequest(`Header \`${name}\` should be signed`);
    }
  }
}

function canonicalRequest(req: SigV4Request, query: readonly QueryPair[], auth: Authorization): string {
  const canonicalQuery = query
    .map(([name, value]) => `${uriEncode(name)}=${uriEncode(value)}`)
    .sort()
    .join("&");
  const canonicalHeaders = auth.signedHeaders.map((name) => {
    const value = single(req.headers[name]);
    if (value === undefined) throw badRequest(`signed header \`${name}\` is not present`);
    return `${name}:${value.trim()}`;
  });
  return [
    req.method,
    req.rawPath,
    canonicalQuery,
    canonicalHeaders.join("\n"),
    "",
    auth.signedHeaders.join(";"),
    auth.contentSha256,
  ].join("\n");
}

/** RFC 3986 encoding of everything but unreserved characters, slashes included. */
export function uriEncode(text: string): string {
  return encodeURIComponent(text).replace(
    /[!'()*]/g,
    (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`,
  );
}

function verifyV4(auth: Authorization, stringToSign: string, opts: SigV4Options): Buffer {
  const expectedScope = `${auth.amzDate.slice(0, 8)}/${opts.region}/s3/aws4_request`;
  if (auth.scope !== expectedScope) throw authorizationHeaderMalformed(auth.scope, expectedScope);
  const secret = opts.secretOf(auth.keyId);
  if (secret === undefined) throw forbidden(`No such key: ${auth.keyId}`);
  const signingKey = deriveSigningKey(secret, auth.amzDate.slice(0, 8), opts.region);
  const expected = hmac(signingKey, stringToSign);
  const given = /^[0-9a-fA-F]{64}$/.test(auth.signature) ? Buffer.from(auth.signature, "hex") : undefined;
  if (!given || !timingSafeEqual(given, expected)) throw forbidden("Invalid signature");
  return signingKey;
}

export function deriveSigningKey(secret: string, day: string, region: string): Buffer {
  const kDate = hmac(Buffer.from(`AWS4${secret}`), day);
  return hmac(hmac(hmac(kDate, region), "s3"), "aws4_request");
}

export const hmac = (key: Buffer, data: string): Buffer => createHmac("sha256", key).update(data).digest();

export const sha256Hex = (data: string | Buffer): string => createHash("sha256").update(data).digest("hex");

function parsePayloadHash(value: string): PayloadHash {
  if (value === "UNSIGNED-PAYLOAD") return { kind: "unsigned" };
  if (value.startsWith("STREAMING-")) {
    const rest = value.slice("STREAMING-".length);
    const trailer = rest.endsWith("-TRAILER");
    const algorithm = trailer ? rest.slice(0, -"-TRAILER".length) : rest;
    if (algorithm !== "AWS4-HMAC-SHA256-PAYLOAD" && algorithm !== "UNSIGNED-PAYLOAD") {
      throw badRequest("invalid or unsupported x-amz-content-sha256");
    }
    return { kind: "streaming", signed: algorithm === "AWS4-HMAC-SHA256-PAYLOAD", trailer };
  }
  if (!/^[0-9a-fA-F]{64}$/.test(value)) throw badRequest("Invalid content sha256 hash");
  return { kind: "sha256", hex: value };
}
