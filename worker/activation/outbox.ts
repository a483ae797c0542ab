/**
 * The webhook outbox. Writers (the pipeline's segment hook, the cron, segment back-fills) insert
 * `deliveries` rows with status `pending` in the same atomic batch as the change they announce,
 * so nothing is sent for a change that did not commit. The relay then hands due rows to the
 * `DELIVERIES` queue and leases them for a while; a row whose message got lost is relayed again
 * when its lease ends. Duplicates are harmless: the row id is the stable `webhook-id`.
 */
import { jsonRowStatements } from "../db/json-rows";
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

/** Inserts an outbox row. */
export function outboxInsert(
  db: D1Database,
  row: { destinationId: string; type: DeliveryType; payload: unknown; now: number },
): D1PreparedStatement {
  return db
    .prepare(
      "INSERT INTO deliveries (id, destination_id, type, payload, status, attempts, next_attempt_at, created_at, updated_at) SELECT ?1, ?2, ?3, ?4, 'pending', 0, ?5, ?5, ?5",
    )
    .bind(newDeliveryId(), row.destinationId, row.type, JSON.stringify(row.payload), row.now);
}

/**
 * Outbox rows of one destination and type, many per statement (db/json-rows.ts). With `guard`, a
 * row is written only when that SQL condition holds at execution time; it reads the row's
 * `guard` values as `j.value ->> 1`, `j.value ->> 2`, ….
 */
export function outboxInserts(
  db: D1Database,
  common: { destinationId: string; type: DeliveryType; now: number },
  rows: { payload: unknown; guard: (string | number)[] }[],
  guard?: string,
): D1PreparedStatement[] {
  const payloadAt = (rows[0]?.guard.length ?? 0) + 1;
  return jsonRowStatements(
    db,
    `INSERT INTO deliveries (id, destination_id, type, payload, status, attempts, next_attempt_at, created_at, updated_at)
     SELECT j.value ->> 0, ?2, ?3, j.value ->> ${payloadAt}, 'pending', 0, ?4, ?4, ?4
     FROM json_each(?1) j${guard ? ` WHERE ${guard}` : ""}`,
    rows.map((r) => [newDeliveryId(), ...r.guard, JSON.stringify(r.payload)]),
    [common.destinationId, common.type, common.now],
  );
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
