/**
 * Destinations: webhook endpoints that receive segment entries/exits and chosen events, signed
 * per Standard Webhooks. Admin only (a destination decides where customer data goes). The signing
 * secret is shown once, in the creation response.
 */
import { Hono } from "hono";
import { z } from "zod";
import { requireRole } from "../auth";
import type { AppEnv } from "../env";
import { ApiError } from "../lib/errors";
import { newId } from "../lib/ids";
import { describe } from "../lib/openapi";
import { idParam, jsonBody, params, query } from "../lib/validate";
import { newWebhookSecret } from "./signing";
import { checkDestinationUrl } from "./ssrf";

export { handleDeadDeliveries, handleDeliveries } from "./consumer";
export { relayDeliveries } from "./outbox";

const segmentKey = z
  .string()
  .max(64)
  .regex(/^[a-z0-9][a-z0-9_-]{0,63}$/);
const eventName = z.string().trim().min(1).max(200);

const fields = {
  name: z.string().trim().min(1).max(200),
  url: z.string().trim().max(2048),
  segments: z.array(segmentKey).max(100),
  events: z.array(eventName).max(100),
  enabled: z.boolean(),
};
export const destinationCreate = z.object({
  name: fields.name,
  url: fields.url,
  segments: fields.segments.default([]),
  events: fields.events.default([]),
  enabled: fields.enabled.default(true),
});
export const destinationUpdate = z.object(fields).partial();

export const destinationSchema = z.object({
  id: z.string(),
  name: z.string(),
  url: z.string(),
  segments: z.array(z.string()),
  events: z.array(z.string()),
  enabled: z.boolean(),
  createdAt: z.string(),
  updatedAt: z.string(),
});
const createdSchema = destinationSchema.extend({ secret: z.string() });
export const deliverySchema = z.object({
  id: z.string(),
  type: z.string(),
  status: z.enum(["pending", "delivered", "retrying", "failed"]),
  attempts: z.number(),
  lastStatus: z.number().nullable(),
  lastError: z.string().nullable(),
  nextAttemptAt: z.string().nullable(),
  payload: z.unknown(),
  createdAt: z.string(),
  updatedAt: z.string(),
});
const deliveriesQuery = z.object({
  status: z.enum(["pending", "delivered", "retrying", "failed"]).optional(),
  cursor: z
    .string()
    .max(120)
    .regex(/^\d{1,15}\.[A-Za-z0-9_]{1,64}$/)
    .optional(),
  limit: z.coerce.number().int().min(1).max(200).default(50),
});

interface DestinationRow {
  id: string;
  name: string;
  url: string;
  secret: string;
  segments: string;
  events: string;
  enabled: number;
  created_at: number;
  updated_at: number;
}

const iso = (ms: number) => new Date(ms).toISOString();

function destinationJson(r: DestinationRow): z.infer<typeof destinationSchema> {
  return {
    id: r.id,
    name: r.name,
    url: r.url,
    segments: JSON.parse(r.segments),
    events: JSON.parse(r.events),
    enabled: r.enabled === 1,
    createdAt: iso(r.created_at),
    updatedAt: iso(r.updated_at),
  };
}

function checkUrl(url: string, allowPrivate: string | undefined): void {
  const verdict = checkDestinationUrl(url, allowPrivate === "true");
  if (!verdict.ok) {
    throw new ApiError("validation_failed", `Destination URL refused: ${verdict.reason}`, {
      details: [{ path: "url", message: verdict.reason }],
    });
  }
}

async function checkSegments(db: D1Database, keys: string[]): Promise<void> {
  if (keys.length === 0) return;
  const rows = await db
    .prepare(`SELECT key FROM segments WHERE key IN (${keys.map(() => "?").join(", ")})`)
    .bind(...keys)
    .all<{ key: string }>();
  const known = new Set(rows.results.map((r) => r.key));
  const unknown = keys.filter((k) => !known.has(k));
  if (unknown.length) {
    throw new ApiError("validation_failed", `Unknown segment: ${unknown.join(", ")}`, { details: { unknown } });
  }
}

async function getDestination(db: D1Database, id: string): Promise<DestinationRow> {
  const row = await db.prepare("SELECT * FROM destinations WHERE id = ?").bind(id).first<DestinationRow>();
  if (!row) throw new ApiError("not_found", "Destination not found");
  return row;
}

export const destinationsApi = new Hono<AppEnv>()
  .use(requireRole("admin"))
  .get("/", async (c) => {
    const rows = await c.env.DB.prepare("SELECT * FROM destinations ORDER BY created_at").all<DestinationRow>();
    return c.json({ items: rows.results.map(destinationJson) });
  })
  .post("/", jsonBody(destinationCreate), async (c) => {
    const input = c.req.valid("json");
    checkUrl(input.url, c.env.ALLOW_PRIVATE_DESTINATIONS);
    const segments = [...new Set(input.segments)];
    await checkSegments(c.env.DB, segments);
    const now = Date.now();
    const row: DestinationRow = {
      id: newId("dst"),
      name: input.name,
      url: input.url,
      secret: newWebhookSecret(),
      segments: JSON.stringify(segments),
      events: JSON.stringify([...new Set(input.events)]),
      enabled: input.enabled ? 1 : 0,
      created_at: now,
      updated_at: now,
    };
    await c.env.DB.prepare(
      "INSERT INTO destinations (id, name, url, secret, segments, events, enabled, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
    )
      .bind(
        row.id,
        row.name,
        row.url,
        row.secret,
        row.segments,
        row.events,
        row.enabled,
        row.created_at,
        row.updated_at,
      )
      .run();
    // The only time the secret is shown.
    return c.json({ ...destinationJson(row), secret: row.secret }, 201);
  })
  .get("/:id", params(idParam), async (c) =>
    c.json(destinationJson(await getDestination(c.env.DB, c.req.valid("param").id))),
  )
  .patch("/:id", params(idParam), jsonBody(destinationUpdate), async (c) => {
    const { id } = c.req.valid("param");
    const row = await getDestination(c.env.DB, id);
    const patch = c.req.valid("json");
    if (patch.url !== undefined) checkUrl(patch.url, c.env.ALLOW_PRIVATE_DESTINATIONS);
    const segments = patch.segments ? [...new Set(patch.segments)] : undefined;
    if (segments) await checkSegments(c.env.DB, segments);
    const next: DestinationRow = {
      ...row,
      name: patch.name ?? row.name,
      url: patch.url ?? row.url,
      segments: segments ? JSON.stringify(segments) : row.segments,
      events: patch.events ? JSON.stringify([...new Set(patch.events)]) : row.events,
      enabled: patch.enabled === undefined ? row.enabled : patch.enabled ? 1 : 0,
      updated_at: Date.now(),
    };
    await c.env.DB.prepare(
      "UPDATE destinations SET name = ?, url = ?, segments = ?, events = ?, enabled = ?, updated_at = ? WHERE id = ?",
    )
      .bind(next.name, next.url, next.segments, next.events, next.enabled, next.updated_at, id)
      .run();
    return c.json(destinationJson(next));
  })
  .delete("/:id", params(idParam), async (c) => {
    const { id } = c.req.valid("param");
    await getDestination(c.env.DB, id);
    // Pending deliveries would fail anyway; the log goes with the destination.
    await c.env.DB.batch([
      c.env.DB.prepare("DELETE FROM deliveries WHERE destination_id = ?").bind(id),
      c.env.DB.prepare("DELETE FROM destinations WHERE id = ?").bind(id),
    ]);
    return c.body(null, 204);
  })
  .get("/:id/deliveries", params(idParam), query(deliveriesQuery), async (c) => {
    const { id } = c.req.valid("param");
    const { status, cursor, limit } = c.req.valid("query");
    await getDestination(c.env.DB, id);
    const [at, after] = cursor ? cursor.split(".") : [null, null];
    // Newest first on (created_at, id): deliveries_destination_idx.
    const rows = await c.env.DB.prepare(
      `SELECT * FROM deliveries WHERE destination_id = ?1 ${status ? "AND status = ?2" : ""} ${cursor ? "AND (created_at < ?3 OR (created_at = ?3 AND id < ?4))" : ""} ORDER BY created_at DESC, id DESC LIMIT ?5`,
    )
      .bind(id, status ?? "", at === null ? 0 : Number(at), after ?? "", limit + 1)
      .all<{
        id: string;
        type: string;
        status: "pending" | "delivered" | "retrying" | "failed";
        attempts: number;
        last_status: number | null;
        last_error: string | null;
        next_attempt_at: number | null;
        payload: string;
        created_at: number;
        updated_at: number;
      }>();
    const page = rows.results.slice(0, limit);
    const last = page[page.length - 1];
    return c.json({
      items: page.map((r) => ({
        id: r.id,
        type: r.type,
        status: r.status,
        attempts: r.attempts,
        lastStatus: r.last_status,
        lastError: r.last_error,
        nextAttemptAt: r.next_attempt_at === null ? null : iso(r.next_attempt_at),
        payload: JSON.parse(r.payload),
        createdAt: iso(r.created_at),
        updatedAt: iso(r.updated_at),
      })),
      nextCursor: rows.results.length > limit ? `${last.created_at}.${last.id}` : null,
    });
  });

const tag = "Destinations";
describe({
  method: "get",
  path: "/api/destinations",
  tag,
  summary: "List webhook destinations (admin)",
  responses: { 200: z.object({ items: z.array(destinationSchema) }) },
});
describe({
  method: "post",
  path: "/api/destinations",
  tag,
  summary: "Create a webhook destination (admin); the signing secret is shown only here",
  body: destinationCreate,
  responses: { 201: createdSchema },
});
describe({
  method: "get",
  path: "/api/destinations/{id}",
  tag,
  summary: "Get a destination (admin)",
  responses: { 200: destinationSchema },
});
describe({
  method: "patch",
  path: "/api/destinations/{id}",
  tag,
  summary: "Update a destination (admin)",
  body: destinationUpdate,
  responses: { 200: destinationSchema },
});
describe({
  method: "delete",
  path: "/api/destinations/{id}",
  tag,
  summary: "Delete a destination and its delivery log (admin)",
  responses: { 204: "Deleted" },
});
describe({
  method: "get",
  path: "/api/destinations/{id}/deliveries",
  tag,
  summary: "Delivery log, newest first (admin)",
  query: deliveriesQuery,
  responses: { 200: z.object({ items: z.array(deliverySchema), nextCursor: z.string().nullable() }) },
});
