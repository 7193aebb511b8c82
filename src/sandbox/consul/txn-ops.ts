import { HttpError } from "./http.js";
import { field, isRecord, parseJson } from "./json.js";

/** One operation of a /v1/txn body, KV ones decoded; other kinds are kept only to be refused. */
export type TxnOp =
  | {
      readonly kind: "kv";
      readonly verb: string;
      readonly key: string;
      readonly value: Buffer | null;
      readonly flags: bigint;
      readonly index: bigint;
      readonly session: string;
    }
  | { readonly kind: "other"; readonly what: string };

export const WRITE_VERBS: ReadonlySet<string> = new Set([
  "set",
  "delete",
  "delete-cas",
  "delete-tree",
  "cas",
  "lock",
  "unlock",
]);

const MAX_TXN_OPS = 64;

/** convertOps in agent/txn_endpoint.go: size limits, then the body in API format. */
export function parseTxnBody(body: Buffer, bodySize: number, maxSize: number): TxnOp[] {
  if (bodySize > maxSize) throw new HttpError(413, `Request body too large, max size: ${maxSize} bytes`);
  let raw: unknown;
  try {
    raw = parseJson(body.toString("utf8"));
  } catch (error) {
    throw new HttpError(400, `Failed to parse body: ${(error as Error).message}`);
  }
  if (!Array.isArray(raw)) {
    throw new HttpError(400, "Failed to parse body: json: cannot unmarshal into Go value of type api.TxnOps");
  }
  if (raw.length > MAX_TXN_OPS) {
    throw new HttpError(413, `Transaction contains too many operations (${raw.length} > ${MAX_TXN_OPS})`);
  }
  return raw.map((op) => parseOp(op, maxSize));
}

function parseOp(op: unknown, maxValueSize: number): TxnOp {
  const kv = isRecord(op) ? field(op, "KV") : undefined;
  if (!isRecord(kv)) {
    const kind = isRecord(op) ? Object.keys(op).join(",") : typeof op;
    return { kind: "other", what: `${kind} operations are not implemented by the Consul double` };
  }
  const key = stringField(kv, "Key");
  const value = decodeValue(field(kv, "Value"));
  if (value !== null && value.length > maxValueSize) {
    throw new HttpError(
      413,
      `Value for key ${JSON.stringify(key)} is too large (${value.length} > ${maxValueSize} bytes)`,
    );
  }
  return {
    kind: "kv",
    verb: stringField(kv, "Verb"),
    key,
    value,
    flags: uintField(kv, "Flags"),
    index: uintField(kv, "Index"),
    session: stringField(kv, "Session"),
  };
}

function decodeValue(value: unknown): Buffer | null {
  if (value === undefined || value === null) return null;
  if (typeof value !== "string") {
    throw new HttpError(
      400,
      `Failed to parse body: failed to decode value: unexpected value type: ${typeof value}`,
    );
  }
  if (!/^[A-Za-z0-9+/]*={0,2}$/.test(value) || value.length % 4 !== 0) {
    throw new HttpError(400, "Failed to parse body: failed to decode value: illegal base64 data");
  }
  const decoded = Buffer.from(value, "base64");
  return decoded.length > 0 ? decoded : null;
}

function stringField(object: Record<string, unknown>, name: string): string {
  const value = field(object, name);
  return typeof value === "string" ? value : "";
}

function uintField(object: Record<string, unknown>, name: string): bigint {
  const value = field(object, name);
  if (typeof value === "bigint") return value;
  return typeof value === "number" && Number.isInteger(value) && value >= 0 ? BigInt(value) : 0n;
}
