/**
 * A profile as the pipeline and the API hold it in memory, read from a raw `profiles` row.
 */
import { jsonColumns, jsonRowStatements } from "../db/json-rows";
import { type Counters, parseCounters, serializeCounters } from "../segments/counters";
import { type Computed, parseComputed } from "./computed";
import type { TraitMeta } from "./traits";

/** A `profiles` row as D1 returns it for `SELECT *`. */
export interface ProfileRow {
  id: string;
  merged_into: string | null;
  traits: string;
  trait_meta: string;
  computed: string;
  counters: string;
  email: string | null;
  name: string | null;
  identified: number;
  company_id: string | null;
  lifecycle_stage: string | null;
  owner_id: string | null;
  tags: string;
  merge_count: number;
  first_seen_at: number | null;
  last_seen_at: number | null;
  last_seen_sort: number | null;
  created_at: number;
  updated_at: number;
}

export interface Profile {
  id: string;
  mergedInto: string | null;
  traits: Record<string, unknown>;
  traitMeta: TraitMeta;
  computed: Computed;
  /** Event counters of the matchers segments use (segments/counters.ts). */
  counters: Counters;
  email: string | null;
  name: string | null;
  identified: boolean;
  companyId: string | null;
  lifecycleStage: string | null;
  ownerId: string | null;
  tags: string[];
  mergeCount: number;
  firstSeenAt: number | null;
  lastSeenAt: number | null;
  /** The last-seen sort key as stored (see `lastSeenSortAfter`). */
  lastSeenSort: number | null;
  createdAt: number;
  updatedAt: number;
}

const isRecord = (v: unknown): v is Record<string, unknown> => typeof v === "object" && v !== null && !Array.isArray(v);

function parseJson(text: string | null): unknown {
  if (!text) return undefined;
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

function record(text: string | null): Record<string, unknown> {
  const value = parseJson(text);
  return isRecord(value) ? value : {};
}

function traitMeta(text: string | null): TraitMeta {
  const meta: TraitMeta = {};
  for (const [name, stamp] of Object.entries(record(text))) {
    if (isRecord(stamp) && typeof stamp.t === "number") {
      meta[name] = {
        t: stamp.t,
        s: typeof stamp.s === "string" ? stamp.s : "",
        ...(typeof stamp.m === "string" ? { m: stamp.m } : {}),
      };
    }
  }
  return meta;
}

export function profileFromRow(row: ProfileRow): Profile {
  const tags = parseJson(row.tags);
  return {
    id: row.id,
    mergedInto: row.merged_into,
    traits: record(row.traits),
    traitMeta: traitMeta(row.trait_meta),
    computed: parseComputed(parseJson(row.computed)),
    counters: parseCounters(row.counters),
    email: row.email,
    name: row.name,
    identified: Boolean(row.identified),
    companyId: row.company_id,
    lifecycleStage: row.lifecycle_stage,
    ownerId: row.owner_id,
    tags: Array.isArray(tags) ? tags.filter((t): t is string => typeof t === "string") : [],
    mergeCount: row.merge_count,
    firstSeenAt: row.first_seen_at,
    lastSeenAt: row.last_seen_at,
    lastSeenSort: row.last_seen_sort,
    createdAt: row.created_at,
    updatedAt: row.updated_at,
  };
}

/** Binds `values` as one JSON array parameter, read in SQL with `json_each(?)`. */
export const jsonList = (values: readonly unknown[]) => JSON.stringify(values);

/**
 * The guard statement that opens a read-decide-write batch (see `write_guards` in db/schema.ts):
 * it aborts the batch when a profile it read is no longer live at the `updated_at` it read, when
 * one of `hashes` (identifiers about to be attached) was suppressed meanwhile, or, given the
 * `heads` of the segment set the writer decided with (SegmentSet.heads), when a segment was
 * created, changed or deleted since: counters, memberships and re-check times were decided under
 * rules that no longer hold, and a segment's back-fill may have rewritten counters the writer
 * read. CROSS JOIN makes SQLite walk the expectations and probe the primary key, never scan live
 * profiles.
 */
export function guardStatement(
  db: D1Database,
  expectations: [string, number][],
  hashes: string[],
  heads: [string, number][] | null = null,
) {
  return db
    .prepare(
      `INSERT INTO write_guards (ok) SELECT 0 WHERE
         (SELECT count(*) FROM json_each(?1) j CROSS JOIN profiles p
            ON p.id = j.value ->> 0 AND p.updated_at = j.value ->> 1 AND p.merged_into IS NULL) <> ?2
         OR EXISTS (SELECT 1 FROM suppressions WHERE hash IN (SELECT value FROM json_each(?3)))
         OR (?4 IS NOT NULL AND ((SELECT count(*) FROM segments) <> json_array_length(?4)
           OR EXISTS (SELECT 1 FROM json_each(?4) j WHERE NOT EXISTS (
             SELECT 1 FROM segments s WHERE s.key = j.value ->> 0 AND s.updated_at = j.value ->> 1))))`,
    )
    .bind(jsonList(expectations), expectations.length, jsonList(hashes), heads === null ? null : jsonList(heads));
}

/** A profile's state without its identity and bookkeeping: what a merge snapshot keeps of the loser. */
export type ProfileState = Omit<Profile, "id" | "mergedInto" | "createdAt" | "updatedAt" | "lastSeenSort">;

/** How far last_seen_at may run ahead of the sort key before the key (and its index entry) moves. */
export const LAST_SEEN_SORT_WINDOW_MS = 10 * 60_000;

/**
 * The last-seen sort key after `lastSeenAt` changed, given the stored key: unchanged while
 * `lastSeenAt` stays less than 10 minutes ahead of it, otherwise `lastSeenAt` itself. So the key
 * lags the exact time by under 10 minutes, and the page views of one visit leave it (and
 * contacts_last_seen_idx) alone. Migration 0012's triggers apply the same rule in SQL.
 */
export function lastSeenSortAfter(stored: number | null, lastSeenAt: number | null): number | null {
  if (lastSeenAt === null) return null;
  if (stored === null || stored > lastSeenAt || lastSeenAt - stored >= LAST_SEEN_SORT_WINDOW_MS) return lastSeenAt;
  return stored;
}

/**
 * The profile columns a writer may change, in one fixed order: the in-memory field, the column,
 * and the value bound for it. Whole-profile writes (insert, unmerge's restore) bind all of them.
 */
const writable: [keyof ProfileState, string, (p: ProfileState) => unknown][] = [
  ["traits", "traits", (p) => JSON.stringify(p.traits)],
  ["traitMeta", "trait_meta", (p) => JSON.stringify(p.traitMeta)],
  ["computed", "computed", (p) => JSON.stringify(p.computed)],
  ["counters", "counters", (p) => serializeCounters(p.counters)],
  ["email", "email", (p) => p.email],
  ["name", "name", (p) => p.name],
  ["identified", "identified", (p) => (p.identified ? 1 : 0)],
  ["companyId", "company_id", (p) => p.companyId],
  ["lifecycleStage", "lifecycle_stage", (p) => p.lifecycleStage],
  ["ownerId", "owner_id", (p) => p.ownerId],
  ["tags", "tags", (p) => JSON.stringify(p.tags)],
  ["mergeCount", "merge_count", (p) => p.mergeCount],
  ["firstSeenAt", "first_seen_at", (p) => p.firstSeenAt],
  ["lastSeenAt", "last_seen_at", (p) => p.lastSeenAt],
];

const columns = new Map<keyof Profile, readonly [string, (p: ProfileState) => unknown]>(
  writable.map(([field, column, value]) => [field, [column, value]]),
);

/**
 * The columns `profileColumns` binds, in its order, for the SQL text of a whole-profile write. A
 * whole-profile write (insert, unmerge's restore) sets the sort key to the exact last seen.
 */
export const profileColumnNames: readonly string[] = [...writable.map(([, column]) => column), "last_seen_sort"];

/** The bound values of `profileColumnNames` for `p`, in the same order. */
export function profileColumns(p: ProfileState): unknown[] {
  return [...writable.map(([, , value]) => value(p)), p.lastSeenAt];
}

/** The columns an update of `fields` SETs and their values (see `profileUpdateStatement`). */
function updateOf(p: Profile, fields: Iterable<keyof Profile>): { sets: string[]; values: unknown[] } {
  const sets: string[] = [];
  const values: unknown[] = [];
  for (const field of fields) {
    const column = columns.get(field);
    if (!column) continue;
    sets.push(column[0]);
    values.push(column[1](p));
    if (field === "lastSeenAt") {
      const key = lastSeenSortAfter(p.lastSeenSort, p.lastSeenAt);
      if (key !== p.lastSeenSort) {
        sets.push("last_seen_sort");
        values.push(key);
      }
    }
  }
  sets.push("updated_at");
  values.push(p.updatedAt);
  return { sets, values };
}

/**
 * An UPDATE of `fields` (and always `updated_at`) of a stored profile, from its in-memory state.
 * Only the columns named are SET, because SQLite rewrites every index over a SET column even when
 * the value is the same; `last_seen_sort` is SET only when `lastSeenSortAfter` moves it.
 */
export function profileUpdateStatement(db: D1Database, p: Profile, fields: Iterable<keyof Profile>) {
  const { sets, values } = updateOf(p, fields);
  return db.prepare(`UPDATE profiles SET ${sets.map((c) => `${c} = ?`).join(", ")} WHERE id = ?`).bind(...values, p.id);
}

/**
 * The UPDATEs of many profiles (`profileUpdateStatement` for each), as one statement per set of
 * columns changed: the rows travel as a JSON parameter (db/json-rows.ts).
 */
export function profileUpdateStatements(
  db: D1Database,
  updates: readonly { profile: Profile; fields: Iterable<keyof Profile> }[],
): D1PreparedStatement[] {
  const groups = new Map<string, unknown[][]>();
  for (const { profile, fields } of updates) {
    const { sets, values } = updateOf(profile, fields);
    const key = sets.join(",");
    const rows = groups.get(key) ?? [];
    rows.push([profile.id, ...values]);
    groups.set(key, rows);
  }
  return [...groups].flatMap(([key, rows]) => {
    const sets = key.split(",").map((column, i) => `${column} = j.value ->> ${i + 1}`);
    return jsonRowStatements(
      db,
      `UPDATE profiles SET ${sets.join(", ")} FROM json_each(?1) j WHERE profiles.id = j.value ->> 0`,
      rows,
    );
  });
}

/** INSERTs of new profiles, whole (every writable column), as few statements as fit. */
export function profileInsertStatements(db: D1Database, profiles: readonly Profile[]): D1PreparedStatement[] {
  const names = ["id", ...profileColumnNames, "created_at", "updated_at"];
  return jsonRowStatements(
    db,
    `INSERT INTO profiles (${names.join(", ")}) SELECT ${jsonColumns(names.length).join(", ")} FROM json_each(?1) j`,
    profiles.map((p) => [p.id, ...profileColumns(p), p.createdAt, p.updatedAt]),
  );
}
