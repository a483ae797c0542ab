/**
 * `GET /api/events/latest`: the live event debugger's feed — the latest stored events of the
 * workspace, newest first, optionally for one site and one type, polled with a cursor.
 *
 * The cursor is the `events` rowid of the newest event returned. SQLite hands out rowids in
 * insertion order, so "newer than the cursor" is a range on the table's own key: no index taxes
 * the pipeline's inserts for the debugger. A poll only looks at the latest `SCAN_WINDOW` rows, so
 * a filter that matches nothing never walks the whole table.
 */
import { Hono } from "hono";
import { z } from "zod";
import type { AppEnv } from "../env";
import { describe } from "../lib/openapi";
import { query } from "../lib/validate";
import { EVENT_COLUMNS, type EventRow, eventItem, eventItemSchema } from "../profiles/read";

/** Newest rows a poll looks at (filters apply within them). */
export const SCAN_WINDOW = 10_000;

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
  /** More events arrived after the cursor than one poll returns (`limit`, or the scan window); the older were left out. */
  truncated: z.boolean(),
});
export type LatestEvents = z.infer<typeof latestSchema>;

/**
 * The latest events (newest first), only those after `q.after` when given. `profileId` is the
 * live profile (an event stored on a profile that was merged away shows the survivor).
 */
export async function latestEvents(db: D1Database, q: LatestQuery): Promise<LatestEvents> {
  const filters: string[] = [];
  const args: unknown[] = [q.after === undefined ? -1 : Number(q.after), SCAN_WINDOW, q.limit + 1];
  if (q.site !== undefined) {
    args.push(q.site);
    filters.push(`AND site_id = ?${args.length}`);
  }
  if (q.type !== undefined) {
    args.push(q.type);
    filters.push(`AND type = ?${args.length}`);
  }
  // A cursor above the newest rowid means the newest events were erased and their rowids will
  // be handed out again: restart from the top rather than wait for the table to pass the cursor.
  const start = `(SELECT CASE WHEN ?1 > t THEN t ELSE max(?1, t - ?2) END FROM (SELECT coalesce(max(rowid), 0) AS t FROM events))`;
  // One batch: both reads see the same snapshot.
  const [top, rows] = await db.batch<Record<string, unknown>>([
    db.prepare("SELECT coalesce(max(rowid), 0) AS t FROM events"),
    db
      .prepare(
        `SELECT ${EVENT_COLUMNS},
           (SELECT p.merged_into FROM profiles p WHERE p.id = events.profile_id) AS live_profile_id
         FROM events WHERE rowid > ${start} ${filters.join(" ")} ORDER BY rowid DESC LIMIT ?3`,
      )
      .bind(...args),
  ]);
  const newest = Number(top.results[0]?.t ?? 0);
  const found = rows.results as unknown as (EventRow & { live_profile_id: string | null })[];
  const page = found.slice(0, q.limit);
  const after = q.after === undefined ? undefined : Number(q.after);
  return {
    items: page.map((r) => ({ ...eventItem(r), profileId: r.live_profile_id ?? r.profile_id })),
    // Every row up to the newest was either returned, left out by the limit or the window, or
    // does not match the filters: the next poll starts after it, even when nothing matched.
    cursor: String(newest),
    truncated: found.length > q.limit || (after !== undefined && after < newest - SCAN_WINDOW),
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
