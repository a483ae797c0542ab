/**
 * Profile reads for the API: resolving old ids, the 360° view, search and the event timeline.
 * Raw prepared statements, each served by an index (named next to each query).
 */
import { z } from "zod";
import { computedJson } from "./computed";
import { type Profile, type ProfileRow, profileFromRow } from "./state";

/** Follows `merged_into` to the surviving profile (chains are kept one hop long; 10 is a guard). */
export async function resolveProfile(db: D1Database, id: string): Promise<Profile | null> {
  let current = id;
  for (let hop = 0; hop < 10; hop++) {
    const row = await db.prepare("SELECT * FROM profiles WHERE id = ?").bind(current).first<ProfileRow>();
    if (!row) return null;
    if (!row.merged_into) return profileFromRow(row);
    current = row.merged_into;
  }
  return null;
}

/** A live profile's ids: its own and every id merged into it (contacts_last_seen_idx's prefix). */
export async function idSetOf(db: D1Database, liveId: string): Promise<string[]> {
  const { results } = await db
    .prepare("SELECT id FROM profiles WHERE merged_into = ? ORDER BY id")
    .bind(liveId)
    .all<{ id: string }>();
  return [liveId, ...results.map((r) => r.id)];
}

const iso = (ms: number | null) => (ms === null ? null : new Date(ms).toISOString());

export const warningSchema = z.object({
  identifierType: z.string(),
  identifierValue: z.string(),
  reason: z.string(),
  messageId: z.string().nullable(),
  createdAt: z.string(),
});

export const profileSchema = z.object({
  id: z.string(),
  traits: z.record(z.string(), z.unknown()),
  /** When and from where each trait's value came (`at`: event time; `source`: site id). */
  traitSources: z.record(
    z.string(),
    z.object({ at: z.string(), source: z.string(), messageId: z.string().nullable() }),
  ),
  identities: z.array(z.object({ type: z.string(), value: z.string() })),
  computed: z.record(z.string(), z.unknown()),
  segments: z.array(z.string()),
  company: z.object({ id: z.string(), traits: z.record(z.string(), z.unknown()) }).nullable(),
  email: z.string().nullable(),
  name: z.string().nullable(),
  identified: z.boolean(),
  lifecycleStage: z.string().nullable(),
  ownerId: z.string().nullable(),
  tags: z.array(z.string()),
  firstSeenAt: z.string().nullable(),
  lastSeenAt: z.string().nullable(),
  createdAt: z.string(),
  updatedAt: z.string(),
  mergedFrom: z.array(z.string()),
  warnings: z.array(warningSchema),
});
export type ProfileJson = z.infer<typeof profileSchema>;

const parseRecord = (text: string | null): Record<string, unknown> => {
  try {
    const value = text ? JSON.parse(text) : {};
    return typeof value === "object" && value !== null && !Array.isArray(value) ? value : {};
  } catch {
    return {};
  }
};

/** Builds the 360° view of a live profile in one round trip. */
export async function profileJson(db: D1Database, p: Profile): Promise<ProfileJson> {
  const [identities, segments, company, merged, warnings] = await db.batch<Record<string, unknown>>([
    // identities_profile_idx
    db.prepare("SELECT type, value FROM identities WHERE profile_id = ? ORDER BY type, value LIMIT 1000").bind(p.id),
    // memberships_profile_idx
    db.prepare("SELECT segment_key FROM memberships WHERE profile_id = ? ORDER BY segment_key").bind(p.id),
    db.prepare("SELECT id, traits FROM groups WHERE id = ?").bind(p.companyId),
    // contacts_last_seen_idx (merged_into prefix)
    db.prepare("SELECT id FROM profiles WHERE merged_into = ? ORDER BY id").bind(p.id),
    // identity_warnings_profile_idx, over the profile's id set
    db
      .prepare(
        `SELECT identifier_type, identifier_value, reason, message_id, created_at FROM identity_warnings
         WHERE profile_id = ?1 OR profile_id IN (SELECT id FROM profiles WHERE merged_into = ?1)
         ORDER BY created_at DESC LIMIT 20`,
      )
      .bind(p.id),
  ]);
  const companyRow = company.results[0] as { id: string; traits: string } | undefined;
  return {
    id: p.id,
    traits: p.traits,
    traitSources: Object.fromEntries(
      Object.entries(p.traitMeta).map(([name, s]) => [
        name,
        { at: new Date(s.t).toISOString(), source: s.s, messageId: s.m ?? null },
      ]),
    ),
    identities: identities.results.map((r) => ({ type: String(r.type), value: String(r.value) })),
    computed: computedJson(p.computed),
    segments: segments.results.map((r) => String(r.segment_key)),
    company: companyRow ? { id: companyRow.id, traits: parseRecord(companyRow.traits) } : null,
    email: p.email,
    name: p.name,
    identified: p.identified,
    lifecycleStage: p.lifecycleStage,
    ownerId: p.ownerId,
    tags: p.tags,
    firstSeenAt: iso(p.firstSeenAt),
    lastSeenAt: iso(p.lastSeenAt),
    createdAt: new Date(p.createdAt).toISOString(),
    updatedAt: new Date(p.updatedAt).toISOString(),
    mergedFrom: merged.results.map((r) => String(r.id)),
    warnings: warnings.results.map((r) => ({
      identifierType: String(r.identifier_type),
      identifierValue: String(r.identifier_value),
      reason: String(r.reason),
      messageId: (r.message_id as string | null) ?? null,
      createdAt: new Date(Number(r.created_at)).toISOString(),
    })),
  };
}

/** Opaque keyset cursors: base64url of a small JSON array. */
export function encodeCursor(parts: unknown[]): string {
  return btoa(JSON.stringify(parts)).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

export function decodeCursor<T extends z.ZodType>(
  cursor: string | undefined,
  schema: T,
): z.output<T> | null | undefined {
  if (cursor === undefined) return undefined;
  try {
    const parsed = schema.safeParse(JSON.parse(atob(cursor.replace(/-/g, "+").replace(/_/g, "/"))));
    return parsed.success ? parsed.data : null;
  } catch {
    return null;
  }
}

export const profileSummarySchema = z.object({
  id: z.string(),
  email: z.string().nullable(),
  name: z.string().nullable(),
  identified: z.boolean(),
  lifecycleStage: z.string().nullable(),
  companyId: z.string().nullable(),
  firstSeenAt: z.string().nullable(),
  lastSeenAt: z.string().nullable(),
  createdAt: z.string(),
});

export const listCursorSchema = z.tuple([z.number().nullable(), z.string().max(100)]);

export interface ListQuery {
  q?: string;
  segment?: string;
  limit: number;
  cursor?: z.infer<typeof listCursorSchema>;
}

/**
 * The list's sort key: contacts_last_seen_idx's expression (never-seen profiles sort as 0, last).
 * It is last seen at 10-minute resolution (`last_seen_sort`, see crm/list-sql.ts `sortKeys`), so
 * profiles seen less than 10 minutes apart may come in either order; ties break on id.
 */
const LAST_SEEN_KEY = "(CASE WHEN p.last_seen_sort IS NULL THEN 0 ELSE p.last_seen_sort END)";

/**
 * The statement listing live profiles, newest activity first, keyset-paginated on (last seen sort key, id). Without a search the
 * order walks contacts_last_seen_idx (merged_into IS NULL, the same sort key, id) and stops after
 * a page. A search drives the query instead: candidate ids from prefix ranges on
 * profiles_email_idx, profiles_name_lower_idx and identities_value_idx, each probed on the
 * primary key (CROSS JOIN fixes that order), and only those few rows are sorted; walking the sort
 * index and probing the candidate list per row cost a full scan of live profiles (540 ms at 200k).
 */
export function listProfilesSql(query: ListQuery): { sql: string; params: unknown[] } {
  const where = ["p.merged_into IS NULL"];
  const params: unknown[] = [];
  const bind = (value: unknown) => {
    params.push(value);
    return `?${params.length}`;
  };
  let from = "profiles p";
  if (query.q) {
    const raw = query.q.trim();
    const lower = raw.toLowerCase();
    // Prefix ranges: [q, q + U+FFFF) holds every string that starts with q, and uses the index.
    const lo = bind(lower);
    const hi = bind(`${lower}\uffff`);
    const rawLo = bind(raw);
    const rawHi = bind(`${raw}\uffff`);
    from = `(SELECT id FROM profiles WHERE email >= ${lo} AND email < ${hi}
      UNION SELECT id FROM profiles WHERE lower(name) >= ${lo} AND lower(name) < ${hi}
      UNION SELECT profile_id FROM identities WHERE value >= ${rawLo} AND value < ${rawHi}
      UNION SELECT profile_id FROM identities WHERE value >= ${lo} AND value < ${hi}) AS m
      CROSS JOIN profiles p ON p.id = m.id`;
  }
  if (query.segment)
    where.push(`p.id IN (SELECT profile_id FROM memberships WHERE segment_key = ${bind(query.segment)})`);
  if (query.cursor) {
    const [t, id] = query.cursor;
    where.push(`(${LAST_SEEN_KEY}, p.id) < (${bind(t ?? 0)}, ${bind(id)})`);
  }
  const sql = `SELECT p.id, p.email, p.name, p.identified, p.lifecycle_stage, p.company_id, p.first_seen_at,
      p.last_seen_at, ${LAST_SEEN_KEY} AS sort_key, p.created_at FROM ${from} WHERE ${where.join(" AND ")}
    ORDER BY ${LAST_SEEN_KEY} DESC, p.id DESC LIMIT ${bind(query.limit + 1)}`;
  return { sql, params };
}

/** A page of `listProfilesSql`'s rows, with the cursor of the next page. */
export async function listProfiles(db: D1Database, query: ListQuery) {
  const { sql, params } = listProfilesSql(query);
  const { results } = await db
    .prepare(sql)
    .bind(...params)
    .all<{
      id: string;
      email: string | null;
      name: string | null;
      identified: number;
      lifecycle_stage: string | null;
      company_id: string | null;
      first_seen_at: number | null;
      last_seen_at: number | null;
      sort_key: number;
      created_at: number;
    }>();
  const page = results.slice(0, query.limit);
  const last = page.at(-1);
  return {
    items: page.map((r) => ({
      id: r.id,
      email: r.email,
      name: r.name,
      identified: Boolean(r.identified),
      lifecycleStage: r.lifecycle_stage,
      companyId: r.company_id,
      firstSeenAt: iso(r.first_seen_at),
      lastSeenAt: iso(r.last_seen_at),
      createdAt: new Date(r.created_at).toISOString(),
    })),
    nextCursor: results.length > query.limit && last ? encodeCursor([last.sort_key, last.id]) : null,
  };
}

export const eventItemSchema = z.object({
  messageId: z.string(),
  siteId: z.string(),
  profileId: z.string(),
  type: z.string(),
  event: z.string().nullable(),
  name: z.string().nullable(),
  properties: z.record(z.string(), z.unknown()),
  traits: z.record(z.string(), z.unknown()).nullable(),
  context: z.record(z.string(), z.unknown()),
  userId: z.string().nullable(),
  anonymousId: z.string().nullable(),
  groupId: z.string().nullable(),
  previousId: z.string().nullable(),
  timestamp: z.string(),
  receivedAt: z.string(),
  flags: z.array(z.string()),
});

export const eventCursorSchema = z.tuple([z.number(), z.string().max(200), z.string().max(100)]);

/** An `events` row as D1 returns it for EVENT_COLUMNS. */
export interface EventRow {
  site_id: string;
  message_id: string;
  profile_id: string;
  type: string;
  event: string | null;
  name: string | null;
  properties: string;
  traits: string | null;
  context: string;
  user_id: string | null;
  anonymous_id: string | null;
  group_id: string | null;
  previous_id: string | null;
  timestamp: number;
  received_at: number;
  flags: string | null;
}

/** An events row as the API shows it (ISO times, parsed JSON). */
export function eventItem(r: EventRow): z.infer<typeof eventItemSchema> {
  const flags = r.flags ? (JSON.parse(r.flags) as unknown) : [];
  return {
    messageId: r.message_id,
    siteId: r.site_id,
    profileId: r.profile_id,
    type: r.type,
    event: r.event,
    name: r.name,
    properties: parseRecord(r.properties),
    traits: r.traits === null ? null : parseRecord(r.traits),
    context: parseRecord(r.context),
    userId: r.user_id,
    anonymousId: r.anonymous_id,
    groupId: r.group_id,
    previousId: r.previous_id,
    timestamp: new Date(r.timestamp).toISOString(),
    receivedAt: new Date(r.received_at).toISOString(),
    flags: Array.isArray(flags) ? flags.map(String) : [],
  };
}

export const EVENT_COLUMNS = `site_id, message_id, profile_id, type, event, name, properties, traits, context, user_id,
  anonymous_id, group_id, previous_id, timestamp, received_at, flags`;
const IDS_PER_STATEMENT = 90;

/**
 * A profile's events across its id set, newest first. Each id is read through
 * events_profile_time_idx with its own LIMIT (a UNION ALL of per-id slices), so a page costs
 * O(ids × limit), never a sort of the whole history.
 */
export async function eventsOf(
  db: D1Database,
  ids: string[],
  limit: number,
  cursor?: z.infer<typeof eventCursorSchema>,
) {
  const order = "ORDER BY timestamp DESC, message_id DESC, site_id DESC";
  const after = cursor
    ? "AND (timestamp < ?2 OR (timestamp = ?2 AND (message_id < ?3 OR (message_id = ?3 AND site_id < ?4))))"
    : "";
  const first = cursor ? 5 : 2;
  const statements: D1PreparedStatement[] = [];
  for (let i = 0; i < ids.length; i += IDS_PER_STATEMENT) {
    const part = ids.slice(i, i + IDS_PER_STATEMENT);
    const slices = part.map(
      (_, j) =>
        `SELECT * FROM (SELECT ${EVENT_COLUMNS} FROM events WHERE profile_id = ?${first + j} ${after} ${order} LIMIT ?1)`,
    );
    const sql = `${slices.join(" UNION ALL ")} ${order} LIMIT ?1`;
    const params: unknown[] = [limit + 1, ...(cursor ? cursor : []), ...part];
    statements.push(db.prepare(sql).bind(...params));
  }
  const results = await db.batch<EventRow>(statements);
  const rows = results
    .flatMap((r) => r.results)
    .sort(
      (a, b) =>
        b.timestamp - a.timestamp ||
        (a.message_id < b.message_id ? 1 : a.message_id > b.message_id ? -1 : 0) ||
        (a.site_id < b.site_id ? 1 : a.site_id > b.site_id ? -1 : 0),
    );
  const page = rows.slice(0, limit);
  const last = page.at(-1);
  return {
    items: page.map(eventItem),
    nextCursor: rows.length > limit && last ? encodeCursor([last.timestamp, last.message_id, last.site_id]) : null,
  };
}
