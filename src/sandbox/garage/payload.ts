import type { IncomingHttpHeaders } from "node:http";
import { decodeAwsChunked } from "./chunked.js";
import { checksumFrom, verifyChecksums } from "./checksums.js";
import { badRequest } from "./errors.js";
import type { VerifiedSignature } from "./sigv4.js";
import type { ChecksumValue } from "./store.js";

export interface Payload {
  readonly data: Buffer;
  /** The x-amz-checksum-* the client sent (header or trailer), verified when the double can. */
  readonly checksum: ChecksumValue | undefined;
}

const header = (headers: IncomingHttpHeaders, name: string): string | undefined => {
  const value = headers[name];
  return Array.isArray(value) ? value.join(",") : value;
};

/** The request body once aws-chunked framing is removed and every digest the client gave is checked. */
export function decodePayload(
  body: Buffer,
  headers: IncomingHttpHeaders,
  signature: VerifiedSignature,
): Payload {
  const hash = signature.payload;
  let data = body;
  let trailers: ReadonlyMap<string, string> = new Map();
  if (hash.kind === "streaming") {
    ({ data, trailers } = decodeAwsChunked(body, hash.trailer, hash.signed ? signature.chain : undefined));
    const declared = header(headers, "x-amz-decoded-content-length");
    if (declared !== undefined && Number(declared) !== data.length) {
      throw badRequest("x-amz-decoded-content-length does not match the decoded body");
    }
  }
  const checksum = checksumFrom((name) => trailers.get(name) ?? header(headers, name));
  const md5 = header(headers, "content-md5");
  verifyChecksums(data, {
    ...(md5 === undefined ? {} : { md5 }),
    ...(hash.kind === "sha256" ? { sha256Hex: hash.hex } : {}),
    ...(checksum === undefined ? {} : { extra: checksum }),
  });
  return { data, checksum };
}
