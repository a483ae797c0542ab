/**
 * `/api/contacts`: the CRM's view of profiles — list (search, filters, keyset pages), CSV export,
 * CRM fields (lifecycle stage, owner, tags), and contacts created or edited by hand.
 */
import { eq } from "drizzle-orm";
import { Hono } from "hono";
import { z } from "zod";
import { requireRole } from "../auth";
import { users } from "../db/schema";
import type { AppEnv } from "../env";
import { mergeProfiles } from "../identity/merge";
import { normalizeIdentifier } from "../identity/policy";
import { toCsv } from "../lib/csv";
import { ApiError } from "../lib/errors";
import { describe } from "../lib/openapi";
import { idParam, jsonBody, params, query } from "../lib/validate";
import { afterPipelineBatch } from "../segments/pipeline";
import { emailField } from "../users/model";
import { type Contact, type ContactRow, contactJson, contactSchema, readContact, resolveContactId } from "./contact";
import { contactSite, identifyEvent, newMessageId, sendEvents } from "./events";
import { type ContactListFilters, contactListSql, contactSorts, type SortValue } from "./list-sql";

export const builtinStages = ["subscriber", "lead", "mql", "sql", "opportunity", "customer", "evangelist", "other"];

/** A built-in stage or a custom one of the same alphabet. */
export const stageSchema = z
  .string()
  .trim()
  .toLowerCase()
  .regex(/^[a-z0-9_-]{1,32}$/, "1–32 characters among a-z, 0-9, _ and -");
export const tagSchema = z.string().trim().min(1).max(50);

/** Query parameters sent empty (`?q=`) mean "no filter". */
const optional = <T extends z.ZodType>(schema: T) => z.preprocess((v) => (v === "" ? undefined : v), schema.optional());

export const contactListQuery = z.object({
  q: optional(z.string().trim().min(1).max(200)),
  segment: optional(z.string().max(100)),
  stage: optional(stageSchema),
  owner: optional(z.string().max(100)),
  tag: optional(tagSchema),
  sort: optional(z.enum(contactSorts)),
  order: optional(z.enum(["asc", "desc"])),
  limit: optional(z.coerce.number().int().min(1).max(200)),
  cursor: optional(z.string().max(2000)),
});
export type ContactListQuery = z.output<typeof contactListQuery>;

export const contactPage = z.object({ items: z.array(contactSchema), nextCursor: z.string().nullable() });

const cursorSchema = z.object({
  s: z.enum(contactSorts),
  o: z.enum(["asc", "desc"]),
  k: z
    .array(z.union([z.string().max(1000), z.number()]))
    .min(2)
    .max(3),
});

function encodeCursor(value: z.infer<typeof cursorSchema>): string {
  const bytes = new TextEncoder().encode(JSON.stringify(value));
  return btoa(String.fromCharCode(...bytes))
    .replace(/\+/g, "-")
    .replace(/\//g, "_")
    .replace(/=+$/, "");
}

function decodeCursor(cursor: string): z.infer<typeof cursorSchema> {
  try {
    const binary = atob(cursor.replace(/-/g, "+").replace(/_/g, "/"));
    const parsed = cursorSchema.safeParse(
      JSON.parse(new TextDecoder().decode(Uint8Array.from(binary, (c) => c.charCodeAt(0)))),
    );
    if (parsed.success) return parsed.data;
  } catch {}
  throw new ApiError("validation_failed", "Invalid cursor", {
    details: [{ path: "cursor", message: "Invalid cursor" }],
  });
}

/** Turns query parameters into list filters (the default order: newest first, names A→Z). */
export function listFilters(q: ContactListQuery): ContactListFilters {
  const sort = q.sort ?? "last_seen";
  const order = q.order ?? (sort === "name" ? "asc" : "desc");
  let after: SortValue[] | undefined;
  if (q.cursor) {
    const cursor = decodeCursor(q.cursor);
    if (cursor.s !== sort || cursor.o !== order) {
      throw new ApiError("validation_failed", "The cursor belongs to another sort order", {
        details: [{ path: "cursor", message: "Sort or order changed; start from the first page" }],
      });
    }
    after = cursor.k;
  }
  return { ...q, sort, order, limit: q.limit ?? 50, after };
}

/** One page of contacts and the cursor of the next (null on the last page). */
export async function listContacts(
  d1: D1Database,
  filters: ContactListFilters,
): Promise<{ items: Contact[]; nextCursor: string | null }> {
  const { sql, params } = contactListSql({ ...filters, limit: filters.limit + 1 });
  const { results } = await d1
    .prepare(sql)
    .bind(...params)
    .all<ContactRow & Record<`k${number}`, SortValue>>();
  const page = results.slice(0, filters.limit);
  const last = page[page.length - 1];
  const nextCursor =
    results.length > filters.limit && last
      ? encodeCursor({
          s: filters.sort,
          o: filters.order,
          k: Object.keys(last)
            .filter((k) => /^k\d$/.test(k))
            .sort()
            .map((k) => last[k as `k${number}`]),
        })
      : null;
  return { items: page.map(contactJson), nextCursor };
}

/** Most rows one export holds; a larger list must be narrowed with filters. */
export const EXPORT_MAX_ROWS = 50_000;
const EXPORT_PAGE = 500;
const exportHeader = [
  "id",
  "email",
  "name",
  "lifecycle_stage",
  "owner",
  "tags",
  "first_seen_at",
  "last_seen_at",
  "created_at",
];

/** Streams a filtered list as CSV, page by page (bounded memory), formula-safe via `toCsv`. */
export function exportContacts(d1: D1Database, filters: ContactListFilters, owners: Map<string, string>) {
  let sent = 0;
  let after = filters.after;
  let done = false;
  const encoder = new TextEncoder();
  return new ReadableStream<Uint8Array>({
    start(controller) {
      // A BOM so that spreadsheets read the file as UTF-8.
      controller.enqueue(encoder.encode(`\uFEFF${toCsv([exportHeader])}`));
    },
    async pull(controller) {
      if (done) return controller.close();
      const limit = Math.min(EXPORT_PAGE, EXPORT_MAX_ROWS - sent);
      const { sql, params } = contactListSql({ ...filters, after, limit });
      const { results } = await d1
        .prepare(sql)
        .bind(...params)
        .all<ContactRow & Record<`k${number}`, SortValue>>();
      const rows = results
        .map(contactJson)
        .map((c) => [
          c.id,
          c.email ?? "",
          c.name ?? "",
          c.lifecycleStage ?? "",
          c.ownerId ? (owners.get(c.ownerId) ?? c.ownerId) : "",
          c.tags.join("; "),
          c.firstSeenAt ?? "",
          c.lastSeenAt ?? "",
          c.createdAt,
        ]);
      if (rows.length > 0) controller.enqueue(encoder.encode(toCsv(rows)));
      sent += rows.length;
      const last = results[results.length - 1];
      if (!last || results.length < limit || sent >= EXPORT_MAX_ROWS) done = true;
      else
        after = Object.keys(last)
          .filter((k) => /^k\d$/.test(k))
          .sort()
          .map((k) => last[k as `k${number}`]);
      if (done) controller.close();
    },
  });
}

export const contactUpdate = z
  .object({
    lifecycleStage: stageSchema.nullable(),
    ownerId: z.string().min(1).max(100).nullable(),
    tags: z.array(tagSchema).max(50),
  })
  .partial()
  .refine((v) => Object.keys(v).length > 0, "Nothing to update");

const reservedKeys = new Set(["__proto__", "constructor", "prototype"]);
/** Free-form traits: bounded in count and size; keys that could reach an object's prototype are refused. */
export const traitsSchema = z
  .record(
    z
      .string()
      .min(1)
      .max(100)
      .refine((k) => !reservedKeys.has(k), "Reserved name"),
    z.unknown(),
  )
  .refine((t) => Object.keys(t).length <= 100, "At most 100 traits")
  .refine((t) => JSON.stringify(t).length <= 16_384, "Traits are larger than 16 KB");

const phoneField = z
  .string()
  .trim()
  .max(50)
  .refine((v) => normalizeIdentifier("phone", v) !== null, "Not a phone number (7–15 digits, optional +)");

export const contactCreate = z.object({
  email: emailField,
  name: z.string().trim().min(1).max(200).optional(),
  phone: phoneField.optional(),
  traits: traitsSchema.optional(),
  siteId: z.string().min(1).max(100).optional(),
});

export const traitsUpdate = z.object({ traits: traitsSchema });

export const queuedSchema = z.object({ status: z.literal("queued"), messageId: z.string() });

export const mergeBody = z
  .object({ winnerId: z.string().min(1).max(100), loserId: z.string().min(1).max(100) })
  .refine((v) => v.winnerId !== v.loserId, "Pick two different contacts");
export const mergeResultSchema = z.object({ mergeId: z.string(), contact: contactSchema });

/** Updates the CRM fields of a live contact (`profile_tags` follows through its triggers). */
export async function updateContact(
  d1: D1Database,
  id: string,
  patch: z.output<typeof contactUpdate>,
  now: number,
): Promise<void> {
  const sets: string[] = ["updated_at = ?"];
  const values: (string | number | null)[] = [now];
  if (patch.lifecycleStage !== undefined) {
    sets.push("lifecycle_stage = ?");
    values.push(patch.lifecycleStage);
  }
  if (patch.ownerId !== undefined) {
    sets.push("owner_id = ?");
    values.push(patch.ownerId);
  }
  if (patch.tags !== undefined) {
    sets.push("tags = ?");
    values.push(JSON.stringify([...new Set(patch.tags)]));
  }
  // `updated_at` moves with every change: the pipeline's write guard then re-reads a profile it
  // was about to overwrite, so a CRM edit is never lost to a concurrent event.
  await d1
    .prepare(`UPDATE profiles SET ${sets.join(", ")} WHERE id = ? AND merged_into IS NULL`)
    .bind(...values, id)
    .run();
}

export const contactsApi = new Hono<AppEnv>()
  .get("/", query(contactListQuery), async (c) =>
    c.json(await listContacts(c.env.DB, listFilters(c.req.valid("query")))),
  )
  // Bulk personal data leaves the system here: marketers and admins only.
  .get("/export.csv", requireRole("marketer"), query(contactListQuery), async (c) => {
    const filters = listFilters(c.req.valid("query"));
    const owners = new Map(
      (await c.var.db.select({ id: users.id, email: users.email }).from(users).limit(1000).all()).map((u) => [
        u.id,
        u.email,
      ]),
    );
    const day = new Date().toISOString().slice(0, 10);
    return new Response(exportContacts(c.env.DB, filters, owners), {
      headers: {
        "Content-Type": "text/csv; charset=utf-8",
        "Content-Disposition": `attachment; filename="contacts-${day}.csv"`,
        "Cache-Control": "no-store",
        "X-Content-Type-Options": "nosniff",
      },
    });
  })
  .post("/", requireRole("marketer"), jsonBody(contactCreate), async (c) => {
    const input = c.req.valid("json");
    const now = Date.now();
    const siteId = await contactSite(c.var.db, input.siteId, now);
    const messageId = newMessageId();
    // Explicit fields win over same-named free-form traits.
    const traits: Record<string, unknown> = { ...input.traits, email: input.email };
    if (input.name !== undefined) traits.name = input.name;
    if (input.phone !== undefined) traits.phone = input.phone;
    const event = identifyEvent({
      messageId,
      traits,
      source: { type: "dashboard", userId: c.var.principal.userId ?? null },
      timestamp: now,
      receivedAt: now,
    });
    await sendEvents(c.env, siteId, [event]);
    return c.json({ status: "queued" as const, messageId }, 202);
  })
  // Registered before "/:id" routes; the merge itself is the identity module's (traits by event
  // time, identities, counters, notes and tasks, a logged snapshot that unmerge can undo).
  .post("/merge", requireRole("marketer"), jsonBody(mergeBody), async (c) => {
    const { winnerId, loserId } = c.req.valid("json");
    const principal = c.var.principal;
    const now = Date.now();
    const { mergeId } = await mergeProfiles(c.env.DB, winnerId, loserId, now, principal.userId ?? principal.kind);
    // Segment changes caused by the merge may have queued webhooks: relay them now, not at the next cron.
    c.executionCtx.waitUntil(
      afterPipelineBatch(c.env, now).catch((err: unknown) => console.error("crm merge: webhook relay failed", err)),
    );
    const contact = await readContact(c.env.DB, await resolveContactId(c.env.DB, winnerId));
    return c.json({ mergeId, contact } satisfies z.infer<typeof mergeResultSchema>);
  })
  .get("/:id", params(idParam), async (c) => {
    const id = await resolveContactId(c.env.DB, c.req.valid("param").id);
    return c.json(await readContact(c.env.DB, id));
  })
  .patch("/:id", requireRole("marketer"), params(idParam), jsonBody(contactUpdate), async (c) => {
    const id = await resolveContactId(c.env.DB, c.req.valid("param").id);
    const patch = c.req.valid("json");
    if (patch.ownerId) {
      const owner = await c.var.db.select({ id: users.id }).from(users).where(eq(users.id, patch.ownerId)).get();
      if (!owner) {
        throw new ApiError("validation_failed", "Invalid request body", {
          details: [{ path: "ownerId", message: "No such user" }],
        });
      }
    }
    await updateContact(c.env.DB, id, patch, Date.now());
    return c.json(await readContact(c.env.DB, id));
  })
  .patch("/:id/traits", requireRole("marketer"), params(idParam), jsonBody(traitsUpdate), async (c) => {
    const id = await resolveContactId(c.env.DB, c.req.valid("param").id);
    const { results } = await c.env.DB.prepare(
      `SELECT type, value FROM identities WHERE profile_id = ?1
       AND type IN ('user_id', 'anonymous_id', 'email', 'phone') ORDER BY created_at LIMIT 100`,
    )
      .bind(id)
      .all<{ type: string; value: string }>();
    const first = (type: string) => results.find((r) => r.type === type)?.value;
    const userId = first("user_id");
    const anonymousId = userId ? undefined : first("anonymous_id");
    // Email/phone link through context.traits, so that a trait edit that changes the email
    // still reaches this profile (and adds the new address) instead of starting a new one.
    const email = userId || anonymousId ? undefined : first("email");
    const phone = userId || anonymousId || email ? undefined : first("phone");
    if (!userId && !anonymousId && !email && !phone) {
      throw new ApiError("conflict", "This contact has no identifier that an edit could be attached to");
    }
    const now = Date.now();
    const messageId = newMessageId();
    const event = identifyEvent({
      messageId,
      traits: c.req.valid("json").traits,
      userId,
      anonymousId,
      linkTraits: email ? { email } : phone ? { phone } : undefined,
      source: { type: "dashboard", userId: c.var.principal.userId ?? null },
      timestamp: now,
      receivedAt: now,
    });
    await sendEvents(c.env, await contactSite(c.var.db, undefined, now), [event]);
    return c.json({ status: "queued" as const, messageId }, 202);
  });

const listDoc = {
  query: contactListQuery,
  tag: "Contacts",
};
describe({
  ...listDoc,
  method: "get",
  path: "/api/contacts",
  summary:
    "List live contacts. q: prefix of email, name or any identifier value (or an exact profile id); " +
    "segment, stage, owner (a user id or `none`), tag filters; sort last_seen|created|name (default last_seen desc, name asc); " +
    "keyset pagination: pass nextCursor back as cursor with the same sort and order",
  responses: { 200: contactPage },
});
describe({
  ...listDoc,
  method: "get",
  path: "/api/contacts/export.csv",
  summary: `The filtered list as CSV (marketer; attachment; at most ${EXPORT_MAX_ROWS} rows; formula-injection safe)`,
  responses: { 200: "text/csv" },
});
describe({
  method: "post",
  path: "/api/contacts",
  tag: "Contacts",
  summary:
    "Create a contact (marketer): queued as a trusted identify event and stitched by the pipeline like any other " +
    "(an existing profile with this email is updated instead). Without siteId it belongs to the built-in `site_crm` source.",
  body: contactCreate,
  responses: { 202: queuedSchema },
});
describe({
  method: "post",
  path: "/api/contacts/merge",
  tag: "Contacts",
  summary:
    "Merge two contacts into one (marketer); the loser's id keeps resolving to the winner. 404 unknown contact; " +
    "409 already one contact or the identity policy forbids it (details.reason); undo with POST /api/profiles/{id}/unmerge",
  body: mergeBody,
  responses: { 200: mergeResultSchema },
});
describe({
  method: "get",
  path: "/api/contacts/{id}",
  tag: "Contacts",
  summary: "A contact's CRM fields (a merged-away id answers with the survivor)",
  responses: { 200: contactSchema },
});
describe({
  method: "patch",
  path: "/api/contacts/{id}",
  tag: "Contacts",
  summary: `Set lifecycle stage (${builtinStages.join(", ")} or a custom ^[a-z0-9_-]{1,32}$; null clears), owner (a user id; null clears) or tags (replaces; ≤ 50 × 50 chars) (marketer)`,
  body: contactUpdate,
  responses: { 200: contactSchema },
});
describe({
  method: "patch",
  path: "/api/contacts/{id}/traits",
  tag: "Contacts",
  summary:
    "Edit traits (marketer): queued as an identify event carrying one of the contact's identifiers, " +
    "so traits keep their by-event-time order (the edit is the newest event)",
  body: traitsUpdate,
  responses: { 202: queuedSchema },
});
