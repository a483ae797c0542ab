/**
 * `Sec-GPC: 1` at ingest (see lib/gpc.ts): the request is answered as a success so the client
 * does not retry, but its events are neither queued nor stored, not even as rejected messages;
 * only their number is added to the `gpc_dropped` total.
 */
import { GPC_DROPPED_METRIC } from "../lib/gpc";
import { dayOf, metricUpserts } from "../stats/metrics";

/** Adds `count` dropped events to the all-time and the day's `gpc_dropped` totals. */
export async function countGpcDropped(db: D1Database, count: number, now: number): Promise<void> {
  if (count <= 0) return;
  await db.batch(
    metricUpserts(db, [
      [GPC_DROPPED_METRIC, 0, count],
      [GPC_DROPPED_METRIC, dayOf(now), count],
    ]),
  );
}
