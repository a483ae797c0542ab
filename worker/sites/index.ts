/**
 * Sites (sources): each has a public write key that can only send events and ask for
 * personalization decisions.
 */
import { and, eq, ne } from "drizzle-orm";
import { Hono } from "hono";
import { z } from "zod";
import { hasRole, requireRole } from "../auth";
import type { Db } from "../db";
import { sites } from "../db/schema";
import type { AppEnv } from "../env";
import { ApiError } from "../lib/errors";
import { newId, randomToken } from "../lib/ids";
import { describe } from "../lib/openapi";
import { idParam, jsonBody, params } from "../lib/validate";
import { proxyHostSchema, proxyHosts, requestHost } from "../personalize";

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
  // Edge rewriting in production: the hostname proxied in full to originUrl (README: Personalization).
  proxyHost: proxyHostSchema.nullable().optional(),
  identityVerification: z.boolean().default(false),
});

export const siteUpdate = siteCreate.partial();

export const siteSchema = z.object({
  id: z.string(),
  name: z.string(),
  writeKey: z.string(),
  allowedOrigins: z.array(z.string()),
  originUrl: z.string().nullable(),
  proxyHost: z.string().nullable(),
  identityVerification: z.boolean(),
  // The identity-verification secret is shown to admins only (it lets a server vouch for user ids).
  verificationSecret: z.string().optional(),
  createdAt: z.string(),
  updatedAt: z.string(),
});

export type Site = typeof sites.$inferSelect;

export function siteJson(site: Site, showSecret = true): z.infer<typeof siteSchema> {
  return {
    id: site.id,
    name: site.name,
    writeKey: site.writeKey,
    allowedOrigins: site.allowedOrigins,
    originUrl: site.originUrl,
    proxyHost: site.proxyHost,
    identityVerification: site.identityVerification,
    ...(showSecret ? { verificationSecret: site.verificationSecret } : {}),
    createdAt: new Date(site.createdAt).toISOString(),
    updatedAt: new Date(site.updatedAt).toISOString(),
  };
}

const newWriteKey = () => `wk_${randomToken(24)}`;

/**
 * Every /v1 request starts with the write-key lookup, and on a busy database that read queues
 * behind the pipeline's writes (it was the largest cost of an ingest request). Each isolate keeps
 * answers for WRITE_KEY_TTL_MS: a rotated key or a changed origin list takes effect at once in the
 * isolate that made the change and within that bound everywhere else.
 */
export const WRITE_KEY_TTL_MS = 2_000;
const MAX_CACHED_KEYS = 1_000;
const siteByKey = new Map<string, { site: Site | undefined; until: number }>();

/** Looks a site up by its write key (cached per isolate for WRITE_KEY_TTL_MS). */
export async function findSiteByWriteKey(db: Db, writeKey: string, now = Date.now()): Promise<Site | undefined> {
  const hit = siteByKey.get(writeKey);
  if (hit && hit.until > now) return hit.site;
  const site = await db.select().from(sites).where(eq(sites.writeKey, writeKey)).get();
  if (siteByKey.size >= MAX_CACHED_KEYS) siteByKey.delete(siteByKey.keys().next().value as string);
  siteByKey.set(writeKey, { site, until: now + WRITE_KEY_TTL_MS });
  return site;
}

/** Drops a site's cached keys in this isolate (after a rotation or an update). */
function forgetSite(site: Site): void {
  for (const [key, entry] of siteByKey) if (key === site.writeKey || entry.site?.id === site.id) siteByKey.delete(key);
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
    proxyHost: input.proxyHost ?? null,
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

/**
 * Runs a write that may set a site's proxyHost, answering 409 when another site has it. Checked
 * before the write for a clear answer; the unique index `sites_proxy_host_uq` settles a race
 * between two writers, after which the check tells a conflict from any other failure.
 */
async function withFreeProxyHost<T>(
  db: Db,
  host: string | null | undefined,
  siteId: string | null,
  write: () => Promise<T>,
): Promise<T> {
  if (!host) return write();
  const taken = async () =>
    (await db
      .select({ id: sites.id })
      .from(sites)
      .where(siteId ? and(eq(sites.proxyHost, host), ne(sites.id, siteId)) : eq(sites.proxyHost, host))
      .get()) !== undefined;
  const conflict = () => new ApiError("conflict", `Another site already uses the proxy host ${host}`);
  if (await taken()) throw conflict();
  try {
    return await write();
  } catch (err) {
    if (await taken().catch(() => false)) throw conflict();
    throw err;
  }
}

/** Refuses the hostname the API is being called on: proxying it would take over the dashboard and API. */
function assertNotOwnHost(host: string | null | undefined, requestUrl: string): void {
  if (host && host === requestHost(requestUrl)) {
    throw new ApiError("validation_failed", "Invalid request body", {
      details: [{ path: "proxyHost", message: "This hostname serves Tessera's dashboard and API; use the site's own" }],
    });
  }
}

export const sitesApi = new Hono<AppEnv>()
  .get("/", async (c) => {
    const rows = await c.var.db.select().from(sites).orderBy(sites.createdAt).all();
    const admin = hasRole(c.var.principal, "admin");
    return c.json({ items: rows.map((site) => siteJson(site, admin)) });
  })
  .post("/", requireRole("admin"), jsonBody(siteCreate), async (c) => {
    const input = c.req.valid("json");
    assertNotOwnHost(input.proxyHost, c.req.url);
    const site = await withFreeProxyHost(c.var.db, input.proxyHost, null, () => createSite(c.var.db, input));
    // This isolate may have cached the hostname as "not proxied"; others notice within PROXY_HOST_TTL_MS.
    proxyHosts.forget(site.proxyHost);
    return c.json(siteJson(site), 201);
  })
  .get("/:id", params(idParam), async (c) =>
    c.json(siteJson(await getSite(c.var.db, c.req.valid("param").id), hasRole(c.var.principal, "admin"))),
  )
  .patch("/:id", requireRole("admin"), params(idParam), jsonBody(siteUpdate), async (c) => {
    const { id } = c.req.valid("param");
    const before = await getSite(c.var.db, id);
    const patch = c.req.valid("json");
    assertNotOwnHost(patch.proxyHost, c.req.url);
    const updated = await withFreeProxyHost(c.var.db, patch.proxyHost, id, () =>
      c.var.db
        .update(sites)
        .set({ ...patch, updatedAt: Date.now() })
        .where(eq(sites.id, id))
        .returning()
        .get(),
    );
    proxyHosts.forget(before.proxyHost, updated.proxyHost);
    forgetSite(before);
    return c.json(siteJson(updated));
  })
  .post("/:id/rotate-key", requireRole("admin"), params(idParam), async (c) => {
    const { id } = c.req.valid("param");
    const before = await getSite(c.var.db, id);
    // The old key stops working at once here and within WRITE_KEY_TTL_MS in every other isolate.
    const updated = await c.var.db
      .update(sites)
      .set({ writeKey: newWriteKey(), updatedAt: Date.now() })
      .where(eq(sites.id, id))
      .returning()
      .get();
    forgetSite(before);
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
