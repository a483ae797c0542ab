/**
 * Whole-population evaluation in SQL: when a segment is created or its rule changes, and on
 * demand (`POST /api/segments/:key/evaluate`). Counters for new matchers are rebuilt from the
 * `events` table, then every live profile is evaluated by the compiled rule and the difference
 * with the stored memberships is written: history rows, outbox rows for subscribed destinations
 * (a back-fill announces its entries, as Segment's audiences do), memberships and re-check times.
 */
import type { ActiveDestination } from "../activation/outbox";
import type { Matcher } from "./matchers";
import { compileCheckTimes, compileMatch, compileRule, type EventSource, prepare, type SqlParams } from "./sql";
import type { CompiledSegment } from "./store";

/** Rebuilds a matcher's daily counters from stored events (idempotent: it replaces counts). */
export function counterBackfill(db: D1Database, m: Matcher): D1PreparedStatement {
  // Events keep the profile id they were stored under; a merged-away id counts for its survivor.
  return prepare(
    db,
    (p) =>
      `INSERT INTO event_counters (profile_id, matcher, day, count, last_at) SELECT COALESCE(q.merged_into, e.profile_id) AS pid, ${p.add(m.id)}, CAST(e.timestamp / 86400000 AS INTEGER) AS d, COUNT(*), MAX(e.timestamp) FROM events e LEFT JOIN profiles q ON q.id = e.profile_id WHERE ${compileMatch(m, p)} GROUP BY pid, d ON CONFLICT (profile_id, matcher, day) DO UPDATE SET count = excluded.count, last_at = excluded.last_at`,
  );
}

/** Drops counters no segment reads any more. */
export function counterCleanup(db: D1Database, matcherIds: string[]): D1PreparedStatement[] {
  return matcherIds.map((id) => db.prepare("DELETE FROM event_counters WHERE matcher = ?").bind(id));
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
