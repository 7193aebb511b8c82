import type { JsonObject } from "./json.js";

/**
 * A Matrix error response: the body is always `{errcode, error, ...extra}` (spec: both keys always
 * present). Thrown by the room logic and turned into the HTTP response by the server; the in-process
 * API lets it propagate so a test driving a user sees the same refusal the HTTP client would.
 */
export class MatrixHttpError extends Error {
  constructor(
    readonly status: number,
    readonly errcode: string,
    readonly error: string,
    readonly extra: JsonObject = {},
    readonly headers: Readonly<Record<string, string>> = {},
  ) {
    super(`${status} ${errcode}: ${error}`);
    this.name = "MatrixHttpError";
  }

  body(): JsonObject {
    return { errcode: this.errcode, error: this.error, ...this.extra };
  }
}

export const forbidden = (error: string): MatrixHttpError => new MatrixHttpError(403, "M_FORBIDDEN", error);
export const notFound = (error: string): MatrixHttpError => new MatrixHttpError(404, "M_NOT_FOUND", error);
export const badJson = (error: string): MatrixHttpError => new MatrixHttpError(400, "M_BAD_JSON", error);
export const notJson = (error = "Content not JSON."): MatrixHttpError =>
  new MatrixHttpError(400, "M_NOT_JSON", error);
export const invalidParam = (error: string): MatrixHttpError =>
  new MatrixHttpError(400, "M_INVALID_PARAM", error);
export const missingParam = (error: string): MatrixHttpError =>
  new MatrixHttpError(400, "M_MISSING_PARAM", error);
export const tooLarge = (error: string): MatrixHttpError => new MatrixHttpError(413, "M_TOO_LARGE", error);
export const unrecognized = (status: 404 | 405): MatrixHttpError =>
  new MatrixHttpError(status, "M_UNRECOGNIZED", "Unrecognized request");

/** 429 with the body field the SDK reads (deprecated since v1.10) and the header the spec now prefers. */
export function limitExceeded(retryAfterMs: number): MatrixHttpError {
  const ms = Math.max(1, Math.ceil(retryAfterMs));
  return new MatrixHttpError(
    429,
    "M_LIMIT_EXCEEDED",
    "Too many requests",
    { retry_after_ms: ms },
    { "Retry-After": String(Math.ceil(ms / 1000)) },
  );
}
