/**
 * The rejected-events store: every message the ingest API refused, with the reason and a bounded
 * copy of what was sent, so that nothing disappears silently. `GET /api/rejected` lists it.
 */
import { and, desc, eq, lt, or } from "drizzle-orm";
import { Hono } from "hono";
import { z } from "zod";
import { requireRole } from "../auth";
import type { Db } from "../db";
import { rejectedEvents } from "../db/schema";
import type { AppEnv } from "../env";
import { newId } from "../lib/ids";
import { describe } from "../lib/openapi";
import { query } from "../lib/validate";
import { boundedJson } from "./sanitize";

/** Stored payloads are cut to this many characters (enough to see what was wrong). */
export const MAX_REJECTED_PAYLOAD = 4_096;
const MAX_REASON = 500;

export interface Rejection {
  index: number;
  reason: string;
  payload: unknown;
}

// 5 bound parameters per row: 20 rows stay within D1's 100, and 20 payloads of 4 KB within its
// 100 KB statement size.
const ROWS_PER_STATEMENT = 20;

/**
 * Writes the rejections of one request in one `db.batch()` (atomic: all or none). Throws when D1
 * fails; the route then answers 503 so the client retries instead of losing the record.
 */
export async function storeRejected(
  db: Db,
  siteId: string | null,
  rejections: Rejection[],
  receivedAt: number,
): Promise<void> {
  if (rejections.length === 0) return;
  const rows = rejections.map((r) => ({
    id: newId("rej"),
    siteId,
    reason: r.reason.slice(0, MAX_REASON),
    payload: boundedJson(r.payload, MAX_REJECTED_PAYLOAD),
    receivedAt,
  }));
  const statements = [];
  for (let i = 0; i < rows.length; i += ROWS_PER_STATEMENT) {
    statements.push(db.insert(rejectedEvents).values(rows.slice(i, i + ROWS_PER_STATEMENT)));
  }
  const [first, ...rest] = statements;
  await db.batch([first, ...rest]);
}

export const rejectedItem = z.object({
  id: z.string(),
  siteId: z.string().nullable(),
  reason: z.string(),
  /** JSON as sent, possibly cut (then it ends with `…[truncated]`). */
  payload: z.string(),
  receivedAt: z.string(),
});

export const rejectedList = z.object({
  items: z.array(rejectedItem),
  /** Pass as `cursor` for the next (older) page; null on the last page. */
  nextCursor: z.string().nullable(),
});

// Keyset cursor "<receivedAt>.<id>": stable under concurrent inserts, unlike an offset.
const CURSOR = /^(\d{1,15})\.(rej_[A-Za-z0-9]{1,40})$/;

export const rejectedQuery = z.object({
  limit: z.coerce.number().int().min(1).max(200).default(50),
  cursor: z.string().max(60).regex(CURSOR, "Invalid cursor").optional(),
});

/** One page of rejected messages, newest first. */
export async function listRejected(
  db: Db,
  opts: z.output<typeof rejectedQuery>,
): Promise<z.infer<typeof rejectedList>> {
  const m = opts.cursor ? CURSOR.exec(opts.cursor) : null;
  const after = m
    ? or(
        lt(rejectedEvents.receivedAt, Number(m[1])),
        and(eq(rejectedEvents.receivedAt, Number(m[1])), lt(rejectedEvents.id, m[2])),
      )
    : undefined;
  const rows = await db
    .select()
    .from(rejectedEvents)
    .where(after)
    .orderBy(desc(rejectedEvents.receivedAt), desc(rejectedEvents.id))
    .limit(opts.limit + 1)
    .all();
  const page = rows.slice(0, opts.limit);
  const last = page.at(-1);
  return {
    items: page.map((r) => ({ ...r, receivedAt: new Date(r.receivedAt).toISOString() })),
    nextCursor: rows.length > opts.limit && last ? `${last.receivedAt}.${last.id}` : null,
  };
}

export const rejectedApi = new Hono<AppEnv>().get("/", requireRole("viewer"), query(rejectedQuery), async (c) =>
  c.json(await listRejected(c.var.db, c.req.valid("query"))),
);

describe({
  method: "get",
  path: "/api/rejected",
  tag: "Ingest",
  summary: "Messages the ingest API refused, newest first, with the reason",
  query: rejectedQuery,
  responses: { 200: rejectedList },
});
