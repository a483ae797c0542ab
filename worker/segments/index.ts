/**
 * Segments: audiences defined by a JSON rule, kept up to date in real time by the pipeline hook
 * (pipeline.ts), re-checked by the cron when time windows lapse (scheduled.ts), and back-filled
 * in SQL when a rule is saved. Reads need the viewer role, writes the marketer role.
 */
import { Hono } from "hono";
import { z } from "zod";
import { requireRole } from "../auth";
import type { AppEnv } from "../env";
import { toCsv } from "../lib/csv";
import { ApiError } from "../lib/errors";
import { describe } from "../lib/openapi";
import { jsonBody, params, query } from "../lib/validate";
import { condition, ruleInput } from "./rule";
import { deleteSegment, evaluateSegment, previewRule, saveSegment } from "./service";

export { afterPipelineBatch, type ProfileDelta, planSegmentWrites } from "./pipeline";
export { runScheduled } from "./scheduled";

const segmentKey = z
  .string()
  .max(64)
  .regex(/^[a-z0-9][a-z0-9_-]{0,63}$/, "Lowercase letters, digits, _ and -, starting with a letter or digit");
const keyParam = z.object({ key: segmentKey });

const definition = {
  name: z.string().trim().min(1).max(200),
  description: z.string().max(2000).nullable().optional(),
  rule: ruleInput,
  public: z.boolean().optional(),
};
export const segmentCreate = z.object({ key: segmentKey, ...definition });
export const segmentUpdate = z.object(definition);
export const previewBody = z.object({ rule: ruleInput });
// The documented shapes (the validators above wrap the rule in limit checks zod cannot express).
const documentedDefinition = { ...definition, rule: condition };

export const segmentSchema = z.object({
  key: z.string(),
  name: z.string(),
  description: z.string().nullable(),
  rule: condition,
  public: z.boolean(),
  version: z.number(),
  dependencies: z.record(z.string(), z.array(z.string())),
  memberCount: z.number(),
  createdAt: z.string(),
  updatedAt: z.string(),
});
const syncSchema = z.object({ entered: z.number(), exited: z.number() });
const previewSchema = z.object({
  count: z.number(),
  sample: z.array(z.object({ id: z.string(), email: z.string().nullable(), name: z.string().nullable() })),
});
const memberSchema = z.object({
  profileId: z.string(),
  email: z.string().nullable(),
  name: z.string().nullable(),
  enteredAt: z.string(),
});
const changeSchema = z.object({
  id: z.string(),
  profileId: z.string(),
  change: z.enum(["entered", "exited"]),
  at: z.string(),
});

const pageQuery = z.object({
  cursor: z.string().max(120).optional(),
  limit: z.coerce.number().int().min(1).max(500).default(100),
});
const historyCursor = /^(\d{1,15})\.([A-Za-z0-9_]{1,64})$/;

interface SegmentRow {
  key: string;
  name: string;
  description: string | null;
  rule: string;
  public: number;
  version: number;
  dependencies: string;
  created_at: number;
  updated_at: number;
}

const iso = (ms: number) => new Date(ms).toISOString();

function segmentJson(row: SegmentRow, memberCount: number): z.infer<typeof segmentSchema> {
  return {
    key: row.key,
    name: row.name,
    description: row.description,
    rule: JSON.parse(row.rule),
    public: row.public === 1,
    version: row.version,
    dependencies: JSON.parse(row.dependencies),
    memberCount,
    createdAt: iso(row.created_at),
    updatedAt: iso(row.updated_at),
  };
}

async function readSegment(db: D1Database, key: string) {
  const [row, count] = await db.batch<Record<string, unknown>>([
    db.prepare("SELECT * FROM segments WHERE key = ?").bind(key),
    db.prepare("SELECT COUNT(*) AS n FROM memberships WHERE segment_key = ?").bind(key),
  ]);
  const segment = row.results[0] as unknown as SegmentRow | undefined;
  if (!segment) throw new ApiError("not_found", "Segment not found");
  return segmentJson(segment, count.results[0].n as number);
}

const EXPORT_PAGE = 1000;

/** Members as CSV, streamed page by page so a large segment never sits in memory at once. */
function exportCsv(db: D1Database, key: string): ReadableStream<Uint8Array> {
  const encoder = new TextEncoder();
  let after = "";
  let started = false;
  return new ReadableStream({
    async pull(controller) {
      if (!started) {
        started = true;
        controller.enqueue(encoder.encode(toCsv([["profile_id", "email", "name", "entered_at"]])));
      }
      const page = await db
        .prepare(
          "SELECT m.profile_id, m.entered_at, p.email, p.name FROM memberships m LEFT JOIN profiles p ON p.id = m.profile_id WHERE m.segment_key = ? AND m.profile_id > ? ORDER BY m.profile_id LIMIT ?",
        )
        .bind(key, after, EXPORT_PAGE)
        .all<{ profile_id: string; entered_at: number; email: string | null; name: string | null }>();
      if (page.results.length) {
        after = page.results[page.results.length - 1].profile_id;
        controller.enqueue(
          encoder.encode(
            toCsv(page.results.map((r) => [r.profile_id, r.email ?? "", r.name ?? "", iso(r.entered_at)])),
          ),
        );
      }
      if (page.results.length < EXPORT_PAGE) controller.close();
    },
  });
}

export const segmentsApi = new Hono<AppEnv>()
  .get("/", async (c) => {
    const [rows, counts] = await c.env.DB.batch<Record<string, unknown>>([
      c.env.DB.prepare("SELECT * FROM segments ORDER BY key"),
      c.env.DB.prepare("SELECT segment_key, COUNT(*) AS n FROM memberships GROUP BY segment_key"),
    ]);
    const bySegment = new Map(counts.results.map((r) => [r.segment_key as string, r.n as number]));
    return c.json({
      items: (rows.results as unknown as SegmentRow[]).map((r) => segmentJson(r, bySegment.get(r.key) ?? 0)),
    });
  })
  .post("/", requireRole("marketer"), jsonBody(segmentCreate), async (c) => {
    const input = c.req.valid("json");
    const sync = await saveSegment(c.env.DB, input, Date.now(), "create");
    return c.json({ ...(await readSegment(c.env.DB, input.key)), sync }, 201);
  })
  .post("/preview", jsonBody(previewBody), async (c) => {
    return c.json(await previewRule(c.env.DB, c.req.valid("json").rule, Date.now()));
  })
  .get("/:key", params(keyParam), async (c) => c.json(await readSegment(c.env.DB, c.req.valid("param").key)))
  .put("/:key", requireRole("marketer"), params(keyParam), jsonBody(segmentUpdate), async (c) => {
    const { key } = c.req.valid("param");
    const sync = await saveSegment(c.env.DB, { key, ...c.req.valid("json") }, Date.now(), "update");
    return c.json({ ...(await readSegment(c.env.DB, key)), sync });
  })
  .delete("/:key", requireRole("marketer"), params(keyParam), async (c) => {
    await deleteSegment(c.env.DB, c.req.valid("param").key);
    return c.body(null, 204);
  })
  .post("/:key/evaluate", requireRole("marketer"), params(keyParam), async (c) => {
    return c.json(await evaluateSegment(c.env.DB, c.req.valid("param").key, Date.now()));
  })
  .get("/:key/members", params(keyParam), query(pageQuery), async (c) => {
    const { key } = c.req.valid("param");
    const { cursor, limit } = c.req.valid("query");
    await readSegment(c.env.DB, key);
    const rows = await c.env.DB.prepare(
      "SELECT m.profile_id, m.entered_at, p.email, p.name FROM memberships m LEFT JOIN profiles p ON p.id = m.profile_id WHERE m.segment_key = ? AND m.profile_id > ? ORDER BY m.profile_id LIMIT ?",
    )
      .bind(key, cursor ?? "", limit + 1)
      .all<{ profile_id: string; entered_at: number; email: string | null; name: string | null }>();
    const page = rows.results.slice(0, limit);
    return c.json({
      items: page.map((r) => ({ profileId: r.profile_id, email: r.email, name: r.name, enteredAt: iso(r.entered_at) })),
      nextCursor: rows.results.length > limit ? page[page.length - 1].profile_id : null,
    });
  })
  .get("/:key/history", params(keyParam), query(pageQuery), async (c) => {
    const { key } = c.req.valid("param");
    const { cursor, limit } = c.req.valid("query");
    await readSegment(c.env.DB, key);
    const m = cursor ? historyCursor.exec(cursor) : null;
    if (cursor && !m) throw new ApiError("validation_failed", "Invalid cursor");
    // Newest first, keyed on (at, id) so that equal timestamps still page deterministically.
    const rows = await c.env.DB.prepare(
      `SELECT id, profile_id, change, at FROM membership_changes WHERE segment_key = ?1 ${m ? "AND (at < ?2 OR (at = ?2 AND id < ?3))" : ""} ORDER BY at DESC, id DESC LIMIT ?4`,
    )
      .bind(key, m ? Number(m[1]) : 0, m ? m[2] : "", limit + 1)
      .all<{ id: string; profile_id: string; change: "entered" | "exited"; at: number }>();
    const page = rows.results.slice(0, limit);
    const last = page[page.length - 1];
    return c.json({
      items: page.map((r) => ({ id: r.id, profileId: r.profile_id, change: r.change, at: iso(r.at) })),
      nextCursor: rows.results.length > limit ? `${last.at}.${last.id}` : null,
    });
  })
  // Bulk export of people is a marketer's action (as for contacts): viewers browse, they don't extract.
  .get("/:key/export.csv", requireRole("marketer"), params(keyParam), async (c) => {
    const { key } = c.req.valid("param");
    await readSegment(c.env.DB, key);
    return c.body(exportCsv(c.env.DB, key), 200, {
      "Content-Type": "text/csv; charset=utf-8",
      "Content-Disposition": `attachment; filename="${key}.csv"`,
      "Cache-Control": "no-store",
    });
  });

const tag = "Segments";
const page = (item: z.ZodType) => z.object({ items: z.array(item), nextCursor: z.string().nullable() });
describe({
  method: "get",
  path: "/api/segments",
  tag,
  summary: "List segments with member counts",
  responses: { 200: z.object({ items: z.array(segmentSchema) }) },
});
describe({
  method: "post",
  path: "/api/segments",
  tag,
  summary: "Create a segment (marketer); existing profiles are evaluated at once",
  body: z.object({ key: segmentKey, ...documentedDefinition }),
  responses: { 201: segmentSchema.extend({ sync: syncSchema }) },
});
describe({
  method: "post",
  path: "/api/segments/preview",
  tag,
  summary: "Count the profiles a rule selects now, with a sample",
  body: z.object({ rule: condition }),
  responses: { 200: previewSchema },
});
describe({
  method: "get",
  path: "/api/segments/{key}",
  tag,
  summary: "Get a segment",
  responses: { 200: segmentSchema },
});
describe({
  method: "put",
  path: "/api/segments/{key}",
  tag,
  summary: "Replace a segment's definition (marketer); a changed rule re-evaluates every profile",
  body: z.object(documentedDefinition),
  responses: { 200: segmentSchema.extend({ sync: syncSchema }) },
});
describe({
  method: "delete",
  path: "/api/segments/{key}",
  tag,
  summary: "Delete a segment (marketer); 409 while referenced",
  responses: { 204: "Deleted" },
});
describe({
  method: "post",
  path: "/api/segments/{key}/evaluate",
  tag,
  summary: "Re-evaluate a segment for every profile now (marketer)",
  responses: { 200: syncSchema },
});
describe({
  method: "get",
  path: "/api/segments/{key}/members",
  tag,
  summary: "Members, by profile id",
  query: pageQuery,
  responses: { 200: page(memberSchema) },
});
describe({
  method: "get",
  path: "/api/segments/{key}/history",
  tag,
  summary: "Enter/exit history, newest first",
  query: pageQuery,
  responses: { 200: page(changeSchema) },
});
describe({
  method: "get",
  path: "/api/segments/{key}/export.csv",
  tag,
  summary: "Members as CSV (spreadsheet-formula safe; marketer)",
  responses: { 200: "text/csv" },
});
