import { timingSafeEqual } from "node:crypto";
import { badRequest, forbidden } from "./errors.js";
import { EMPTY_SHA256, hmac, sha256Hex, type SignatureChain } from "./sigv4.js";

/**
 * aws-chunked bodies (x-amz-content-sha256: STREAMING-…): `<hex size>[;chunk-signature=<sig>]\r\n
 * <data>\r\n` chunks, a zero-size last chunk, then trailers (`name:value\r\n`) and an empty line.
 * With STREAMING-AWS4-HMAC-SHA256-PAYLOAD each chunk's signature chains from the previous one,
 * starting at the request's signature; with -TRAILER the trailers are signed too
 * (x-amz-trailer-signature). The AWS SDK v3 sends STREAMING-UNSIGNED-PAYLOAD-TRAILER for stream
 * bodies over plain HTTP, with the CRC32 in a trailer.
 */

export interface DecodedChunks {
  readonly data: Buffer;
  readonly trailers: ReadonlyMap<string, string>;
}

const CRLF = Buffer.from("\r\n");

class Cursor {
  offset = 0;
  constructor(readonly buffer: Buffer) {}

  line(): string {
    const end = this.buffer.indexOf(CRLF, this.offset);
    if (end < 0) throw malformed("line without CRLF");
    const text = this.buffer.subarray(this.offset, end).toString("latin1");
    this.offset = end + 2;
    return text;
  }

  take(size: number): Buffer {
    if (this.offset + size > this.buffer.length) throw malformed("chunk longer than the body");
    const data = this.buffer.subarray(this.offset, this.offset + size);
    this.offset += size;
    return data;
  }
}

const malformed = (detail: string): Error => badRequest(`Invalid aws-chunked body: ${detail}`);

export function decodeAwsChunked(body: Buffer, trailer: boolean, chain?: SignatureChain): DecodedChunks {
  const cursor = new Cursor(body);
  const parts: Buffer[] = [];
  let previous = chain?.seed ?? "";
  for (;;) {
    const { size, signature } = parseChunkHeader(cursor.line());
    const data = cursor.take(size);
    if (chain) previous = checkChunkSignature(chain, previous, data, signature);
    if (size === 0) break;
    parts.push(data);
    if (cursor.line() !== "") throw malformed("chunk data not followed by CRLF");
  }
  const trailers = trailer ? readTrailers(cursor, chain, previous) : new Map<string, string>();
  if (!trailer && cursor.line() !== "") throw malformed("missing final CRLF");
  return { data: Buffer.concat(parts), trailers };
}

function parseChunkHeader(line: string): { size: number; signature: string | undefined } {
  const [sizeText = "", ...extensions] = line.split(";");
  if (!/^[0-9a-fA-F]+$/.test(sizeText)) throw malformed(`bad chunk size "${sizeText}"`);
  const signature = extensions
    .map((ext) => /^chunk-signature=([0-9a-f]{64})$/.exec(ext.trim())?.[1])
    .find((sig) => sig !== undefined);
  return { size: parseInt(sizeText, 16), signature };
}

function checkChunkSignature(
  chain: SignatureChain,
  previous: string,
  data: Buffer,
  given: string | undefined,
): string {
  const expected = sign(chain, "AWS4-HMAC-SHA256-PAYLOAD", [previous, EMPTY_SHA256, sha256Hex(data)]);
  if (given === undefined || !sameHex(given, expected)) throw forbidden("Invalid signature");
  return expected;
}

function readTrailers(
  cursor: Cursor,
  chain: SignatureChain | undefined,
  previous: string,
): Map<string, string> {
  const trailers = new Map<string, string>();
  let signature: string | undefined;
  for (let line = cursor.line(); line !== ""; line = cursor.line()) {
    const colon = line.indexOf(":");
    if (colon < 0) throw malformed("trailer without a colon");
    const name = line.slice(0, colon).trim().toLowerCase();
    const value = line.slice(colon + 1).trim();
    if (name === "x-amz-trailer-signature") signature = value;
    else trailers.set(name, value);
  }
  if (chain) {
    const canonical = [...trailers].map(([name, value]) => `${name}:${value}\n`).join("");
    const expected = sign(chain, "AWS4-HMAC-SHA256-TRAILER", [previous, sha256Hex(canonical)]);
    if (signature === undefined || !sameHex(signature, expected)) throw forbidden("Invalid signature");
  }
  return trailers;
}

/** The hex signature of [kind, date, scope, previous signature, …hashes]. */
function sign(chain: SignatureChain, kind: string, rest: readonly string[]): string {
  return hmac(chain.signingKey, [kind, chain.amzDate, chain.scope, ...rest].join("\n")).toString("hex");
}

const sameHex = (a: string, b: string): boolean =>
  a.length === b.length && timingSafeEqual(Buffer.from(a, "latin1"), Buffer.from(b, "latin1"));
