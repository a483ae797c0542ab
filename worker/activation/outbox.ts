/**
 * The webhook outbox. Writers (the pipeline's segment hook, the cron, segment back-fills) insert
 * `deliveries` rows with status `pending` in the same atomic batch as the change they announce,
 * so nothing is sent for a change that did not commit. The relay then hands due rows to the
 * `DELIVERIES` queue and leases them for a while; a row whose message got lost is relayed again
 * when its lease ends. Duplicates are harmless: the row id is the stable `webhook-id`.
 */
import type { Env } from "../env";
import { newId } from "../lib/ids";

export type DeliveryType = "segment.entered" | "segment.exited" | "event";

/** A destination as the writers need it. */
export interface ActiveDestination {
  id: string;
  segments: string[];
  events: string[];
}

/** What travels on the `DELIVERIES` queue: just the row to deliver. */
export interface DeliveryMessage {
  v: 1;
  deliveryId: string;
}

/** How long a relayed row waits before the relay hands it to the queue again. */
export const RELAY_LEASE_MS = 10 * 60_000;
const RELAY_BATCH = 100;

/** Enabled destinations (a small table: read whole). */
export async function activeDestinations(db: D1Database): Promise<ActiveDestination[]> {
  const rows = await db
    .prepare("SELECT id, segments, events FROM destinations WHERE enabled = 1")
    .all<{ id: string; segments: string; events: string }>();
  return rows.results.map((r) => ({ id: r.id, segments: JSON.parse(r.segments), events: JSON.parse(r.events) }));
}

/** A new delivery id; it becomes the `webhook-id` header. */
export const newDeliveryId = () => newId("msg");

/**
 * Inserts an outbox row. With `unless`, the row is only written when that SQL condition (bound
 * to `unlessArgs`) is false at execution time, which keeps two writers racing on the same
 * membership change from announcing it twice.
 */
export function outboxInsert(
  db: D1Database,
  row: { destinationId: string; type: DeliveryType; payload: unknown; now: number },
  guard?: { sql: string; args: (string | number)[] },
): D1PreparedStatement {
  const values = [newDeliveryId(), row.destinationId, row.type, JSON.stringify(row.payload), row.now];
  const insert =
    "INSERT INTO deliveries (id, destination_id, type, payload, status, attempts, next_attempt_at, created_at, updated_at) SELECT ?1, ?2, ?3, ?4, 'pending', 0, ?5, ?5, ?5";
  if (!guard) return db.prepare(insert).bind(...values);
  return db.prepare(`${insert} WHERE ${guard.sql}`).bind(...values, ...guard.args);
}

/**
 * Hands due pending rows to the queue and leases them. Cheap when nothing is pending: one
 * indexed read (deliveries_due_idx).
 */
export async function relayDeliveries(env: Env, now: number, rounds = 10): Promise<number> {
  let relayed = 0;
  for (let round = 0; round < rounds; round++) {
    const due = await env.DB.prepare(
      "SELECT id FROM deliveries WHERE status = 'pending' AND next_attempt_at <= ?1 ORDER BY next_attempt_at LIMIT ?2",
    )
      .bind(now, RELAY_BATCH)
      .all<{ id: string }>();
    const ids = due.results.map((r) => r.id);
    if (ids.length === 0) break;
    await env.DELIVERIES.sendBatch(ids.map((id) => ({ body: { v: 1, deliveryId: id } satisfies DeliveryMessage })));
    // Leased only after the send succeeded: a failed send leaves the rows due for the next relay.
    const marks = [];
    for (let i = 0; i < ids.length; i += 90) {
      const chunk = ids.slice(i, i + 90);
      marks.push(
        env.DB.prepare(
          `UPDATE deliveries SET next_attempt_at = ?1 WHERE status = 'pending' AND id IN (${chunk.map((_, j) => `?${j + 2}`).join(", ")})`,
        ).bind(now + RELAY_LEASE_MS, ...chunk),
      );
    }
    await env.DB.batch(marks);
    relayed += ids.length;
    if (ids.length < RELAY_BATCH) break;
  }
  return relayed;
}
