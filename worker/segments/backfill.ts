/**
 * Whole-population evaluation in SQL: when a segment is created or its rule changes, and on
 * demand (`POST /api/segments/:key/evaluate`). Counters for new matchers are rebuilt from the
 * `events` table (into each profile row's `counters`), then every live profile is evaluated by the compiled rule and the difference
 * with the stored memberships is written: history rows, outbox rows for subscribed destinations
 * (a back-fill announces its entries, as Segment's audiences do), memberships and re-check times.
 */
import type { ActiveDestination } from "../activation/outbox";
import { addCounters, type CounterScope, type Counters } from "./counters";
import type { Matcher } from "./matchers";
import { DAY } from "./rule";
import {
  compileCheckTimes,
  compileMatch,
  compileRule,
  type EventSource,
  jsonPath,
  prepare,
  type SqlParams,
} from "./sql";
import type { CompiledSegment } from "./store";

/** The bucket day of `e.timestamp`, days before `firstDay` collapsed into -1 (as counters.ts). */
function bucketDay(p: SqlParams, firstDay: number): string {
  return `CASE WHEN e.timestamp < ${p.add(firstDay * DAY)} THEN -1 ELSE CAST(e.timestamp / ${DAY} AS INTEGER) END`;
}

/**
 * Rebuilds one matcher's counters in every live profile row from stored events (idempotent: it
 * replaces the matcher's buckets), days before `firstDay` collapsed. Events keep the profile id
 * they were stored under; a merged-away id counts for its survivor (merge chains are flat).
 */
export function counterBackfill(db: D1Database, m: Matcher, firstDay: number): D1PreparedStatement {
  return prepare(
    db,
    (p) =>
      `UPDATE profiles SET counters = json_set(counters, ${p.add(jsonPath(m.id))}, json(x.buckets)) FROM (
         SELECT pid, json_group_array(json_array(d, n, t)) AS buckets FROM (
           SELECT COALESCE(q.merged_into, e.profile_id) AS pid, ${bucketDay(p, firstDay)} AS d, COUNT(*) AS n,
             MAX(e.timestamp) AS t
           FROM events e LEFT JOIN profiles q ON q.id = e.profile_id WHERE ${compileMatch(m, p)} GROUP BY pid, d
         ) GROUP BY pid
       ) AS x WHERE profiles.id = x.pid`,
  );
}

/**
 * Drops counters no segment reads any more from every profile row. `instr` skips the JSON of the
 * rows that never held them (most, for a matcher on a rare event).
 */
export function counterCleanup(db: D1Database, matcherIds: string[]): D1PreparedStatement[] {
  return matcherIds.map((id) =>
    db
      .prepare("UPDATE profiles SET counters = json_remove(counters, ?2) WHERE instr(counters, ?1) > 0")
      .bind(id, jsonPath(id)),
  );
}

/**
 * Counters recounted from stored events, for profiles whose set of stored ids changed in a way
 * that can't be undone by arithmetic (an unmerge): `owners` maps each stored profile id to the
 * profile whose counters its events count for. One grouped read per matcher, through
 * events_profile_time_idx.
 */
export async function recountCounters(
  db: D1Database,
  scope: CounterScope,
  owners: ReadonlyMap<string, string>,
): Promise<Map<string, Counters>> {
  const out = new Map<string, Counters>([...new Set(owners.values())].map((id) => [id, {}]));
  const matchers = [...scope.matchers.values()];
  if (matchers.length === 0 || owners.size === 0) return out;
  const ids = JSON.stringify([...owners.keys()]);
  const results = await db.batch<{ pid: string; d: number; n: number; t: number }>(
    matchers.map((m) =>
      prepare(
        db,
        (p) =>
          `SELECT e.profile_id AS pid, ${bucketDay(p, scope.firstDay)} AS d, COUNT(*) AS n, MAX(e.timestamp) AS t
           FROM events e WHERE e.profile_id IN (SELECT value FROM json_each(${p.add(ids)})) AND ${compileMatch(m, p)}
           GROUP BY pid, d`,
      ),
    ),
  );
  results.forEach((res, i) => {
    for (const row of res.results) {
      const counters = out.get(owners.get(row.pid) as string) as Counters;
      addCounters(counters, { [matchers[i].id]: [{ day: row.d, count: row.n, lastAt: row.t }] });
    }
  });
  return out;
}

export interface ResyncPlan {
  statements: D1PreparedStatement[];
  /** Indexes into `statements` whose `meta.changes` count entries and exits. */
  enteredAt: number;
  exitedAt: number;
}

const counted: Omit<EventSource, "matcherOf"> = { counted: () => true };

/** The statements that bring one segment's memberships in line with its rule at `now`. */
export function resyncStatements(
  db: D1Database,
  seg: CompiledSegment,
  destinations: ActiveDestination[],
  now: number,
): ResyncPlan {
  const src: EventSource = { ...counted, matcherOf: seg.matcherOf };
  const iso = new Date(now).toISOString();
  const payload = (type: string, p: SqlParams, id: string, traits: string) =>
    `json_object('type', ${p.add(type)}, 'timestamp', ${p.add(iso)}, 'data', json_object('segment', json_object('key', ${p.add(seg.key)}, 'name', ${p.add(seg.name)}), 'profile', json_object('id', ${id}, 'traits', json(${traits}))))`;
  const subscribed = destinations.filter((d) => d.segments.includes(seg.key));

  // Members that no longer qualify (or whose profile is gone or merged away).
  const leaving = (p: SqlParams) =>
    `FROM memberships m LEFT JOIN profiles p ON p.id = m.profile_id WHERE m.segment_key = ${p.add(seg.key)} AND NOT COALESCE(p.id IS NOT NULL AND p.merged_into IS NULL AND ${compileRule(seg.rule, src, p, now)}, 0)`;
  // Live profiles that qualify and are not members yet.
  const joining = (p: SqlParams) =>
    `FROM profiles p WHERE p.merged_into IS NULL AND ${compileRule(seg.rule, src, p, now)} AND NOT EXISTS (SELECT 1 FROM memberships m WHERE m.segment_key = ${p.add(seg.key)} AND m.profile_id = p.id)`;

  const statements: D1PreparedStatement[] = [];
  statements.push(
    prepare(
      db,
      (p) =>
        `INSERT INTO membership_changes (id, segment_key, profile_id, change, at) SELECT 'mch_' || lower(hex(randomblob(10))), m.segment_key, m.profile_id, 'exited', ${p.add(now)} ${leaving(p)}`,
    ),
  );
  for (const d of subscribed) {
    statements.push(
      prepare(
        db,
        (p) =>
          `INSERT INTO deliveries (id, destination_id, type, payload, status, attempts, next_attempt_at, created_at, updated_at) SELECT 'msg_' || lower(hex(randomblob(12))), ${p.add(d.id)}, 'segment.exited', ${payload("segment.exited", p, "m.profile_id", "COALESCE(p.traits, '{}')")}, 'pending', 0, ${p.add(now)}, ${p.add(now)}, ${p.add(now)} ${leaving(p)}`,
      ),
    );
  }
  const exitedAt = statements.length;
  statements.push(
    prepare(
      db,
      (p) =>
        `DELETE FROM memberships WHERE segment_key = ${p.add(seg.key)} AND profile_id IN (SELECT m.profile_id ${leaving(p)})`,
    ),
  );
  statements.push(
    prepare(
      db,
      (p) =>
        `INSERT INTO membership_changes (id, segment_key, profile_id, change, at) SELECT 'mch_' || lower(hex(randomblob(10))), ${p.add(seg.key)}, p.id, 'entered', ${p.add(now)} ${joining(p)}`,
    ),
  );
  for (const d of subscribed) {
    statements.push(
      prepare(
        db,
        (p) =>
          `INSERT INTO deliveries (id, destination_id, type, payload, status, attempts, next_attempt_at, created_at, updated_at) SELECT 'msg_' || lower(hex(randomblob(12))), ${p.add(d.id)}, 'segment.entered', ${payload("segment.entered", p, "p.id", "p.traits")}, 'pending', 0, ${p.add(now)}, ${p.add(now)}, ${p.add(now)} ${joining(p)}`,
      ),
    );
  }
  const enteredAt = statements.length;
  statements.push(
    prepare(
      db,
      (p) =>
        `INSERT INTO memberships (segment_key, profile_id, entered_at) SELECT ${p.add(seg.key)}, p.id, ${p.add(now)} ${joining(p)}`,
    ),
  );
  statements.push(db.prepare("DELETE FROM segment_checks WHERE segment_key = ?").bind(seg.key));
  if (seg.timed) {
    statements.push(
      prepare(db, (p) => {
        const candidates = compileCheckTimes(seg.rule, src, p, now) as string;
        return `INSERT INTO segment_checks (segment_key, profile_id, check_at) SELECT ${p.add(seg.key)}, pid, MIN(t) FROM (${candidates}) WHERE t > ${p.add(now)} GROUP BY pid ON CONFLICT (segment_key, profile_id) DO UPDATE SET check_at = excluded.check_at`;
      }),
    );
  }
  return { statements, enteredAt, exitedAt };
}
