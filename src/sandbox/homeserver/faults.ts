import { limitExceeded, MatrixHttpError } from "./errors.js";
import type { FailMatch, RateLimit } from "./types.js";

interface Bucket {
  readonly limit: RateLimit;
  tokens: number;
  updatedAt: number;
}

/** Per-user token buckets on event-creating requests (Synapse's rc_message covers the same ones). */
export class RateLimiter {
  private readonly buckets = new Map<string, Bucket>();
  refused = 0;

  constructor(private readonly now: () => number) {}

  set(userId: string, limit: RateLimit | null): void {
    if (limit === null) {
      this.buckets.delete(userId);
      return;
    }
    if (!(limit.burst >= 1) || !(limit.perSecond > 0)) {
      throw new RangeError("rate limit needs burst >= 1 and perSecond > 0");
    }
    this.buckets.set(userId, { limit, tokens: limit.burst, updatedAt: this.now() });
  }

  /** Takes a token or throws 429 saying how long until the next one. */
  take(userId: string): void {
    const bucket = this.buckets.get(userId);
    if (!bucket) return;
    const now = this.now();
    const refill = ((now - bucket.updatedAt) / 1000) * bucket.limit.perSecond;
    bucket.tokens = Math.min(bucket.limit.burst, bucket.tokens + refill);
    bucket.updatedAt = now;
    if (bucket.tokens >= 1) {
      bucket.tokens -= 1;
      return;
    }
    this.refused += 1;
    throw limitExceeded(((1 - bucket.tokens) / bucket.limit.perSecond) * 1000);
  }
}

interface FaultRule {
  readonly match: FailMatch;
  remaining: number;
  readonly status: number;
  readonly errcode: string;
  readonly error: string;
}

/** failNext(): canned errors for the next N matching requests, checked before anything else. */
export class FaultInjector {
  private rules: FaultRule[] = [];

  add(match: FailMatch, count: number, status: number, errcode: string, error?: string): void {
    if (!Number.isInteger(count) || count < 1) throw new RangeError("count must be a positive integer");
    this.rules.push({
      match,
      remaining: count,
      status,
      errcode,
      error: error ?? `Injected failure (${errcode})`,
    });
  }

  /** The error to answer with, if a rule matches (and uses up one of its count). */
  check(method: string, path: string): MatrixHttpError | undefined {
    const rule = this.rules.find((r) => matches(r.match, method, path));
    if (!rule) return undefined;
    rule.remaining -= 1;
    this.rules = this.rules.filter((r) => r.remaining > 0);
    if (rule.status === 429) {
      // A 429 without a retry hint is not something a homeserver sends.
      return limitExceededLike(rule);
    }
    return new MatrixHttpError(rule.status, rule.errcode, rule.error);
  }
}

function matches(match: FailMatch, method: string, path: string): boolean {
  if (match.method !== undefined && match.method.toUpperCase() !== method) return false;
  match.path.lastIndex = 0; // a /g or /y regex keeps state between test() calls
  return match.path.test(path);
}

function limitExceededLike(rule: FaultRule): MatrixHttpError {
  const template = limitExceeded(1000);
  return new MatrixHttpError(429, rule.errcode, rule.error, template.extra, template.headers);
}
