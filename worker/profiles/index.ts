/**
 * `/api/profiles`: unified profiles — search, lookup by identifier, the 360° view, the event
 * timeline, manual merge and unmerge, and the data-subject rights (erase, export).
 */
import { Hono } from "hono";
import { z } from "zod";
import { requireRole } from "../auth";
import type { AppEnv, Env } from "../env";
import { mergeProfiles } from "../identity/merge";
import { identifierType, normalizeIdentifier } from "../identity/policy";
import { unmergeProfile } from "../identity/unmerge";
import { ApiError } from "../lib/errors";
import { describe } from "../lib/openapi";
import { idParam, jsonBody, params, query } from "../lib/validate";
import { afterPipelineBatch } from "../segments/pipeline";
import { eraseProfile, exportProfile } from "./privacy";
import {
  decodeCursor,
  eventCursorSchema,
  eventItemSchema,
  eventsOf,
  idSetOf,
  listCursorSchema,
  listProfiles,
  profileJson,
  profileSchema,
  profileSummarySchema,
  resolveProfile,
} from "./read";

const limit = (max: number, fallback: number) => z.coerce.number().int().min(1).max(max).default(fallback);
const cursorParam = z.string().max(400).optional();

const listQuery = z.object({
  q: z.string().trim().min(1).max(200).optional(),
  segment: z.string().max(64).optional(),
  limit: limit(100, 25),
  cursor: cursorParam,
});
const lookupQuery = z.object({ type: identifierType, value: z.string().min(1).max(254) });
const eventsQuery = z.object({ limit: limit(200, 50), cursor: cursorParam });
const unmergeBody = z.object({ mergeId: z.string().min(1).max(100).optional() }).strict();
const mergeBody = z
  .object({
    /** The profile that survives (its id stays the contact's id). */
    winnerId: z.string().min(1).max(100),
    /** The profile folded into it (its id keeps resolving to the winner). */
    loserId: z.string().min(1).max(100),
  })
  .strict()
  .refine((b) => b.winnerId !== b.loserId, { path: ["loserId"], message: "A profile can't be merged into itself" });

const listSchema = z.object({ items: z.array(profileSummarySchema), nextCursor: z.string().nullable() });
const eventsSchema = z.object({ items: z.array(eventItemSchema), nextCursor: z.string().nullable() });
const mergeSchema = z.object({ mergeId: z.string(), profile: profileSchema });
const unmergeSchema = z.object({ mergeId: z.string(), restoredId: z.string(), survivorId: z.string() });
const eraseSchema = z.object({ erased: z.literal(true), profileIds: z.array(z.string()), identifiers: z.number() });

function badCursor(): never {
  throw new ApiError("validation_failed", "Invalid query parameters", {
    details: [{ path: "cursor", message: "Not a cursor from this list" }],
  });
}

/**
 * A merge or unmerge re-evaluates segments in its batch, which may queue webhooks: hand them on
 * now rather than at the next cron run (which catches up if this fails).
 */
const relayWebhooks = (env: Env, now: number) =>
  afterPipelineBatch(env, now).catch((err: unknown) => console.error("profiles: webhook relay failed", err));

async function live(db: D1Database, id: string) {
  const profile = await resolveProfile(db, id);
  if (!profile) throw new ApiError("not_found", "Profile not found");
  return profile;
}

export const profilesApi = new Hono<AppEnv>()
  .get("/", query(listQuery), async (c) => {
    const q = c.req.valid("query");
    const cursor = decodeCursor(q.cursor, listCursorSchema);
    if (cursor === null) badCursor();
    return c.json(await listProfiles(c.env.DB, { q: q.q, segment: q.segment, limit: q.limit, cursor }));
  })
  .get("/lookup", query(lookupQuery), async (c) => {
    const { type, value } = c.req.valid("query");
    const normalized = normalizeIdentifier(type, value);
    if (normalized === null) throw new ApiError("not_found", "No profile has this identifier");
    const row = await c.env.DB.prepare("SELECT profile_id FROM identities WHERE type = ? AND value = ?")
      .bind(type, normalized)
      .first<{ profile_id: string }>();
    if (!row) throw new ApiError("not_found", "No profile has this identifier");
    return c.json(await profileJson(c.env.DB, await live(c.env.DB, row.profile_id)));
  })
  .get("/:id", params(idParam), async (c) => {
    const profile = await live(c.env.DB, c.req.valid("param").id);
    return c.json(await profileJson(c.env.DB, profile));
  })
  .get("/:id/events", params(idParam), query(eventsQuery), async (c) => {
    const q = c.req.valid("query");
    const cursor = decodeCursor(q.cursor, eventCursorSchema);
    if (cursor === null) badCursor();
    const profile = await live(c.env.DB, c.req.valid("param").id);
    return c.json(await eventsOf(c.env.DB, await idSetOf(c.env.DB, profile.id), q.limit, cursor));
  })
  .post("/merge", requireRole("marketer"), jsonBody(mergeBody), async (c) => {
    const { winnerId, loserId } = c.req.valid("json");
    const principal = c.get("principal");
    const now = Date.now();
    const { mergeId } = await mergeProfiles(c.env.DB, winnerId, loserId, now, principal.userId ?? principal.kind);
    c.executionCtx.waitUntil(relayWebhooks(c.env, now));
    return c.json({ mergeId, profile: await profileJson(c.env.DB, await live(c.env.DB, winnerId)) });
  })
  .post("/:id/unmerge", requireRole("marketer"), params(idParam), jsonBody(unmergeBody), async (c) => {
    const { mergeId } = c.req.valid("json");
    const now = Date.now();
    const result = await unmergeProfile(c.env.DB, c.req.valid("param").id, mergeId, now);
    c.executionCtx.waitUntil(relayWebhooks(c.env, now));
    return c.json(result);
  })
  .delete("/:id", requireRole("admin"), params(idParam), async (c) => {
    let result: Awaited<ReturnType<typeof eraseProfile>>;
    try {
      result = await eraseProfile(c.env.DB, c.req.valid("param").id, Date.now());
    } catch (err) {
      console.error("erase failed", err);
      throw new ApiError("unavailable", "The profile could not be erased now; try again", {
        headers: { "Retry-After": "1" },
      });
    }
    if (!result) throw new ApiError("not_found", "Profile not found");
    return c.json({ erased: true as const, ...result });
  })
  .get("/:id/export", requireRole("admin"), params(idParam), async (c) => {
    const data = await exportProfile(c.env.DB, c.req.valid("param").id, Date.now());
    if (!data) throw new ApiError("not_found", "Profile not found");
    c.header("Content-Disposition", `attachment; filename="profile-${data.profile.id}.json"`);
    return c.json(data);
  });

describe({
  method: "get",
  path: "/api/profiles",
  tag: "Profiles",
  summary: "Search profiles (name/email prefix, any identifier), filter by segment; newest activity first",
  query: listQuery,
  responses: { 200: listSchema },
});
describe({
  method: "get",
  path: "/api/profiles/lookup",
  tag: "Profiles",
  summary: "Find the profile holding an identifier (the value is normalised like the pipeline does)",
  query: lookupQuery,
  responses: { 200: profileSchema, 404: "No profile has this identifier" },
});
describe({
  method: "get",
  path: "/api/profiles/{id}",
  tag: "Profiles",
  summary: "A profile's 360° view; a merged-away id answers with the surviving profile",
  responses: { 200: profileSchema },
});
describe({
  method: "get",
  path: "/api/profiles/{id}/events",
  tag: "Profiles",
  summary: "A profile's events (including those of profiles merged into it), newest first",
  query: eventsQuery,
  responses: { 200: eventsSchema },
});
describe({
  method: "post",
  path: "/api/profiles/merge",
  tag: "Profiles",
  summary:
    "Merge two profiles by hand (marketer): the loser folds into the winner as a stitching merge would, undoable with unmerge; 409 when both hold a user id or a limit would break",
  body: mergeBody,
  responses: {
    200: mergeSchema,
    404: "A profile was not found",
    409: "Already one profile, or the identity policy forbids it",
  },
});
describe({
  method: "post",
  path: "/api/profiles/{id}/unmerge",
  tag: "Profiles",
  summary: "Split a merged profile back out (the given merge, or the latest) (marketer)",
  body: unmergeBody,
  responses: { 200: unmergeSchema },
});
describe({
  method: "delete",
  path: "/api/profiles/{id}",
  tag: "Profiles",
  summary: "Erase a person: suppress their identifiers, delete profile, events and CRM data (admin)",
  responses: { 200: eraseSchema },
});
describe({
  method: "get",
  path: "/api/profiles/{id}/export",
  tag: "Profiles",
  summary: "Everything held about a person, as JSON (admin; data-subject access request)",
  responses: { 200: "The export document" },
});
