/**
 * Contacts created or edited by hand, and imported rows, enter the system the way tracked people
 * do: as `identify` events on the EVENTS queue, so the pipeline stitches them (dedupe on email,
 * user id, phone), orders traits by event time and keeps computed traits — one code path for
 * identity, whatever the source.
 */
import { eq } from "drizzle-orm";
import type { Db } from "../db";
import { sites } from "../db/schema";
import type { Env } from "../env";
import { ApiError } from "../lib/errors";
import { randomToken } from "../lib/ids";
import { enqueueEvents } from "../pipeline/enqueue";
import type { NormalizedEvent } from "../wire/queue";

/** The source that contacts entered in the dashboard belong to when no site is named. */
export const CRM_SITE_ID = "site_crm";

/** Returns the site events go to: the one named (404 if unknown) or the built-in CRM source. */
export async function contactSite(db: Db, siteId: string | undefined, now: number): Promise<string> {
  if (siteId !== undefined) {
    const site = await db.select({ id: sites.id }).from(sites).where(eq(sites.id, siteId)).get();
    if (!site) throw new ApiError("not_found", "Site not found");
    return site.id;
  }
  await db
    .insert(sites)
    .values({
      id: CRM_SITE_ID,
      name: "CRM (manual entries and imports)",
      writeKey: `wk_${randomToken(24)}`,
      allowedOrigins: [],
      verificationSecret: `ivs_${randomToken(32)}`,
      createdAt: now,
      updatedAt: now,
    })
    .onConflictDoNothing();
  return CRM_SITE_ID;
}

/** An identify event from the dashboard: trusted (`verified`), identified by traits or ids. */
export function identifyEvent(input: {
  messageId: string;
  traits: Record<string, unknown>;
  userId?: string | null;
  anonymousId?: string | null;
  /** Identifiers to link by that are not meant to become trait values (see `traitsLink`). */
  linkTraits?: Record<string, string>;
  source: Record<string, unknown>;
  timestamp: number;
  receivedAt: number;
}): NormalizedEvent {
  return {
    type: "identify",
    messageId: input.messageId,
    anonymousId: input.anonymousId ?? null,
    userId: input.userId ?? null,
    previousId: null,
    groupId: null,
    event: null,
    name: null,
    properties: {},
    traits: input.traits,
    context: { source: input.source, ...(input.linkTraits ? { traits: input.linkTraits } : {}) },
    timestamp: input.timestamp,
    receivedAt: input.receivedAt,
    flags: [],
    verified: true,
  };
}

export const newMessageId = () => `crm_${randomToken(24)}`;

/** Puts events on the queue; resolves once every `sendBatch` resolved (503 otherwise). */
export async function sendEvents(env: Env, siteId: string, events: NormalizedEvent[]): Promise<void> {
  try {
    await enqueueEvents(env, siteId, events);
  } catch (err) {
    console.error("crm: enqueue failed", err);
    throw new ApiError("unavailable", "Could not queue the contact; retry", { headers: { "Retry-After": "5" } });
  }
}
