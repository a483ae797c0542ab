/**
 * Identity: policies, stitching, manual merge (`mergeProfiles`) and unmerge. Its route sets a
 * site's identity policy: `GET|PUT /api/sites/:id/identity-policy` (mounted under /api/sites next
 * to the sites routes).
 */
import { Hono } from "hono";
import { z } from "zod";
import { requireRole } from "../auth";
import type { AppEnv } from "../env";
import { ApiError } from "../lib/errors";
import { describe } from "../lib/openapi";
import { idParam, jsonBody, params } from "../lib/validate";
import { identityPolicySchema, resolvePolicy } from "./policy";

export { extractIdentifiers, suppressionHash } from "./extract";
export { type MergeRecord, mergeProfiles } from "./merge";
export { identityPolicySchema, normalizeIdentifier, resolvePolicy } from "./policy";
export { unmergeProfile } from "./unmerge";

const policyResponse = z.object({
  siteId: z.string(),
  /** What the site declared. */
  policy: identityPolicySchema,
  /** Defaults plus the declaration: every type with its limit and priority, the whole blocklist. */
  effective: z.object({
    types: z.record(z.string(), z.object({ limit: z.number(), priority: z.number() })),
    blocklist: z.array(z.string()),
  }),
});

async function read(db: D1Database, siteId: string) {
  const row = await db.prepare("SELECT identity_policy FROM sites WHERE id = ?").bind(siteId).first<{
    identity_policy: string;
  }>();
  if (!row) throw new ApiError("not_found", "Site not found");
  let stored: unknown = {};
  try {
    stored = JSON.parse(row.identity_policy);
  } catch {}
  const parsed = identityPolicySchema.safeParse(stored);
  return parsed.success ? parsed.data : identityPolicySchema.parse({});
}

function respond(siteId: string, policy: z.output<typeof identityPolicySchema>): z.infer<typeof policyResponse> {
  const effective = resolvePolicy(policy);
  return { siteId, policy, effective: { types: effective.types, blocklist: [...effective.blocklist] } };
}

export const identityPolicyApi = new Hono<AppEnv>()
  .get("/:id/identity-policy", params(idParam), async (c) => {
    const { id } = c.req.valid("param");
    return c.json(respond(id, await read(c.env.DB, id)));
  })
  .put("/:id/identity-policy", requireRole("admin"), params(idParam), jsonBody(identityPolicySchema), async (c) => {
    const { id } = c.req.valid("param");
    const policy = c.req.valid("json");
    // Applies from the next consumer batch on; identifiers already linked stay linked.
    const { meta } = await c.env.DB.prepare("UPDATE sites SET identity_policy = ?, updated_at = ? WHERE id = ?")
      .bind(JSON.stringify(policy), Date.now(), id)
      .run();
    if (meta.changes === 0) throw new ApiError("not_found", "Site not found");
    return c.json(respond(id, policy));
  });

describe({
  method: "get",
  path: "/api/sites/{id}/identity-policy",
  tag: "Identity",
  summary: "A site's identity policy (custom identifier types, limits, priorities, blocklist)",
  responses: { 200: policyResponse },
});
describe({
  method: "put",
  path: "/api/sites/{id}/identity-policy",
  tag: "Identity",
  summary: "Replace a site's identity policy (admin); applies to events processed from now on",
  body: identityPolicySchema,
  responses: { 200: policyResponse },
});
