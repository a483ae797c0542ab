/**
 * Exposure measurement: each variant served to an identifiable visitor becomes a
 * `Personalization Viewed` track event on the events queue, so the pipeline stores it like any
 * other event (on the visitor's profile) and slot stats can count it.
 */
import { sha256Hex } from "../lib/ids";
import type { NormalizedEvent, QueuedBatch } from "../wire/queue";
import type { Decision } from "./decide";

export const EXPOSURE_EVENT = "Personalization Viewed";

const HOUR_MS = 3_600_000;

export interface ExposureInput {
  siteId: string;
  anonymousId: string | null;
  userId: string | null;
  /** A valid userHash proved the userId. */
  verified: boolean;
  decisions: { slot: string; decision: Decision }[];
  now: number;
  /** `edge` (decision API) or `proxy` (HTML rewriting): where the exposure happened. */
  source: "edge" | "proxy";
}

/**
 * Builds the queue message for a set of decisions, or null when there is nobody to attribute
 * them to. The messageId is derived from (site, visitor, slot, variant, hour): the pipeline's
 * dedupe then keeps at most one exposure per visitor, slot and variant per hour, however often
 * the page is reloaded, while a change of variant is always recorded.
 */
export async function exposureBatch(input: ExposureInput): Promise<QueuedBatch | null> {
  if (!input.anonymousId && !input.userId) return null;
  const hour = Math.floor(input.now / HOUR_MS);
  const visitor = `${input.userId ?? ""}\u0000${input.anonymousId ?? ""}`;
  const events = await Promise.all(
    input.decisions.map(async ({ slot, decision }): Promise<NormalizedEvent> => {
      const digest = await sha256Hex(
        `${input.siteId}\u0000${visitor}\u0000${slot}\u0000${decision.variant}\u0000${hour}`,
      );
      return {
        type: "track",
        messageId: `pv_${digest.slice(0, 40)}`,
        anonymousId: input.anonymousId,
        userId: input.userId,
        previousId: null,
        groupId: null,
        event: EXPOSURE_EVENT,
        name: null,
        properties: { slot, variant: decision.variant, holdout: decision.heldOut },
        traits: {},
        context: { library: { name: "tessera-personalize", version: "1" }, source: input.source },
        timestamp: input.now,
        receivedAt: input.now,
        flags: [],
        verified: input.verified,
      };
    }),
  );
  return events.length === 0 ? null : { v: 1, siteId: input.siteId, events };
}

/**
 * Sends the exposures after the response (never delaying or failing it): a lost exposure costs
 * one data point, an error here must not cost the visitor their page.
 */
export function recordExposures(
  queue: Queue<unknown>,
  ctx: { waitUntil(promise: Promise<unknown>): void } | undefined,
  input: ExposureInput,
): void {
  const work = exposureBatch(input)
    .then((batch) => (batch ? queue.send(batch) : undefined))
    .catch(() => {});
  ctx?.waitUntil(work);
}
