import { createHash } from "node:crypto";
import { crc32 } from "node:zlib";
import { badRequest, invalidDigest } from "./errors.js";
import type { ChecksumValue } from "./store.js";

/**
 * Request body checks Garage makes: Content-MD5, a hex x-amz-content-sha256, and one
 * x-amz-checksum-<algorithm> (header or aws-chunked trailer). crc64nvme is accepted unchecked (Node
 * has no implementation of it); the others are recomputed.
 */

const ALGORITHMS = ["crc32", "crc32c", "crc64nvme", "sha1", "sha256"] as const;

export interface ExpectedChecksums {
  readonly md5?: string;
  readonly sha256Hex?: string;
  readonly extra?: ChecksumValue;
}

type HeaderLookup = (name: string) => string | undefined;

/** The x-amz-checksum-* value among these headers (or trailers); more than one is refused. */
export function checksumFrom(lookup: HeaderLookup): ChecksumValue | undefined {
  const found = ALGORITHMS.flatMap((algorithm) => {
    const value = lookup(`x-amz-checksum-${algorithm}`);
    return value === undefined ? [] : [{ algorithm, value }];
  });
  if (found.length > 1) throw badRequest("Multiple x-amz-checksum-* headers given");
  return found[0];
}

export function verifyChecksums(data: Buffer, expected: ExpectedChecksums): void {
  if (expected.md5 !== undefined && digest("md5", data) !== expected.md5.replace(/^"|"$/g, "")) {
    throw invalidDigest("MD5 checksum verification failed (from content-md5)");
  }
  if (
    expected.sha256Hex !== undefined &&
    createHash("sha256").update(data).digest("hex") !== expected.sha256Hex.toLowerCase()
  ) {
    throw invalidDigest("SHA256 checksum verification failed (from x-amz-content-sha256)");
  }
  const extra = expected.extra;
  if (extra === undefined) return;
  const computed = computeChecksum(extra.algorithm, data);
  if (computed !== undefined && computed !== extra.value) {
    throw invalidDigest(`Failed to validate checksum for algorithm ${extra.algorithm}`);
  }
}

/** Base64 of the checksum, or undefined for an algorithm the double does not compute. */
export function computeChecksum(algorithm: string, data: Buffer): string | undefined {
  switch (algorithm) {
    case "crc32":
      return uint32Base64(crc32(data));
    case "crc32c":
      return uint32Base64(crc32c(data));
    case "sha1":
    case "sha256":
      return digest(algorithm, data);
    default:
      return undefined;
  }
}

const digest = (algorithm: string, data: Buffer): string =>
  createHash(algorithm).update(data).digest("base64");

function uint32Base64(value: number): string {
  const bytes = Buffer.alloc(4);
  bytes.writeUInt32BE(value >>> 0);
  return bytes.toString("base64");
}

let crc32cTable: Uint32Array | undefined;

/** CRC-32C (Castagnoli, reflected polynomial 0x82F63B78). */
function crc32c(data: Buffer): number {
  const table = (crc32cTable ??= makeCrc32cTable());
  let crc = 0xffffffff;
  for (const byte of data) crc = (table[(crc ^ byte) & 0xff] ?? 0) ^ (crc >>> 8);
  return (crc ^ 0xffffffff) >>> 0;
}

function makeCrc32cTable(): Uint32Array {
  const table = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0x82f63b78 ^ (c >>> 1) : c >>> 1;
    table[n] = c >>> 0;
  }
  return table;
}
