/**
 * Retention of what the pipeline and ingest keep only for debugging: rejected events and dead
 * letters. Neither can be attributed to a person reliably (they failed validation or
 * processing), so erasure can't find them; instead they expire after `RETENTION_MS`.
 */
import { DAY_MS } from "../stats/metrics";

/** How long rejected events and dead letters are kept. */
export const RETENTION_MS = 30 * DAY_MS;

/** Rows per DELETE, and rounds per sweep: each statement stays short; the next cron run goes on. */
const ROWS_PER_ROUND = 1000;
const ROUNDS = 20;

export interface SweepResult {
  rejectedEvents: number;
  deadLetters: number;
}

/**
 * Deletes rejected events and dead letters older than `RETENTION_MS` at `now`. Meant for the
 * cron; a large backlog is worked off over several runs.
 */
export async function sweepRetention(env: { DB: D1Database }, now: number): Promise<SweepResult> {
  const cutoff = now - RETENTION_MS;
  const swept: SweepResult = { rejectedEvents: 0, deadLetters: 0 };
  for (let round = 0; round < ROUNDS; round++) {
    const [rejected, dead] = await env.DB.batch([
      // rejected_events_received_idx
      env.DB.prepare(
        "DELETE FROM rejected_events WHERE id IN (SELECT id FROM rejected_events WHERE received_at < ?1 LIMIT ?2)",
      ).bind(cutoff, ROWS_PER_ROUND),
      // dead_letters_created_idx
      env.DB.prepare(
        "DELETE FROM dead_letters WHERE id IN (SELECT id FROM dead_letters WHERE created_at < ?1 LIMIT ?2)",
      ).bind(cutoff, ROWS_PER_ROUND),
    ]);
    swept.rejectedEvents += rejected.meta.changes;
    swept.deadLetters += dead.meta.changes;
    if (rejected.meta.changes < ROWS_PER_ROUND && dead.meta.changes < ROWS_PER_ROUND) break;
  }
  return swept;
}
