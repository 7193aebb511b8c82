import type { FailMatch } from "./faults.js";

export interface GarageDoubleOptions {
  /** Loopback by default. */
  host?: string;
  /** 0 (any free port) by default, for both. */
  adminPort?: number;
  s3Port?: number;
  /** The admin API's bearer token (Garage's admin.admin_token). */
  adminToken: string;
  /** s3_api.s3_region: signatures must be scoped to it. "garage" by default. */
  region?: string;
  /** "v1-only" serves only the v1 admin API, as Garage 1.x does: to test "unsupported Garage version". */
  apiVersion?: "v2" | "v1-only";
  /**
   * Creation dates, key expiry, object dates and the age check of signatures. Clients sign with the
   * real clock: a clock more than a day ahead of it makes every request "Date is too old".
   */
  now?: () => number;
}

export interface GarageDouble {
  readonly adminUrl: string;
  readonly s3Url: string;
  readonly region: string;
  /**
   * The next `count` requests to the endpoint fail with this status and code, after authentication
   * (admin errors as JSON, S3 ones as XML). Endpoint names are the admin v2 operation names and the
   * S3 operation names; `api` tells CreateBucket and ListBuckets of one API from the other's.
   */
  failNext(match: FailMatch, count: number, status: number, code: string): void;
  /** Global aliases of every bucket, sorted. */
  bucketNames(): string[];
  /** Ids of the keys that exist (not deleted), sorted. */
  keyIds(): string[];
  /** Objects in the bucket with this global alias or hex id; throws when there is none. */
  objectCount(bucketAliasOrId: string): number;
  /**
   * Down: the node has no quorum. /health answers 503, GetClusterHealth "unavailable", and every
   * other admin or S3 request 503 ServiceUnavailable, as a Garage node cut from its peers does.
   */
  unavailable(down: boolean): void;
  /** Closes both servers and every connection. */
  close(): Promise<void>;
}
