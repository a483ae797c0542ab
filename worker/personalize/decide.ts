/**
 * The decision: who is the visitor, which segments are they in, and which variant of each slot
 * do they get. Pure functions plus one D1 query; the routes add authentication and fail-open.
 */
import { timingSafeEqual } from "../lib/ids";
import type { SlotContent, SlotDefinition, SlotRule } from "./slots";

/** What the decision knows about a visitor. Segment keys never leave the worker unless public. */
export interface Visitor {
  /**
   * The live profile (merged-away ids already followed), or null for an unknown visitor. It is
   * also the holdout's bucketing unit.
   */
  profileId: string | null;
  segments: ReadonlySet<string>;
  /** Keys of the visitor's segments marked public (may be named in responses). */
  publicSegments: string[];
}

export const UNKNOWN_VISITOR: Visitor = { profileId: null, segments: new Set(), publicSegments: [] };

export interface Decision {
  content: SlotContent;
  /** The winning rule's id, `default`, or `holdout`. */
  variant: string;
  /** The rule that matched (also when the visitor was held out from it: null then). */
  rule: SlotRule | null;
  heldOut: boolean;
  inSchedule: boolean;
}

/** FNV-1a (32 bit) over the UTF-16 code units: fast, stable across isolates, good enough spread. */
export function fnv1a(input: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < input.length; i++) {
    h ^= input.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return h >>> 0;
}

/** A profile's sticky bucket for a slot, in [0, 100) with two decimals. Per slot, so holdouts are independent. */
export function holdoutBucket(profileId: string, slotKey: string): number {
  return (fnv1a(`${slotKey}\u0000${profileId}`) % 10_000) / 100;
}

/**
 * Decides one slot for one visitor at `now`: outside its schedule → default; inside, a profile
 * whose bucket falls under the holdout share → default reported as `holdout`; otherwise the
 * first rule whose segment the visitor is in, else the default.
 *
 * The holdout buckets profiles only. A new visitor has no profile until the pipeline has stored
 * their first event, so bucketing by anonymous id first would move most visitors between groups
 * on their second page view; without a profile they are in no segment and see the default
 * anyway, so leaving them out of the holdout changes nothing they see and keeps the groups clean.
 */
export function decideSlot(slot: SlotDefinition, visitor: Visitor, now: number): Decision {
  const inSchedule = (slot.startsAt === null || now >= slot.startsAt) && (slot.endsAt === null || now < slot.endsAt);
  if (!inSchedule) return { content: slot.default, variant: "default", rule: null, heldOut: false, inSchedule };
  if (slot.holdout > 0 && visitor.profileId !== null && holdoutBucket(visitor.profileId, slot.key) < slot.holdout) {
    return { content: slot.default, variant: "holdout", rule: null, heldOut: true, inSchedule };
  }
  const rule = slot.rules.find((r) => visitor.segments.has(r.segment)) ?? null;
  return rule
    ? { content: rule.content, variant: rule.id, rule, heldOut: false, inSchedule }
    : { content: slot.default, variant: "default", rule: null, heldOut: false, inSchedule };
}

/** The fail-open answer for a slot: its default, as every unknown visitor sees it. */
export function defaultDecision(slot: SlotDefinition): Decision {
  return { content: slot.default, variant: "default", rule: null, heldOut: false, inSchedule: false };
}

export interface VisitorIds {
  userId: string | null;
  anonymousId: string | null;
}

// The visitor's candidate profiles (user_id first, then anonymous_id), each followed through
// `merged_into` (the pipeline keeps it pointing at the final survivor), with their memberships
// and each segment's public flag. Every lookup is a primary-key or indexed probe:
// identities PK (type, value), profiles PK, memberships_profile_idx, segments PK.
const visitorCte = (userIdParam: string, anonymousIdParam: string) => `
WITH visitor AS (
  SELECT 0 AS rank, COALESCE(p.merged_into, i.profile_id) AS profile_id
    FROM identities i LEFT JOIN profiles p ON p.id = i.profile_id
   WHERE i.type = 'user_id' AND i.value = ${userIdParam}
  UNION ALL
  SELECT 1, COALESCE(p.merged_into, i.profile_id)
    FROM identities i LEFT JOIN profiles p ON p.id = i.profile_id
   WHERE i.type = 'anonymous_id' AND i.value = ${anonymousIdParam}
)`;

const VISITOR_COLUMNS = "v.rank AS rank, v.profile_id AS profile_id, m.segment_key AS segment, g.public AS public";
const VISITOR_JOINS = `LEFT JOIN memberships m ON m.profile_id = v.profile_id
  LEFT JOIN segments g ON g.key = m.segment_key`;

/**
 * `/v1/personalize` in one statement: the site by write key (sites_write_key_uq) joined with the
 * visitor's memberships. No row means the key is unknown.
 */
export const SITE_AND_VISITOR_SQL = `${visitorCte("?2", "?3")}
SELECT s.id AS site_id, s.identity_verification AS iv, s.verification_secret AS secret, ${VISITOR_COLUMNS}
  FROM sites s
  LEFT JOIN visitor v ON 1
  ${VISITOR_JOINS}
 WHERE s.write_key = ?1`;

/** The proxy already knows its site: the visitor alone. */
export const VISITOR_SQL = `${visitorCte("?1", "?2")}
SELECT ${VISITOR_COLUMNS}
  FROM visitor v
  ${VISITOR_JOINS}`;

interface VisitorRow {
  rank: number | null;
  profile_id: string | null;
  segment: string | null;
  public: number | null;
}

interface SiteVisitorRow extends VisitorRow {
  site_id: string;
  iv: number;
  secret: string;
}

function visitorFrom(rows: VisitorRow[], trustUserId: boolean): Visitor {
  const ranked = rows.filter((r) => r.profile_id !== null && (r.rank !== 0 || trustUserId));
  const best = ranked.reduce<VisitorRow | null>((a, r) => (a === null || (r.rank ?? 1) < (a.rank ?? 1) ? r : a), null);
  const profileId = best?.profile_id ?? null;
  const segments = new Set<string>();
  const publicSegments = new Set<string>();
  for (const r of rows) {
    if (profileId === null || r.profile_id !== profileId || r.segment === null) continue;
    segments.add(r.segment);
    if (r.public) publicSegments.add(r.segment);
  }
  return {
    profileId,
    segments,
    publicSegments: [...publicSegments].sort(),
  };
}

/** Resolves a visitor's profile and segments (one D1 read). An untrusted userId is ignored. */
export async function resolveVisitor(d1: D1Database, ids: VisitorIds): Promise<Visitor> {
  if (!ids.userId && !ids.anonymousId) return UNKNOWN_VISITOR;
  const { results } = await d1.prepare(VISITOR_SQL).bind(ids.userId, ids.anonymousId).all<VisitorRow>();
  return visitorFrom(results, true);
}

export interface SiteVisitor {
  siteId: string;
  visitor: Visitor;
  /** Whether the request's userId was used (and may be attached to exposure events). */
  userIdTrusted: boolean;
  /** True when a valid userHash proved the userId (identity verification). */
  verified: boolean;
}

/**
 * Authenticates a write key and resolves the visitor in one D1 read; null for an unknown key.
 * On sites with identity verification, a userId counts only with a valid `userHash`
 * (hex HMAC-SHA256 of the userId with the site's secret): otherwise anyone holding the public
 * write key could ask which variants — and so which segments — a named user gets.
 */
export async function resolveSiteVisitor(
  d1: D1Database,
  writeKey: string,
  ids: VisitorIds,
  userHash: string | null,
): Promise<SiteVisitor | null> {
  const { results } = await d1
    .prepare(SITE_AND_VISITOR_SQL)
    .bind(writeKey, ids.userId, ids.anonymousId)
    .all<SiteVisitorRow>();
  const site = results[0];
  if (!site) return null;
  let verified = false;
  if (ids.userId && userHash)
    verified = timingSafeEqual(userHash.toLowerCase(), await hmacHex(site.secret, ids.userId));
  const userIdTrusted = ids.userId !== null && (!site.iv || verified);
  return { siteId: site.site_id, visitor: visitorFrom(results, userIdTrusted), userIdTrusted, verified };
}

async function hmacHex(secret: string, message: string): Promise<string> {
  const enc = new TextEncoder();
  const key = await crypto.subtle.importKey("raw", enc.encode(secret), { name: "HMAC", hash: "SHA-256" }, false, [
    "sign",
  ]);
  const mac = await crypto.subtle.sign("HMAC", key, enc.encode(message));
  return [...new Uint8Array(mac)].map((b) => b.toString(16).padStart(2, "0")).join("");
}

/** Rejects after `ms` unless `promise` settles first (decisions must stay fast even when D1 is not). */
export function withDeadline<T>(promise: Promise<T>, ms: number): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | null = null;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`deadline of ${ms} ms exceeded`)), ms);
  });
  return Promise.race([promise, deadline]).finally(() => clearTimeout(timer));
}

/**
 * The visitor a profile id stands for (preview as contact): the live profile behind it and its
 * segments. Null when no such profile exists.
 */
export async function profileVisitor(d1: D1Database, profileId: string): Promise<Visitor | null> {
  const { results } = await d1
    .prepare(
      `SELECT COALESCE(p.merged_into, p.id) AS profile_id, m.segment_key AS segment, g.public AS public
         FROM profiles p
         LEFT JOIN memberships m ON m.profile_id = COALESCE(p.merged_into, p.id)
         LEFT JOIN segments g ON g.key = m.segment_key
        WHERE p.id = ?`,
    )
    .bind(profileId)
    .all<VisitorRow>();
  if (results.length === 0) return null;
  return visitorFrom(
    results.map((r) => ({ ...r, rank: 0 })),
    true,
  );
}
