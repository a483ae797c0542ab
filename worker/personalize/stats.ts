/**
 * Slot stats: exposures and conversions per variant (holdout included), computed in SQL over
 * `events` for a bounded time range.
 */
import { z } from "zod";
import { EXPOSURE_EVENT } from "./exposures";

export const DAY_MS = 86_400_000;
/** The default and the longest range a stats query may cover. */
export const DEFAULT_STATS_DAYS = 30;
export const MAX_STATS_DAYS = 90;

export const variantStatsSchema = z.object({
  variant: z.string(),
  /** `Personalization Viewed` events (at most one per visitor, variant and hour). */
  exposures: z.number().int(),
  /** Distinct people (merged profiles counted once) exposed to the variant. */
  visitors: z.number().int(),
  /** Exposed people who did the goal event after their first exposure; null without a goal. */
  conversions: z.number().int().nullable(),
  conversionRate: z.number().nullable(),
});

export const slotStatsSchema = z.object({
  slot: z.string(),
  goalEvent: z.string().nullable(),
  from: z.string(),
  to: z.string(),
  variants: z.array(variantStatsSchema),
});
export type SlotStats = z.infer<typeof slotStatsSchema>;

// Exposures come from events_exposure_idx (partial on the event name, keyed by the slot and
// time); people are resolved through profiles.merged_into because events keep the profile id
// they were stored with. A person converts when any of their ids (the survivor and every id
// merged into it: profiles_last_seen_idx leads with merged_into) has the goal event after the
// first exposure, via events_profile_time_idx.
export const STATS_SQL = `
WITH exposed AS (
  SELECT e.properties ->> '$.variant' AS variant,
         COALESCE(p.merged_into, e.profile_id) AS person,
         MIN(e.timestamp) AS first_at,
         COUNT(*) AS n
    FROM events e LEFT JOIN profiles p ON p.id = e.profile_id
   WHERE e.event = '${EXPOSURE_EVENT}' AND e.properties ->> '$.slot' = ?1
     AND e.timestamp >= ?2 AND e.timestamp < ?3
   GROUP BY variant, person
)
SELECT x.variant AS variant,
       SUM(x.n) AS exposures,
       COUNT(*) AS visitors,
       SUM(CASE WHEN ?4 IS NULL THEN 0 ELSE EXISTS (
         SELECT 1 FROM events g
          WHERE g.profile_id IN (SELECT x.person UNION ALL SELECT id FROM profiles WHERE merged_into = x.person)
            AND g.event = ?4 AND g.timestamp >= x.first_at AND g.timestamp < ?3
       ) END) AS conversions
  FROM exposed x
 WHERE x.variant IS NOT NULL
 GROUP BY x.variant
 ORDER BY x.variant`;

/** Exposures and conversions per variant of `slot` between `from` (inclusive) and `to` (exclusive). */
export async function slotStats(
  d1: D1Database,
  slot: string,
  goalEvent: string | null,
  from: number,
  to: number,
): Promise<SlotStats> {
  const { results } = await d1
    .prepare(STATS_SQL)
    .bind(slot, from, to, goalEvent)
    .all<{ variant: string; exposures: number; visitors: number; conversions: number }>();
  return {
    slot,
    goalEvent,
    from: new Date(from).toISOString(),
    to: new Date(to).toISOString(),
    variants: results.map((r) => ({
      variant: String(r.variant),
      exposures: r.exposures,
      visitors: r.visitors,
      conversions: goalEvent === null ? null : r.conversions,
      conversionRate: goalEvent === null || r.visitors === 0 ? null : r.conversions / r.visitors,
    })),
  };
}
