/** `GET /api/dead-letters`: queue messages that could not be processed (admin). */
import { Hono } from "hono";
import { z } from "zod";
import { requireRole } from "../auth";
import type { AppEnv } from "../env";
import { ApiError } from "../lib/errors";
import { describe } from "../lib/openapi";
import { query } from "../lib/validate";
import { decodeCursor, encodeCursor } from "../profiles/read";

const listQuery = z.object({
  limit: z.coerce.number().int().min(1).max(100).default(25),
  cursor: z.string().max(300).optional(),
});
const cursorSchema = z.tuple([z.number(), z.string().max(200)]);

export const deadLetterSchema = z.object({
  id: z.string(),
  queue: z.string(),
  body: z.unknown(),
  createdAt: z.string(),
});
const listSchema = z.object({ items: z.array(deadLetterSchema), nextCursor: z.string().nullable() });

const parse = (text: string): unknown => {
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
};

export const deadLettersApi = new Hono<AppEnv>().get("/", requireRole("admin"), query(listQuery), async (c) => {
  const { limit, cursor: raw } = c.req.valid("query");
  const cursor = decodeCursor(raw, cursorSchema);
  if (cursor === null) {
    throw new ApiError("validation_failed", "Invalid query parameters", {
      details: [{ path: "cursor", message: "Not a cursor from this list" }],
    });
  }
  // dead_letters_created_idx, newest first.
  const { results } = await (cursor
    ? c.env.DB.prepare(
        `SELECT * FROM dead_letters WHERE created_at < ?1 OR (created_at = ?1 AND id < ?2)
         ORDER BY created_at DESC, id DESC LIMIT ?3`,
      ).bind(cursor[0], cursor[1], limit + 1)
    : c.env.DB.prepare("SELECT * FROM dead_letters ORDER BY created_at DESC, id DESC LIMIT ?1").bind(limit + 1)
  ).all<{ id: string; queue: string; body: string; created_at: number }>();
  const page = results.slice(0, limit);
  const last = page.at(-1);
  return c.json({
    items: page.map((r) => ({
      id: r.id,
      queue: r.queue,
      body: parse(r.body),
      createdAt: new Date(r.created_at).toISOString(),
    })),
    nextCursor: results.length > limit && last ? encodeCursor([last.created_at, last.id]) : null,
  });
});

describe({
  method: "get",
  path: "/api/dead-letters",
  tag: "Pipeline",
  summary: "Queue messages that exhausted their retries or could not be read (admin), newest first",
  query: listQuery,
  responses: { 200: listSchema },
});
