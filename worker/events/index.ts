/**
 * `GET /api/events/latest`: the live event debugger's feed — the latest stored events of the
 * workspace, newest first, optionally for one site and one type, polled with a cursor.
 *
 * The feed reads the `recent_events` ring (recent.ts), which the pipeline writes once per batch:
 * `events` is a WITHOUT ROWID table with no insertion order of its own, and an index on arrival
 * order would cost every stored event one more row written. The cursor is the ring's `seq` of the
 * newest row seen; filters apply to the keys in the ring, and only the matching page of events
 * is read from `events` by primary key. A poll only looks at what the ring holds (its last
 * `RING_ROWS` rows), so a filter that matches nothing never walks the whole table.
 */
import { Hono } from "hono";
import { z } from "zod";
import type { AppEnv } from "../env";
import { describe } from "../lib/openapi";
import { query } from "../lib/validate";
import { EVENT_COLUMNS, type EventRow, eventItem, eventItemSchema } from "../profiles/read";

export { KEYS_PER_ROW, type RecentKey, RING_ROWS, recentEventWrites } from "./recent";

const latestQuery = z.object({
  after: z
    .string()
    .regex(/^\d{1,15}$/, "Not a cursor from this feed")
    .optional(),
  site: z.string().min(1).max(100).optional(),
  type: z.enum(["track", "page", "identify", "screen", "group", "alias"]).optional(),
  limit: z.coerce.number().int().min(1).max(100).default(50),
});
export type LatestQuery = z.output<typeof latestQuery>;

export const latestSchema = z.object({
  items: z.array(eventItemSchema),
  /** Pass back as `after` to get only newer events. */
  cursor: z.string(),
  /** More events arrived after the cursor than one poll returns (`limit`, or the ring recycled them); the older were left out. */
  truncated: z.boolean(),
});
export type LatestEvents = z.infer<typeof latestSchema>;

/**
 * The latest events (newest first), only those after `q.after` when given. `profileId` is the
 * live profile (an event stored on a profile that was merged away shows the survivor).
 */
export async function latestEvents(db: D1Database, q: LatestQuery): Promise<LatestEvents> {
  const filters: string[] = [];
  const args: unknown[] = [q.after === undefined ? 0 : Number(q.after), q.limit + 1];
  if (q.site !== undefined) {
    args.push(q.site);
    filters.push(`AND j.value ->> 0 = ?${args.length}`);
  }
  if (q.type !== undefined) {
    args.push(q.type);
    filters.push(`AND j.value ->> 2 = ?${args.length}`);
  }
  const newest = "(SELECT coalesce(max(seq), 0) FROM recent_events)";
  // A cursor above the newest seq (another database's, or a ring that was emptied) restarts
  // from the top rather than waiting for the ring to pass it.
  const start = `(CASE WHEN ?1 > ${newest} THEN ${newest} ELSE ?1 END)`;
  // The page is picked from the ring first (LIMIT inside the CTE), then only those rows are read
  // from `events`; an event erased since it was stored is simply missing from the page. Ring rows
  // are walked newest first by rowid and each row's keys are stored newest first, which
  // json_each yields in array order: ordering by seq alone needs no sort and stops at the LIMIT
  // (ordering by the array index too made SQLite sort every key in the ring, ~0.2 s when full).
  const pageSql = `WITH picked AS (
      SELECT r.seq AS k_seq, j.key AS k_pos, j.value ->> 0 AS k_site, j.value ->> 1 AS k_message
      FROM recent_events r CROSS JOIN json_each(r.keys) j
      WHERE r.seq > ${start} ${filters.join(" ")}
      ORDER BY r.seq DESC LIMIT ?2)
    SELECT ${EVENT_COLUMNS}, k_seq,
      (SELECT p.merged_into FROM profiles p WHERE p.id = e.profile_id) AS live_profile_id
    FROM picked CROSS JOIN events e ON e.site_id = k_site AND e.message_id = k_message
    ORDER BY k_seq DESC, k_pos`;
  // One batch: both reads see the same snapshot.
  const [bounds, rows] = await db.batch<Record<string, unknown>>([
    db.prepare(`SELECT ${newest} AS newest, (SELECT coalesce(min(seq), 1) FROM recent_events) AS oldest`),
    db.prepare(pageSql).bind(...args),
  ]);
  const newestSeq = Number(bounds.results[0]?.newest ?? 0);
  const oldestSeq = Number(bounds.results[0]?.oldest ?? 1);
  const found = rows.results as unknown as (EventRow & { live_profile_id: string | null })[];
  const page = found.slice(0, q.limit);
  const after = q.after === undefined ? undefined : Number(q.after);
  return {
    items: page.map((r) => ({ ...eventItem(r), profileId: r.live_profile_id ?? r.profile_id })),
    // Every event up to the newest ring row was either returned, left out by the limit, or does
    // not match the filters: the next poll starts after it, even when nothing matched.
    cursor: String(newestSeq),
    // Rows between the cursor and the oldest the ring still holds were recycled unseen.
    truncated: found.length > q.limit || (after !== undefined && after + 1 < oldestSeq),
  };
}

export const eventsApi = new Hono<AppEnv>().get("/latest", query(latestQuery), async (c) =>
  c.json(await latestEvents(c.env.DB, c.req.valid("query"))),
);

describe({
  method: "get",
  path: "/api/events/latest",
  tag: "Events",
  summary:
    "The live event debugger: the latest events, newest first, filtered by site and type; poll with `after` = the last cursor",
  query: latestQuery,
  responses: { 200: latestSchema },
});
