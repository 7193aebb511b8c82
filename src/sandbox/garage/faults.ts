import { GarageError } from "./errors.js";

export type GarageApi = "admin" | "s3";

export interface FailMatch {
  /** Endpoint name: an admin v2 operation ("CreateBucket", "AllowBucketKey") or an S3 one ("PutObject"). */
  readonly endpoint: string;
  /** Only on this API; both when absent (CreateBucket and ListBuckets exist on both). */
  readonly api?: GarageApi;
}

interface FaultRule {
  readonly match: FailMatch;
  remaining: number;
  readonly status: number;
  readonly code: string;
}

/** Makes the next requests to an endpoint fail, after authentication, before the handler runs. */
export class FaultInjector {
  private readonly rules: FaultRule[] = [];

  add(match: FailMatch, count: number, status: number, code: string): void {
    if (!Number.isInteger(count) || count < 1) throw new RangeError("failNext needs a count >= 1");
    this.rules.push({ match, remaining: count, status, code });
  }

  /** The error to answer with, if a rule matches; each match uses up one of the rule's count. */
  take(api: GarageApi, endpoint: string): GarageError | undefined {
    const index = this.rules.findIndex(
      (rule) => rule.match.endpoint === endpoint && (rule.match.api ?? api) === api,
    );
    const rule = this.rules[index];
    if (!rule) return undefined;
    rule.remaining -= 1;
    if (rule.remaining === 0) this.rules.splice(index, 1);
    return new GarageError(rule.status, rule.code, `Injected fault on ${endpoint} (${rule.code})`);
  }
}
