/**
 * Edge personalization: the slots admin API (`/api/slots`), the public decision API
 * (`/v1/personalize`, write key) and the HTML-rewriting proxy (on a site's `proxyHost`; locally
 * also `/p/:siteId/*`).
 */
import { Hono } from "hono";
import { bodyLimit } from "hono/body-limit";
import { z } from "zod";
import { requireRole } from "../auth";
import type { AppEnv } from "../env";
import { ApiError } from "../lib/errors";
import { gpcOptOut } from "../lib/gpc";
import { describe } from "../lib/openapi";
import { jsonBody, params, query } from "../lib/validate";
import { decideSlot, profileVisitor } from "./decide";
import { personalize, personalizeResponseSchema } from "./edge";
import { recordExposures } from "./exposures";
import { proxyHostRouter } from "./hosts";
import { executionCtx, proxyApp } from "./proxy";
import { deleteSlot, getSlot, listSlots, saveSlot, slotInput, slotJson, slotKey, slotSchema } from "./slots";
import { DAY_MS, DEFAULT_STATS_DAYS, MAX_STATS_DAYS, slotStats, slotStatsSchema } from "./stats";

export { decideSlot, holdoutBucket, profileVisitor, resolveSiteVisitor, resolveVisitor } from "./decide";
export { personalize } from "./edge";
export { EXPOSURE_EVENT, exposureBatch } from "./exposures";
export { HostCache, PROXY_HOST_TTL_MS, proxyHostRouter, proxyHostSchema, proxyHosts, requestHost } from "./hosts";
export { proxyApp } from "./proxy";
export { getSlot, listSlots, slotCache } from "./slots";
export { slotStats } from "./stats";

const keyParam = z.object({ key: slotKey });

const previewQuery = z.object({ profileId: z.string().min(1).max(100) });
const previewSchema = z.object({
  slot: z.string(),
  profileId: z.string(),
  variant: z.string(),
  content: z.union([z.string(), z.record(z.string(), z.unknown())]),
  rule: z.object({ id: z.string(), segment: z.string() }).nullable(),
  heldOut: z.boolean(),
  inSchedule: z.boolean(),
  segments: z.array(z.string()),
});

const statsQuery = z
  .object({ from: z.iso.datetime({ offset: true }).optional(), to: z.iso.datetime({ offset: true }).optional() })
  .transform((q, ctx) => {
    const to = q.to ? Date.parse(q.to) : Date.now();
    const from = q.from ? Date.parse(q.from) : to - DEFAULT_STATS_DAYS * DAY_MS;
    if (from >= to) ctx.addIssue({ code: "custom", path: ["from"], message: "from must be before to" });
    if (to - from > MAX_STATS_DAYS * DAY_MS) {
      ctx.addIssue({ code: "custom", path: ["from"], message: `The range may cover at most ${MAX_STATS_DAYS} days` });
    }
    return { from, to };
  });

async function existingSlot(d1: D1Database, key: string) {
  const slot = await getSlot(d1, key);
  if (!slot) throw new ApiError("not_found", "Slot not found");
  return slot;
}

/** `/api/slots`: reads for every role, writes for marketers. */
export const slotsApi = new Hono<AppEnv>()
  .get("/", async (c) => c.json({ items: (await listSlots(c.env.DB)).map(slotJson) }))
  .get("/:key", params(keyParam), async (c) => c.json(slotJson(await existingSlot(c.env.DB, c.req.valid("param").key))))
  .put(
    "/:key",
    requireRole("marketer"),
    // 50 rules of up to 64 KB each would exceed D1's 2 MB row: a slot is capped at 1 MB as sent.
    bodyLimit({
      maxSize: 1024 * 1024,
      onError: () => {
        throw new ApiError("payload_too_large", "A slot definition is limited to 1 MB");
      },
    }),
    params(keyParam),
    jsonBody(slotInput),
    async (c) => {
      const { slot, created } = await saveSlot(c.env.DB, c.req.valid("param").key, c.req.valid("json"), Date.now());
      return c.json(slotJson(slot), created ? 201 : 200);
    },
  )
  .delete("/:key", requireRole("marketer"), params(keyParam), async (c) => {
    if (!(await deleteSlot(c.env.DB, c.req.valid("param").key))) throw new ApiError("not_found", "Slot not found");
    return c.body(null, 204);
  })
  .get("/:key/stats", params(keyParam), query(statsQuery), async (c) => {
    const slot = await existingSlot(c.env.DB, c.req.valid("param").key);
    const { from, to } = c.req.valid("query");
    return c.json(await slotStats(c.env.DB, slot.key, slot.goalEvent, from, to));
  })
  .get("/:key/preview", params(keyParam), query(previewQuery), async (c) => {
    const slot = await existingSlot(c.env.DB, c.req.valid("param").key);
    const visitor = await profileVisitor(c.env.DB, c.req.valid("query").profileId);
    if (!visitor?.profileId) throw new ApiError("not_found", "Profile not found");
    const decision = decideSlot(slot, visitor, Date.now());
    return c.json({
      slot: slot.key,
      profileId: visitor.profileId,
      variant: decision.variant,
      content: decision.content,
      rule: decision.rule && { id: decision.rule.id, segment: decision.rule.segment },
      heldOut: decision.heldOut,
      inSchedule: decision.inSchedule,
      segments: [...visitor.segments].sort(),
    } satisfies z.infer<typeof previewSchema>);
  });

const visitorId = z
  .string()
  .trim()
  .max(100)
  .optional()
  .transform((v) => v || null);

const personalizeQuery = z.object({
  // A comma-separated list; 20 keys of up to 64 characters fit in 1,300.
  slots: z
    .string()
    .max(1_300)
    .transform((s) => [...new Set(s.split(",").map((k) => k.trim()))].filter(Boolean))
    .pipe(z.array(slotKey).min(1, "Name at least one slot").max(20, "At most 20 slots per request")),
  anonymousId: visitorId,
  userId: visitorId,
  userHash: z.string().max(128).optional(),
  writeKey: z.string().max(200).optional(),
});

const CORS = { "Access-Control-Allow-Origin": "*", "Access-Control-Allow-Headers": "Authorization, X-Tessera-Key" };

/** The write key from the `X-Tessera-Key` header, Basic auth (username) or the `writeKey` query. */
export function writeKeyOf(req: { header(name: string): string | undefined; query(name: string): string | undefined }) {
  const header = req.header("x-tessera-key");
  if (header) return header;
  const basic = req.header("authorization")?.match(/^Basic\s+([A-Za-z0-9+/=]+)$/i);
  if (basic) {
    try {
      const user = atob(basic[1]).split(":")[0];
      if (user) return user;
    } catch {}
  }
  return req.query("writeKey") || undefined;
}

/**
 * `GET /v1/personalize`: public (write key), cross-origin without credentials, never cached.
 * Decisions are the server's: the client names slots and itself, and any other parameter
 * (conditions, segments, traits) is ignored. Under `Sec-GPC: 1` no exposure is recorded.
 */
export const personalizeApi = new Hono<AppEnv>()
  .use(async (c, next) => {
    await next();
    for (const [name, value] of Object.entries(CORS)) c.res.headers.set(name, value);
    c.res.headers.set("Cache-Control", "private, no-store");
  })
  .options("/", (c) =>
    c.body(null, 204, { "Access-Control-Allow-Methods": "GET, OPTIONS", "Access-Control-Max-Age": "86400" }),
  )
  .get(
    "/",
    async (c, next) => {
      const key = writeKeyOf(c.req);
      // Before any parsing or D1 read: without a key there is nothing to decide for.
      if (!key || key.length > 200) {
        throw new ApiError("unauthorized", "A write key is required (writeKey, Basic auth or X-Tessera-Key)");
      }
      await next();
    },
    query(personalizeQuery),
    async (c) => {
      const q = c.req.valid("query");
      const outcome = await personalize(
        c.env.DB,
        {
          writeKey: writeKeyOf(c.req)!,
          slots: q.slots,
          anonymousId: q.anonymousId,
          userId: q.userId,
          userHash: q.userHash ?? null,
        },
        Date.now(),
      );
      if (outcome.kind === "unauthorized") throw new ApiError("unauthorized", "Unknown write key");
      // `Sec-GPC: 1`: the decision is first-party content and still served; the exposure would be
      // an event about the person, so it is not recorded.
      if (outcome.exposure && !gpcOptOut(c.req.raw.headers)) {
        recordExposures(c.env.EVENTS, executionCtx(c), outcome.exposure);
      }
      return c.json(outcome.body);
    },
  );

/** `/p/:siteId/*`: the rewriting proxy with the runtime's fetch (404 unless `ALLOW_PATH_PROXY` is "true"). */
export const proxy = proxyApp();

/** The app's first middleware: requests to a site's `proxyHost` are that site's, in full. */
export const proxyHost = proxyHostRouter();

describe({
  method: "get",
  path: "/api/slots",
  tag: "Personalization",
  summary: "List slots",
  responses: { 200: z.object({ items: z.array(slotSchema) }) },
});
describe({
  method: "get",
  path: "/api/slots/{key}",
  tag: "Personalization",
  summary: "Get a slot",
  responses: { 200: slotSchema },
});
describe({
  method: "put",
  path: "/api/slots/{key}",
  tag: "Personalization",
  summary:
    "Create or replace a slot (marketer). Rules are tried in order; rules without an id get one, reported as the variant.",
  body: slotInput,
  responses: { 200: slotSchema, 201: slotSchema },
});
describe({
  method: "delete",
  path: "/api/slots/{key}",
  tag: "Personalization",
  summary: "Delete a slot (marketer)",
  responses: { 204: "Deleted" },
});
describe({
  method: "get",
  path: "/api/slots/{key}/stats",
  tag: "Personalization",
  summary: `Exposures and conversions per variant and holdout (default: the last ${DEFAULT_STATS_DAYS} days; at most ${MAX_STATS_DAYS})`,
  query: statsQuery,
  responses: { 200: slotStatsSchema },
});
describe({
  method: "get",
  path: "/api/slots/{key}/preview",
  tag: "Personalization",
  summary: "Preview as contact: what a profile gets from this slot, and which rule matched",
  query: previewQuery,
  responses: { 200: previewSchema },
});
describe({
  method: "get",
  path: "/v1/personalize",
  tag: "Personalization",
  summary: "Decide slots for a visitor (write key). Fails open to defaults; never cached.",
  auth: "writeKey",
  query: personalizeQuery,
  responses: { 200: personalizeResponseSchema },
});
