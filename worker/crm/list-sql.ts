/**
 * The contacts list as one SQL statement: filters, a sort over non-null keys, and keyset
 * pagination (`(k1, k2…) < (?, ?…)`), so page 1000 costs what page 1 costs.
 *
 * Plain SQL rather than the drizzle builder because the statement's shape is what keeps it fast
 * at 100k+ profiles (measured with `scripts/measure-contacts.mjs`, see the README):
 * - the sort keys are exactly the expressions of the `contacts_*` indexes on `profiles`, so an
 *   unfiltered page is an index walk that stops after `limit` rows;
 * - a filter *drives* the query (search, then tag, segment, stage, owner): the matching ids come
 *   from that filter's index (`CROSS JOIN` / `INDEXED BY` fix the plan) and only those rows are
 *   sorted. Walking the sort index and probing each row instead costs a full scan when the filter
 *   is rare (≈150 ms at 100k profiles for a rare tag, against ≈1 ms).
 */

export const contactSorts = ["last_seen", "created", "name"] as const;
export type ContactSort = (typeof contactSorts)[number];
export type SortValue = string | number;

/** The sort key expressions (over alias `p`); each list must match a `contacts_*` index (db/schema.ts). */
export const sortKeys: Record<ContactSort, string[]> = {
  // Last seen at 10-minute resolution: `last_seen_sort` (db/schema.ts) is last_seen_at as it was
  // when it last moved by 10 minutes or more, so a visit's page views don't rewrite the index.
  // The price: two contacts seen less than 10 minutes apart may be listed in either order (the
  // list shows the exact last_seen_at). Ties break on id, which keeps keyset pages stable.
  // Profiles that were never seen sort as the oldest (NULL would break the row-value comparison).
  last_seen: ["(CASE WHEN p.last_seen_sort IS NULL THEN 0 ELSE p.last_seen_sort END)", "p.id"],
  created: ["p.created_at", "p.id"],
  // The label a list shows (name, else email), case-insensitively; anonymous profiles after named ones.
  name: [
    "(p.name IS NULL AND p.email IS NULL)",
    "(CASE WHEN p.name IS NOT NULL THEN lower(p.name) WHEN p.email IS NOT NULL THEN lower(p.email) ELSE '' END)",
    "p.id",
  ],
};

export interface ContactListFilters {
  q?: string;
  segment?: string;
  stage?: string;
  /** A user id, or `none` for contacts without an owner. */
  owner?: string;
  tag?: string;
  sort: ContactSort;
  order: "asc" | "desc";
  limit: number;
  /** The sort key of the last row of the previous page. */
  after?: SortValue[];
}

/** Upper bound for a prefix range: every string starting with `prefix` sorts below it. */
export const prefixEnd = (prefix: string) => `${prefix}\u{10FFFF}`;

export const contactColumns =
  "p.id, p.email, p.name, p.lifecycle_stage, p.owner_id, p.tags, p.identified, p.first_seen_at, p.last_seen_at, p.created_at, p.updated_at";

/** Builds the statement; the caller binds `params` in order. */
export function contactListSql(f: ContactListFilters): { sql: string; params: SortValue[] } {
  const params: SortValue[] = [];
  const where = ["p.merged_into IS NULL"];
  let from: string;

  if (f.q) {
    const q = f.q;
    const lower = q.toLowerCase();
    // Emails are stored lower-cased by the pipeline; identifier values keep their case (user ids).
    from = `(SELECT id FROM profiles WHERE email >= ? AND email < ?
      UNION SELECT id FROM profiles WHERE lower(name) >= ? AND lower(name) < ?
      UNION SELECT profile_id FROM identities WHERE value >= ? AND value < ?
      UNION SELECT ?) AS m CROSS JOIN profiles AS p ON p.id = m.id`;
    params.push(lower, prefixEnd(lower), lower, prefixEnd(lower), q, prefixEnd(q), q);
  } else if (f.tag !== undefined) {
    from = "profile_tags AS t CROSS JOIN profiles AS p ON p.id = t.profile_id";
    where.push("t.tag = ?");
    params.push(f.tag);
  } else if (f.segment !== undefined) {
    from = "memberships AS s CROSS JOIN profiles AS p ON p.id = s.profile_id";
    where.push("s.segment_key = ?");
    params.push(f.segment);
  } else if (f.stage !== undefined) {
    // Without the hint SQLite prefers walking the sort index and filtering, which scans every
    // profile when the stage is rare; sorting the stage's rows is bounded by their number.
    from = "profiles AS p INDEXED BY profiles_stage_idx";
  } else if (f.owner !== undefined) {
    from = "profiles AS p INDEXED BY profiles_owner_idx";
  } else {
    from = "profiles AS p";
  }

  // Filters that did not drive the query become membership probes.
  if (f.tag !== undefined && f.q) {
    where.push("p.id IN (SELECT profile_id FROM profile_tags WHERE tag = ?)");
    params.push(f.tag);
  }
  if (f.segment !== undefined && (f.q || f.tag !== undefined)) {
    where.push("p.id IN (SELECT profile_id FROM memberships WHERE segment_key = ?)");
    params.push(f.segment);
  }
  if (f.stage !== undefined) {
    where.push("p.lifecycle_stage = ?");
    params.push(f.stage);
  }
  if (f.owner === "none") where.push("p.owner_id IS NULL");
  else if (f.owner !== undefined) {
    where.push("p.owner_id = ?");
    params.push(f.owner);
  }

  const keys = sortKeys[f.sort];
  const dir = f.order === "asc" ? "ASC" : "DESC";
  if (f.after) {
    if (f.after.length !== keys.length) throw new Error("cursor does not match the sort");
    where.push(`(${keys.join(", ")}) ${f.order === "asc" ? ">" : "<"} (${keys.map(() => "?").join(", ")})`);
    params.push(...f.after);
  }
  params.push(f.limit);
  const sql = `SELECT ${contactColumns}, ${keys.map((k, i) => `${k} AS k${i}`).join(", ")}
    FROM ${from}
    WHERE ${where.join(" AND ")}
    ORDER BY ${keys.map((k) => `${k} ${dir}`).join(", ")}
    LIMIT ?`;
  return { sql, params };
}
