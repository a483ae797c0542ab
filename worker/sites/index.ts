/**
 * Sites (sources): each has a public write key that can only send events and ask for
 * personalization decisions.
 */
import { eq } from "drizzle-orm";
import { Hono } from "hono";
import { z } from "zod";
import { requireRole } from "../auth";
import type { Db } from "../db";
import { sites } from "../db/schema";
import type { AppEnv } from "../env";
import { ApiError } from "../lib/errors";
import { newId, randomToken } from "../lib/ids";
import { describe } from "../lib/openapi";
import { idParam, jsonBody, params } from "../lib/validate";

/** An allowed origin: `*` or a scheme://host[:port] origin, normalised the way browsers send it. */
const origin = z
  .string()
  .max(253)
  .transform((value, ctx) => {
    if (value === "*") return value;
    try {
      const url = new URL(value);
      if ((url.protocol === "http:" || url.protocol === "https:") && url.origin !== "null") return url.origin;
    } catch {}
    ctx.addIssue({ code: "custom", message: `Not an origin: ${value.slice(0, 100)}` });
    return z.NEVER;
  });

const httpUrl = z.url({ protocol: /^https?$/ }).max(2048);

export const siteCreate = z.object({
  name: z.string().trim().min(1).max(200),
  allowedOrigins: z.array(origin).max(50).default([]),
  originUrl: httpUrl.nullable().optional(),
  identityVerification: z.boolean().default(false),
});

export const siteUpdate = siteCreate.partial();

export const siteSchema = z.object({
  id: z.string(),
  name: z.string(),
  writeKey: z.string(),
  allowedOrigins: z.array(z.string()),
  originUrl: z.string().nullable(),
  identityVerification: z.boolean(),
  verificationSecret: z.string(),
  createdAt: z.string(),
  updatedAt: z.string(),
});

export type Site = typeof sites.$inferSelect;

export function siteJson(site: Site): z.infer<typeof siteSchema> {
  return {
    id: site.id,
    name: site.name,
    writeKey: site.writeKey,
    allowedOrigins: site.allowedOrigins,
    originUrl: site.originUrl,
    identityVerification: site.identityVerification,
    verificationSecret: site.verificationSecret,
    createdAt: new Date(site.createdAt).toISOString(),
    updatedAt: new Date(site.updatedAt).toISOString(),
  };
}

const newWriteKey = () => `wk_${randomToken(24)}`;

/** Looks a site up by its write key (every /v1 request starts here). */
export async function findSiteByWriteKey(db: Db, writeKey: string): Promise<Site | undefined> {
  return db.select().from(sites).where(eq(sites.writeKey, writeKey)).get();
}

/** Creates a site; `writeKey` may be fixed (the local demo site), otherwise it is random. */
export async function createSite(db: Db, input: z.output<typeof siteCreate>, writeKey = newWriteKey()): Promise<Site> {
  const now = Date.now();
  const row: Site = {
    id: newId("site"),
    name: input.name,
    writeKey,
    allowedOrigins: input.allowedOrigins,
    originUrl: input.originUrl ?? null,
    identityVerification: input.identityVerification,
    verificationSecret: `ivs_${randomToken(32)}`,
    identityPolicy: {},
    createdAt: now,
    updatedAt: now,
  };
  await db.insert(sites).values(row);
  return row;
}

async function getSite(db: Db, id: string): Promise<Site> {
  const site = await db.select().from(sites).where(eq(sites.id, id)).get();
  if (!site) throw new ApiError("not_found", "Site not found");
  return site;
}

export const sitesApi = new Hono<AppEnv>()
  .get("/", async (c) => {
    const rows = await c.var.db.select().from(sites).orderBy(sites.createdAt).all();
    return c.json({ items: rows.map(siteJson) });
  })
  .post("/", requireRole("admin"), jsonBody(siteCreate), async (c) => {
    const site = await createSite(c.var.db, c.req.valid("json"));
    return c.json(siteJson(site), 201);
  })
  .get("/:id", params(idParam), async (c) => c.json(siteJson(await getSite(c.var.db, c.req.valid("param").id))))
  .patch("/:id", requireRole("admin"), params(idParam), jsonBody(siteUpdate), async (c) => {
    const { id } = c.req.valid("param");
    await getSite(c.var.db, id);
    const patch = c.req.valid("json");
    const updated = await c.var.db
      .update(sites)
      .set({ ...patch, updatedAt: Date.now() })
      .where(eq(sites.id, id))
      .returning()
      .get();
    return c.json(siteJson(updated));
  })
  .post("/:id/rotate-key", requireRole("admin"), params(idParam), async (c) => {
    const { id } = c.req.valid("param");
    await getSite(c.var.db, id);
    // The old key stops working at once: lookups read D1, never a long-lived cache.
    const updated = await c.var.db
      .update(sites)
      .set({ writeKey: newWriteKey(), updatedAt: Date.now() })
      .where(eq(sites.id, id))
      .returning()
      .get();
    return c.json(siteJson(updated));
  });

describe({
  method: "get",
  path: "/api/sites",
  tag: "Sites",
  summary: "List sites",
  responses: { 200: z.object({ items: z.array(siteSchema) }) },
});
describe({
  method: "post",
  path: "/api/sites",
  tag: "Sites",
  summary: "Create a site (admin)",
  body: siteCreate,
  responses: { 201: siteSchema },
});
describe({
  method: "get",
  path: "/api/sites/{id}",
  tag: "Sites",
  summary: "Get a site",
  responses: { 200: siteSchema },
});
describe({
  method: "patch",
  path: "/api/sites/{id}",
  tag: "Sites",
  summary: "Update a site (admin)",
  body: siteUpdate,
  responses: { 200: siteSchema },
});
describe({
  method: "post",
  path: "/api/sites/{id}/rotate-key",
  tag: "Sites",
  summary: "Replace the write key (admin); the old key stops working at once",
  responses: { 200: siteSchema },
});
