import { isLosslessNumber, LosslessNumber, parse, stringify } from "lossless-json";

/**
 * JSON read and written without losing anything: numbers stay as their decimal text (Stolon's and
 * Consul's uint64 fields go past 2^53), unknown fields and their order are kept. What Stolon wrote is
 * written back exactly, but for the fields majordome changes.
 */
export type LosslessValue =
  null | boolean | string | LosslessNumber | LosslessValue[] | { [key: string]: LosslessValue };

export type LosslessObject = { [key: string]: LosslessValue };

/** Throws a SyntaxError naming the position when the text is not JSON. */
export function parseLossless(text: string): LosslessValue {
  return parse(text) as LosslessValue;
}

export function stringifyLossless(value: LosslessValue): string {
  const text = stringify(value);
  if (text === undefined) throw new Error("nothing to serialize");
  return text;
}

export function isLosslessObject(value: LosslessValue | undefined): value is LosslessObject {
  return typeof value === "object" && value !== null && !Array.isArray(value) && !isLosslessNumber(value);
}

/** A deep copy; numbers are shared (they are never changed in place). */
export function cloneLossless(value: LosslessValue): LosslessValue {
  if (Array.isArray(value)) return value.map(cloneLossless);
  if (isLosslessObject(value)) {
    const out: LosslessObject = {};
    for (const [key, item] of Object.entries(value)) setOwn(out, key, cloneLossless(item));
    return out;
  }
  return value;
}

/**
 * The same value with numbers as JS numbers where that is exact, bigints where it is not: what the
 * zod schemas check. Never written back.
 */
export function toPlain(value: LosslessValue): unknown {
  if (isLosslessNumber(value)) {
    const asNumber = Number(value.value);
    if (Number.isSafeInteger(asNumber) || !/^-?\d+$/.test(value.value)) return asNumber;
    return BigInt(value.value);
  }
  if (Array.isArray(value)) return value.map(toPlain);
  if (isLosslessObject(value)) {
    const out: Record<string, unknown> = {};
    for (const [key, item] of Object.entries(value)) setOwn(out, key, toPlain(item));
    return out;
  }
  return value;
}

/** An unsigned decimal from a lossless number or a string, exactly. */
export function toBigInt(value: LosslessValue | undefined): bigint | undefined {
  if (isLosslessNumber(value) && /^\d+$/.test(value.value)) return BigInt(value.value);
  if (typeof value === "string" && /^\d+$/.test(value)) return BigInt(value);
  return undefined;
}

/** An own property even for "__proto__" (a plain assignment would set the prototype instead). */
function setOwn<T>(target: Record<string, T>, key: string, value: T): void {
  Object.defineProperty(target, key, { value, enumerable: true, writable: true, configurable: true });
}
