/**
 * Request limits of the ingest API (Segment's figures) and the per-write-key rate limit.
 */
import { ApiError } from "../lib/errors";

/** Segment's batch limits. */
export const MAX_BATCH_BYTES = 500 * 1024;
export { MAX_MESSAGES } from "../wire/events";

/** Must match `simple.period` of the INGEST_RATE_LIMIT binding in wrangler.toml. */
export const RATE_LIMIT_PERIOD_S = 10;

/**
 * Counts one request against the write key's budget (the Workers Rate Limiting binding: 10,000
 * requests per 10 s per key and Cloudflare location, Segment's ~1,000 requests/s). Over budget it
 * throws 429 with `Retry-After`.
 */
export async function checkRateLimit(limiter: RateLimit | undefined, writeKey: string): Promise<void> {
  if (!limiter) throw new Error("The INGEST_RATE_LIMIT binding is missing: add it to wrangler.toml ([[ratelimits]])");
  let allowed: boolean;
  try {
    allowed = (await limiter.limit({ key: writeKey })).success;
  } catch (err) {
    // The limiter protects capacity; when it is down, refusing events would lose data, so fail open.
    console.error("rate limiter unavailable", err);
    allowed = true;
  }
  if (!allowed) {
    throw new ApiError("rate_limited", "Too many requests for this write key", {
      headers: { "Retry-After": String(RATE_LIMIT_PERIOD_S) },
    });
  }
}
