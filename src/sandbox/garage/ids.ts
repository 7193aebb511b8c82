import { randomBytes } from "node:crypto";
import { isIP } from "node:net";

/** Identifiers in Garage's formats: bucket ids are 32 random bytes, key ids "GK" + 12, secrets 32. */

export const newBucketId = (): string => randomBytes(32).toString("hex");
export const newKeyId = (): string => `GK${randomBytes(12).toString("hex")}`;
export const newSecret = (): string => randomBytes(32).toString("hex");

export const isBucketId = (value: string): boolean => /^[0-9a-fA-F]{64}$/.test(value);
export const isKeyId = (value: string): boolean => /^GK[0-9a-fA-F]{24}$/.test(value);
export const isSecret = (value: string): boolean => /^[0-9a-fA-F]{64}$/.test(value);

/** Garage's is_valid_bucket_name (S3's rules, with punycode refused in every label). */
export function isValidBucketName(name: string): boolean {
  return (
    name.length >= 3 &&
    name.length <= 63 &&
    /^[a-z0-9.-]+$/.test(name) &&
    !/^[.-]|[.-]$/.test(name) &&
    isIP(name) === 0 &&
    !name.startsWith("xn--") &&
    !name.includes(".xn--") &&
    !name.endsWith("-s3alias")
  );
}
