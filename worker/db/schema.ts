/**
 * The D1 schema: the single source of truth for every table. drizzle-kit generates the SQL
 * migrations in `migrations/` from this file (`npm run db:generate`); wrangler applies them.
 *
 * Conventions: ids are prefixed random strings (`prf_…`, `site_…`); times are integer
 * milliseconds since the epoch (cheap to compare and index); JSON columns hold objects that the
 * worker validates on the way in.
 */
import { sql } from "drizzle-orm";
import {
  check,
  index,
  integer,
  numeric,
  primaryKey,
  real,
  sqliteTable,
  text,
  uniqueIndex,
} from "drizzle-orm/sqlite-core";

const json = <T>(name: string) => text(name, { mode: "json" }).$type<T>();
const createdAt = () => integer("created_at").notNull();

/** A source of events: one website or app, with its public write key. */
export const sites = sqliteTable(
  "sites",
  {
    id: text("id").primaryKey(),
    name: text("name").notNull(),
    // Public by design (it ships in the page); it can only send events and ask for decisions.
    writeKey: text("write_key").notNull(),
    allowedOrigins: json<string[]>("allowed_origins").notNull().default(sql`'[]'`),
    // Edge rewriting: the origin the worker proxies for this site (personalize/proxy).
    originUrl: text("origin_url"),
    // Edge rewriting in production: the hostname (e.g. `www.shop.example`) whose every request the
    // worker proxies to `originUrl`, so the proxied site never shares an origin with the dashboard.
    proxyHost: text("proxy_host"),
    // Identity verification (Intercom-style userHash); the secret never leaves the API once shown.
    identityVerification: integer("identity_verification", { mode: "boolean" }).notNull().default(false),
    verificationSecret: text("verification_secret").notNull(),
    // Per-site identity policy overrides: custom identifier types, blocklist additions.
    identityPolicy: json<Record<string, unknown>>("identity_policy").notNull().default(sql`'{}'`),
    createdAt: createdAt(),
    updatedAt: integer("updated_at").notNull(),
  },
  (t) => [
    // Every /v1 request: authenticate the write key.
    uniqueIndex("sites_write_key_uq").on(t.writeKey),
    // Every request's first step (personalize/hosts.ts `siteForHost`): is this Host a proxied site?
    // Unique: one hostname proxies to one site (NULLs, sites without a proxy host, do not collide).
    uniqueIndex("sites_proxy_host_uq").on(t.proxyHost),
  ],
);

/** Dashboard users (the CRM's people, not the tracked ones). */
export const users = sqliteTable(
  "users",
  {
    id: text("id").primaryKey(),
    email: text("email").notNull(),
    name: text("name"),
    role: text("role", { enum: ["admin", "marketer", "viewer"] }).notNull(),
    passwordHash: text("password_hash").notNull(),
    passwordSalt: text("password_salt").notNull(),
    failedLogins: integer("failed_logins").notNull().default(0),
    lockedUntil: integer("locked_until"),
    createdAt: createdAt(),
    updatedAt: integer("updated_at").notNull(),
  },
  (t) => [
    // Sign-in: find the user by email.
    uniqueIndex("users_email_uq").on(t.email),
  ],
);

/** Dashboard sessions; the cookie carries a random token whose SHA-256 is the id. */
export const sessions = sqliteTable(
  "sessions",
  {
    id: text("id").primaryKey(),
    userId: text("user_id").notNull(),
    csrfToken: text("csrf_token").notNull(),
    expiresAt: integer("expires_at").notNull(),
    createdAt: createdAt(),
  },
  (t) => [
    // Deleting a user ends all of their sessions.
    index("sessions_user_idx").on(t.userId),
  ],
);

/**
 * A unified person. A merged-away profile keeps its row with `mergedInto` set so that old ids
 * still resolve; its data moves to the survivor.
 */
export const profiles = sqliteTable(
  "profiles",
  {
    id: text("id").primaryKey(),
    mergedInto: text("merged_into"),
    traits: json<Record<string, unknown>>("traits").notNull().default(sql`'{}'`),
    // Per-trait provenance: { trait: { t: event time ms, s: source } }; newer event time wins.
    traitMeta: json<Record<string, { t: number; s: string }>>("trait_meta").notNull().default(sql`'{}'`),
    computed: json<Record<string, unknown>>("computed").notNull().default(sql`'{}'`),
    // Daily event counts per matcher segments use, `{ matcherId: [[day, count, lastAt], …] }`
    // (segments/counters.ts). In this row because every event rewrites it anyway: a counter
    // table cost a row written per event.
    counters: text("counters").notNull().default("{}"),
    // Denormalised for listing and search (kept in step with traits by the pipeline).
    email: text("email"),
    name: text("name"),
    identified: integer("identified", { mode: "boolean" }).notNull().default(false),
    companyId: text("company_id"),
    // CRM fields.
    lifecycleStage: text("lifecycle_stage"),
    ownerId: text("owner_id"),
    tags: json<string[]>("tags").notNull().default(sql`'[]'`),
    mergeCount: integer("merge_count").notNull().default(0),
    firstSeenAt: integer("first_seen_at"),
    // Exact; every view shows this one.
    lastSeenAt: integer("last_seen_at"),
    // The last-seen *sort* key: last_seen_at as it was when it last moved by 10 minutes or more
    // (profiles/state.ts `lastSeenSortAfter`), so last_seen_at − 10 min < last_seen_sort ≤
    // last_seen_at. Page views inside a visit change last_seen_at but not this column, and SQLite
    // only rewrites an index whose columns an UPDATE sets: contacts_last_seen_idx is keyed here,
    // so they don't touch it. Triggers (migration 0012) keep it for writers that only set
    // last_seen_at; NULL exactly when last_seen_at is NULL.
    lastSeenSort: integer("last_seen_sort"),
    createdAt: createdAt(),
    updatedAt: integer("updated_at").notNull(),
  },
  (t) => [
    // Contacts search by email prefix.
    index("profiles_email_idx").on(t.email),
    // Contacts search by name prefix.
    index("profiles_name_idx").on(t.name),
    // /api/profiles?q=: case-insensitive name prefix (`lower(name) >= ? AND lower(name) < ?`).
    index("profiles_name_lower_idx").on(sql`lower(${t.name})`),
    // Contacts filter by lifecycle stage / owner.
    index("profiles_stage_idx").on(t.lifecycleStage),
    index("profiles_owner_idx").on(t.ownerId),
    // Contacts list (crm/list-sql.ts `sortKeys`): one index per sort, led by `merged_into` (the
    // list shows live profiles, `merged_into IS NULL`) and keyed by exactly the sort expressions,
    // so an unfiltered page is an index walk that stops after `limit` rows. CASE, not
    // ifnull/coalesce: drizzle-kit splits index expressions at commas.
    // contacts_last_seen_idx also serves /api/profiles (profiles/read.ts `listProfiles`, same sort
    // key) and `merged_into = ?` lookups. It is keyed by last_seen_sort, not last_seen_at, so a
    // page view rewrites its entry only when the visitor comes back after 10 minutes or more.
    index("contacts_last_seen_idx").on(
      t.mergedInto,
      sql`(CASE WHEN ${t.lastSeenSort} IS NULL THEN 0 ELSE ${t.lastSeenSort} END)`,
      t.id,
    ),
    index("contacts_created_idx").on(t.mergedInto, t.createdAt, t.id),
    index("contacts_name_idx").on(
      t.mergedInto,
      sql`(${t.name} IS NULL AND ${t.email} IS NULL)`,
      sql`(CASE WHEN ${t.name} IS NOT NULL THEN lower(${t.name}) WHEN ${t.email} IS NOT NULL THEN lower(${t.email}) ELSE '' END)`,
      t.id,
    ),
  ],
);

/**
 * CRM tags, one row per (tag, live contact): the index behind the contacts list's `?tag=` filter.
 * `profiles.tags` is the source of truth; triggers (migration 0005_profile_tags_sync) keep this
 * table in step on every insert, tag or merge change and delete of a profile. Measured at 100k
 * profiles, a rare tag costs ~1 ms here against ~150 ms for `json_each(profiles.tags)`, which
 * must scan every profile.
 */
export const profileTags = sqliteTable(
  "profile_tags",
  {
    tag: text("tag").notNull(),
    profileId: text("profile_id").notNull(),
  },
  (t) => [
    // Contacts list ?tag=: the profiles carrying a tag.
    primaryKey({ columns: [t.tag, t.profileId] }),
    // Replacing a contact's tags; erasure: one profile's rows.
    index("profile_tags_profile_idx").on(t.profileId),
  ],
);

/**
 * One row per non-null top-level trait of a live profile, so a segment preview's trait condition
 * is an index range instead of parsing every profile's traits JSON. `profiles.traits` is the
 * source of truth; triggers (migration 0009_profile_traits_sync) keep this table exact on every
 * insert, traits or merge change and delete of a profile, writing only the keys whose value
 * changed. `type` is SQLite's `json_type`; `value_text` holds strings; `value_num` holds numbers,
 * and for strings that read as ISO dates their epoch ms (the date operators' value).
 */
export const profileTraits = sqliteTable(
  "profile_traits",
  {
    profileId: text("profile_id").notNull(),
    key: text("key").notNull(),
    type: text("type").notNull(),
    valueText: text("value_text"),
    // NUMERIC affinity keeps integers exact (REAL would round ones above 2^53).
    valueNum: numeric("value_num"),
  },
  (t) => [
    // Trigger maintenance and erasure: one profile's rows (and the per-key upsert).
    primaryKey({ columns: [t.profileId, t.key] }),
    // segments/sql.ts trait conditions on strings: eq / in / starts_with ranges, contains and
    // ends_with over one key, exists; covering (profile_id last), so no table lookups.
    index("profile_traits_text_idx").on(t.key, t.valueText, t.profileId),
    // segments/sql.ts numeric and date conditions: `key = ? AND type IN (…) AND value_num < ?`.
    index("profile_traits_num_idx").on(t.key, t.type, t.valueNum, t.profileId),
  ],
);

/** The identity graph: each typed identifier belongs to exactly one profile. */
export const identities = sqliteTable(
  "identities",
  {
    type: text("type").notNull(),
    value: text("value").notNull(),
    profileId: text("profile_id").notNull(),
    // The event that attached it (for unmerge and audit).
    sourceMessageId: text("source_message_id"),
    createdAt: createdAt(),
  },
  (t) => [
    // Stitching and /api/profiles/lookup: resolve an identifier to its profile.
    primaryKey({ columns: [t.type, t.value] }),
    // A profile's identities (360° view, merges, erasure).
    index("identities_profile_idx").on(t.profileId),
    // Search by any identifier value.
    index("identities_value_idx").on(t.value),
  ],
);

/** Every merge, so that it can be explained and undone. */
export const profileMerges = sqliteTable(
  "profile_merges",
  {
    id: text("id").primaryKey(),
    winnerId: text("winner_id").notNull(),
    loserId: text("loser_id").notNull(),
    messageId: text("message_id"),
    identifierType: text("identifier_type"),
    identifierValue: text("identifier_value"),
    // The loser's state just before the merge (traits, computed, identities) for unmerge.
    snapshot: json<Record<string, unknown>>("snapshot").notNull(),
    // Who asked for a manual merge (a dashboard user id, or `token`); null when an event caused it.
    actor: text("actor"),
    createdAt: createdAt(),
    undoneAt: integer("undone_at"),
  },
  (t) => [
    // Profile view (mergedFrom) and unmerge: merges into a profile.
    index("profile_merges_winner_idx").on(t.winnerId),
  ],
);

/** Links the stitcher refused (policy conflicts, blocklisted values): visible, never silent. */
export const identityWarnings = sqliteTable(
  "identity_warnings",
  {
    id: text("id").primaryKey(),
    profileId: text("profile_id"),
    messageId: text("message_id"),
    identifierType: text("identifier_type").notNull(),
    identifierValue: text("identifier_value").notNull(),
    reason: text("reason").notNull(),
    createdAt: createdAt(),
  },
  (t) => [
    // Profile view: warnings about a profile.
    index("identity_warnings_profile_idx").on(t.profileId),
  ],
);

/**
 * Never holds a row. D1 has no interactive transactions, so a writer that decided from an earlier
 * read puts a guard statement first in its atomic `batch()`: it inserts `ok = 0` when what it read
 * has changed since (a profile's `updated_at`, a new suppression), the CHECK fails, and the whole
 * batch rolls back; the writer reads and decides again (pipeline/process.ts, unmerge, erase).
 */
export const writeGuards = sqliteTable(
  "write_guards",
  {
    ok: integer("ok").notNull(),
  },
  () => [check("stale_read", sql`ok = 1`)],
);

/**
 * Raw events, kept for the timeline and for recomputation.
 *
 * A `WITHOUT ROWID` table since migration 0012 (drizzle-orm has no flag for it, so this
 * definition can't say so): the rows live in the `(site_id, message_id)` primary-key B-tree
 * itself, and storing an event writes 2 entries (that tree, events_profile_time_idx) instead of 3
 * (a rowid table plus its separate primary-key index). There is no rowid: the live debugger reads
 * `recent_events`. A change that makes drizzle-kit rebuild this table (`__new_events`) must have
 * `WITHOUT ROWID` added to its CREATE TABLE by hand; test/pipeline/rows.test.ts fails otherwise.
 */
export const events = sqliteTable(
  "events",
  {
    siteId: text("site_id").notNull(),
    messageId: text("message_id").notNull(),
    profileId: text("profile_id").notNull(),
    type: text("type").notNull(),
    event: text("event"),
    properties: json<Record<string, unknown>>("properties").notNull().default(sql`'{}'`),
    traits: json<Record<string, unknown>>("traits"),
    context: json<Record<string, unknown>>("context").notNull().default(sql`'{}'`),
    userId: text("user_id"),
    anonymousId: text("anonymous_id"),
    // page/screen name, group's groupId, alias's previousId: kept so the raw event stays whole.
    name: text("name"),
    groupId: text("group_id"),
    previousId: text("previous_id"),
    timestamp: integer("timestamp").notNull(),
    receivedAt: integer("received_at").notNull(),
    flags: json<string[]>("flags"),
  },
  (t) => [
    // Dedupe: a (site, messageId) takes effect once. Also the clustering key (WITHOUT ROWID), so
    // the dedupe read, the debugger's lookups and the CSV import report's range scan
    // (crm/imports.ts) read rows straight from it.
    primaryKey({ columns: [t.siteId, t.messageId] }),
    // Profile timeline, newest first (profiles/read.ts `eventsOf`), and a profile's events for
    // previews and erasure. (The debugger reads `recent_events` and the overview reads `metrics`,
    // so no further index taxes every insert.)
    index("events_profile_time_idx").on(t.profileId, t.timestamp),
    // Slot stats (personalize/stats): one slot's exposures in a time range. Partial, so only
    // `Personalization Viewed` rows pay for it on insert.
    index("events_exposure_idx")
      .on(sql`properties ->> '$.slot'`, t.timestamp)
      .where(sql`event = 'Personalization Viewed'`),
  ],
);

/**
 * The live event debugger's feed (events/recent.ts): a ring of the keys of the latest stored
 * events, one row per consumer batch (per 100 events of a batch), written in the batch's own
 * atomic write. Once the ring holds `RING_ROWS` rows the oldest row is recycled under the next
 * `seq`, so it costs 1 row written per batch rather than 1 index entry per event. `seq` grows by
 * one per row, never repeats, and is the feed's cursor.
 */
export const recentEvents = sqliteTable("recent_events", {
  // INTEGER PRIMARY KEY: the rowid itself, so max(seq) and min(seq) are O(1) and no index is kept.
  seq: integer("seq").primaryKey(),
  // [[site_id, message_id, type], …], newest first (the reverse of the order the batch stored them).
  keys: json<[string, string, string][]>("keys").notNull(),
});

/**
 * Running totals kept by the pipeline per consumer batch (`/api/stats`, the overview chart), so
 * that dashboards never count millions of rows. `day` is days since the epoch; 0 holds all-time
 * totals, except for `events`, whose total is the sum of its days (one row fewer per batch).
 * WITHOUT ROWID since migration 0013 (drizzle can't say so): a new day's row is one entry, not a
 * row plus its primary-key index entry.
 */
export const metrics = sqliteTable(
  "metrics",
  {
    name: text("name").notNull(),
    day: integer("day").notNull(),
    value: integer("value").notNull(),
  },
  (t) => [primaryKey({ columns: [t.name, t.day] })],
);

/** Messages that failed validation, with the reason, so nothing disappears silently. */
export const rejectedEvents = sqliteTable(
  "rejected_events",
  {
    id: text("id").primaryKey(),
    siteId: text("site_id"),
    reason: text("reason").notNull(),
    payload: text("payload").notNull(),
    receivedAt: integer("received_at").notNull(),
  },
  (t) => [
    // /api/rejected: newest first.
    index("rejected_events_received_idx").on(t.receivedAt),
  ],
);

/** Queue messages that exhausted their retries (the dead-letter consumer writes them here). */
export const deadLetters = sqliteTable(
  "dead_letters",
  {
    id: text("id").primaryKey(),
    queue: text("queue").notNull(),
    body: text("body").notNull(),
    createdAt: createdAt(),
  },
  (t) => [
    // /api/dead-letters: newest first.
    index("dead_letters_created_idx").on(t.createdAt),
  ],
);

/** Identifiers of erased people (SHA-256 of type:value): events carrying them are dropped. */
export const suppressions = sqliteTable("suppressions", {
  hash: text("hash").primaryKey(),
  createdAt: createdAt(),
});

/** Companies / accounts from `group` calls. */
export const groups = sqliteTable("groups", {
  id: text("id").primaryKey(),
  traits: json<Record<string, unknown>>("traits").notNull().default(sql`'{}'`),
  createdAt: createdAt(),
  updatedAt: integer("updated_at").notNull(),
});

/** Audience definitions: a JSON rule plus what it depends on. */
export const segments = sqliteTable("segments", {
  key: text("key").primaryKey(),
  name: text("name").notNull(),
  description: text("description"),
  rule: json<unknown>("rule").notNull(),
  // Trait names, computed names, matchers and segment keys the rule reads.
  dependencies: json<Record<string, string[]>>("dependencies").notNull().default(sql`'{}'`),
  // Public segments may be named in personalization responses.
  public: integer("public", { mode: "boolean" }).notNull().default(false),
  version: integer("version").notNull().default(1),
  createdAt: createdAt(),
  updatedAt: integer("updated_at").notNull(),
});

export const memberships = sqliteTable(
  "memberships",
  {
    segmentKey: text("segment_key").notNull(),
    profileId: text("profile_id").notNull(),
    enteredAt: integer("entered_at").notNull(),
    // When a time window may lapse without any new event (cron re-evaluation).
    nextCheckAt: integer("next_check_at"),
  },
  (t) => [
    // Members of a segment, counts.
    primaryKey({ columns: [t.segmentKey, t.profileId] }),
    // A profile's segments (personalization, 360° view).
    index("memberships_profile_idx").on(t.profileId),
    // Cron: memberships whose window may have lapsed.
    index("memberships_next_check_idx").on(t.nextCheckAt),
  ],
);

/** Enter/exit history. */
export const membershipChanges = sqliteTable(
  "membership_changes",
  {
    id: text("id").primaryKey(),
    segmentKey: text("segment_key").notNull(),
    profileId: text("profile_id").notNull(),
    change: text("change", { enum: ["entered", "exited"] }).notNull(),
    at: integer("at").notNull(),
  },
  (t) => [
    // Segment history page.
    index("membership_changes_segment_idx").on(t.segmentKey, t.at),
    // Profile history.
    index("membership_changes_profile_idx").on(t.profileId, t.at),
  ],
);

/** Pending re-checks for profiles whose window conditions may change without an event. */
export const segmentChecks = sqliteTable(
  "segment_checks",
  {
    segmentKey: text("segment_key").notNull(),
    profileId: text("profile_id").notNull(),
    checkAt: integer("check_at").notNull(),
  },
  (t) => [
    primaryKey({ columns: [t.segmentKey, t.profileId] }),
    // Cron: due checks.
    index("segment_checks_due_idx").on(t.checkAt),
  ],
);

/** Personalization placements. */
export const slots = sqliteTable("slots", {
  key: text("key").primaryKey(),
  defaultContent: json<unknown>("default_content").notNull(),
  rules: json<unknown[]>("rules").notNull().default(sql`'[]'`),
  holdout: real("holdout").notNull().default(0),
  startsAt: integer("starts_at"),
  endsAt: integer("ends_at"),
  goalEvent: text("goal_event"),
  createdAt: createdAt(),
  updatedAt: integer("updated_at").notNull(),
});

/** Webhook destinations. */
export const destinations = sqliteTable("destinations", {
  id: text("id").primaryKey(),
  name: text("name").notNull(),
  url: text("url").notNull(),
  secret: text("secret").notNull(),
  segments: json<string[]>("segments").notNull().default(sql`'[]'`),
  events: json<string[]>("events").notNull().default(sql`'[]'`),
  enabled: integer("enabled", { mode: "boolean" }).notNull().default(true),
  createdAt: createdAt(),
  updatedAt: integer("updated_at").notNull(),
});

/** The webhook outbox and delivery log. */
export const deliveries = sqliteTable(
  "deliveries",
  {
    // The Standard Webhooks `webhook-id`: stable per change so receivers can dedupe.
    id: text("id").primaryKey(),
    destinationId: text("destination_id").notNull(),
    type: text("type").notNull(),
    payload: text("payload").notNull(),
    status: text("status", { enum: ["pending", "delivered", "retrying", "failed"] }).notNull(),
    attempts: integer("attempts").notNull().default(0),
    lastStatus: integer("last_status"),
    lastError: text("last_error"),
    nextAttemptAt: integer("next_attempt_at"),
    createdAt: createdAt(),
    updatedAt: integer("updated_at").notNull(),
  },
  (t) => [
    // Delivery log per destination, newest first.
    index("deliveries_destination_idx").on(t.destinationId, t.createdAt),
    // Erasure (profiles/privacy.ts): the deliveries whose payload names an erased profile,
    // without scanning the whole log inside the erasing batch.
    index("deliveries_profile_idx").on(sql`payload ->> '$.data.profile.id'`),
    // Outbox relay: pending deliveries that are due.
    index("deliveries_due_idx").on(t.status, t.nextAttemptAt),
  ],
);

/** CRM notes on a contact. */
export const notes = sqliteTable(
  "notes",
  {
    id: text("id").primaryKey(),
    profileId: text("profile_id").notNull(),
    authorId: text("author_id"),
    body: text("body").notNull(),
    createdAt: createdAt(),
  },
  (t) => [
    // Contact page: a profile's notes, newest first.
    index("notes_profile_idx").on(t.profileId, t.createdAt),
  ],
);

/** CRM tasks on a contact. */
export const tasks = sqliteTable(
  "tasks",
  {
    id: text("id").primaryKey(),
    profileId: text("profile_id").notNull(),
    title: text("title").notNull(),
    dueAt: integer("due_at"),
    done: integer("done", { mode: "boolean" }).notNull().default(false),
    createdBy: text("created_by"),
    createdAt: createdAt(),
    updatedAt: integer("updated_at").notNull(),
  },
  (t) => [
    // Contact page: a profile's tasks.
    index("tasks_profile_idx").on(t.profileId),
  ],
);

/**
 * CSV imports. Rows travel as identify events with messageIds `<import id>:<row>`, so the report
 * (created / merged / pending) is computed from `events` with one range scan on its primary key
 * and frozen here once every accepted row was processed.
 */
export const imports = sqliteTable(
  "imports",
  {
    // `imp_` + a hash of site, mapping and file: the same import sent twice is the same import.
    id: text("id").primaryKey(),
    siteId: text("site_id").notNull(),
    createdBy: text("created_by"),
    totalRows: integer("total_rows").notNull(),
    accepted: integer("accepted").notNull(),
    rejectedCount: integer("rejected_count").notNull(),
    // The first 1,000 rejected rows with their reason.
    rejected: json<{ row: number; reason: string }[]>("rejected").notNull().default(sql`'[]'`),
    created: integer("created"),
    merged: integer("merged"),
    completedAt: integer("completed_at"),
    createdAt: createdAt(),
  },
  (t) => [
    // GET /api/imports: newest first.
    index("imports_created_idx").on(t.createdAt),
  ],
);
