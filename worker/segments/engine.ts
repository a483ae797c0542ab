/**
 * Real-time evaluation for a set of profiles, shared by the pipeline hook (profiles touched by a
 * consumer batch) and the cron (profiles whose window may have lapsed). One read round trip for
 * everything (counters, memberships), decisions in memory, and the writes returned as statements
 * for the caller's atomic batch: counters, memberships, history, re-check times and the webhook
 * outbox.
 */
import { type ActiveDestination, activeDestinations, type DeliveryType, outboxInsert } from "../activation/outbox";
import { newId } from "../lib/ids";
import type { NormalizedEvent } from "../wire/queue";
import { type Bucket, evaluate } from "./evaluate";
import { eventMatches } from "./matchers";
import { DAY } from "./rule";
import { type CompiledSegment, loadSegments, type SegmentSet } from "./store";

/** One profile to evaluate. */
export interface Subject {
  profileId: string;
  traits: Record<string, unknown>;
  computed: Record<string, unknown>;
  /** New events of this profile, not yet in `event_counters`. */
  events: NormalizedEvent[];
  changedTraits: string[];
  /** Profile ids whose stored counters belong to this profile (itself and ids merged into it). */
  counterIds: string[];
  /** Segments to evaluate whatever changed: all of them, some, or none beyond the affected ones. */
  force: "all" | Set<string> | null;
}

interface Change {
  segment: CompiledSegment;
  subject: Subject;
  change: "entered" | "exited";
}

const CHUNK = 90;

function chunks<T>(items: T[], size = CHUNK): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < items.length; i += size) out.push(items.slice(i, i + size));
  return out;
}

const placeholders = (n: number, from = 1) => Array.from({ length: n }, (_, i) => `?${i + from}`).join(", ");

type Increments = Map<string, Map<string, Map<number, Bucket>>>;

function countEvents(segs: SegmentSet, subjects: Subject[]): Increments {
  const inc: Increments = new Map();
  for (const s of subjects) {
    for (const e of s.events) {
      for (const m of segs.matchers.values()) {
        if (!eventMatches(m, e)) continue;
        const day = Math.floor(e.timestamp / DAY);
        const byMatcher = inc.get(s.profileId) ?? new Map<string, Map<number, Bucket>>();
        inc.set(s.profileId, byMatcher);
        const byDay = byMatcher.get(m.id) ?? new Map<number, Bucket>();
        byMatcher.set(m.id, byDay);
        const b = byDay.get(day) ?? { day, count: 0, lastAt: e.timestamp };
        byDay.set(day, { day, count: b.count + 1, lastAt: Math.max(b.lastAt, e.timestamp) });
      }
    }
  }
  return inc;
}

function counterUpserts(db: D1Database, inc: Increments): D1PreparedStatement[] {
  const rows: [string, string, number, number, number][] = [];
  for (const [profileId, byMatcher] of inc)
    for (const [matcher, byDay] of byMatcher)
      for (const b of byDay.values()) rows.push([profileId, matcher, b.day, b.count, b.lastAt]);
  return chunks(rows, 20).map((chunk) =>
    db
      .prepare(
        `INSERT INTO event_counters (profile_id, matcher, day, count, last_at) VALUES ${chunk
          .map((_, i) => `(${placeholders(5, i * 5 + 1)})`)
          .join(
            ", ",
          )} ON CONFLICT (profile_id, matcher, day) DO UPDATE SET count = count + excluded.count, last_at = max(last_at, excluded.last_at)`,
      )
      .bind(...chunk.flat()),
  );
}

interface State {
  counters: Map<string, Map<string, Bucket[]>>;
  memberships: Map<string, Set<string>>;
  /** Profiles that already have a row (the others are being created in this batch). */
  existing: Set<string>;
}

async function readState(db: D1Database, segs: SegmentSet, subjects: Subject[], now: number): Promise<State> {
  const owner = new Map<string, string>();
  for (const s of subjects) for (const id of [s.profileId, ...s.counterIds]) owner.set(id, s.profileId);
  const ids = [...owner.keys()];
  const profileIds = subjects.map((s) => s.profileId);
  // Days older than every window collapse into one bucket (day -1): all-time counts stay exact
  // and the read stays small for long-lived profiles.
  const firstDay = segs.firstDay(now);
  const counterReads = chunks(ids).map((chunk) =>
    db
      .prepare(
        `SELECT profile_id, matcher, CASE WHEN day >= ?1 THEN day ELSE -1 END AS d, SUM(count) AS n, MAX(last_at) AS last FROM event_counters WHERE profile_id IN (${placeholders(chunk.length, 2)}) GROUP BY profile_id, matcher, d`,
      )
      .bind(firstDay, ...chunk),
  );
  const memberReads = chunks(profileIds).map((chunk) =>
    db
      .prepare(`SELECT segment_key, profile_id FROM memberships WHERE profile_id IN (${placeholders(chunk.length)})`)
      .bind(...chunk),
  );
  const profileReads = chunks(profileIds).map((chunk) =>
    db.prepare(`SELECT id FROM profiles WHERE id IN (${placeholders(chunk.length)})`).bind(...chunk),
  );
  const results = await db.batch<Record<string, unknown>>([...counterReads, ...memberReads, ...profileReads]);
  const counters = new Map<string, Map<string, Bucket[]>>();
  const memberships = new Map<string, Set<string>>();
  const existing = new Set<string>();
  results.forEach((res, i) => {
    for (const row of res.results) {
      if (i >= counterReads.length + memberReads.length) {
        existing.add(row.id as string);
      } else if (i < counterReads.length) {
        const pid = owner.get(row.profile_id as string) as string;
        const byMatcher = counters.get(pid) ?? new Map<string, Bucket[]>();
        counters.set(pid, byMatcher);
        const list = byMatcher.get(row.matcher as string) ?? [];
        byMatcher.set(row.matcher as string, list);
        list.push({ day: row.d as number, count: row.n as number, lastAt: row.last as number });
      } else {
        const set = memberships.get(row.profile_id as string) ?? new Set<string>();
        memberships.set(row.profile_id as string, set);
        set.add(row.segment_key as string);
      }
    }
  });
  return { counters, memberships, existing };
}

function isAffected(seg: CompiledSegment, s: Subject, isNew: boolean, changedHere: Set<string>): boolean {
  // A new profile is evaluated against everything, so that rules matching an empty profile
  // (`not …`) agree with what a back-fill would decide.
  if (s.force === "all" || isNew || s.force?.has(seg.key)) return true;
  if (seg.refs.some((k) => changedHere.has(k))) return true;
  if (s.changedTraits.some((t) => seg.traits.has(t.split(".")[0]))) return true;
  if (s.events.length === 0) return false;
  // Computed traits are recomputed from events; windows are worth a fresh look on any activity.
  if (seg.usesComputed || seg.timed) return true;
  return s.events.some((e) => seg.matchers.some((m) => eventMatches(m, e)));
}

function profilePayload(s: Subject) {
  return { id: s.profileId, traits: s.traits };
}

/**
 * Plans the writes for `subjects` at `now`: counter increments for their new events (the cron
 * passes none), event webhooks, then memberships, history, re-check times and outbox rows.
 */
export async function planEvaluation(db: D1Database, subjects: Subject[], now: number): Promise<D1PreparedStatement[]> {
  if (subjects.length === 0) return [];
  const [segs, destinations] = await Promise.all([loadSegments(db), activeDestinations(db)]);
  const statements: D1PreparedStatement[] = [];
  const inc = countEvents(segs, subjects);
  statements.push(...counterUpserts(db, inc));
  statements.push(...eventDeliveries(db, destinations, subjects, now));
  if (segs.list.length === 0) return statements;

  const state = await readState(db, segs, subjects, now);
  const changes: Change[] = [];
  const checks = new Map<string, { upsert: [string, number][]; clear: string[] }>();
  for (const s of subjects) {
    const stored = state.counters.get(s.profileId);
    const fresh = inc.get(s.profileId);
    const current = state.memberships.get(s.profileId) ?? new Set<string>();
    const decided = new Map<string, boolean>();
    const changedHere = new Set<string>();
    const facts = {
      traits: s.traits,
      computed: s.computed,
      counters: (matcherId: string) => [...(stored?.get(matcherId) ?? []), ...(fresh?.get(matcherId)?.values() ?? [])],
      member: (key: string) => decided.get(key) ?? current.has(key),
    };
    for (const seg of segs.list) {
      if (!isAffected(seg, s, !state.existing.has(s.profileId), changedHere)) continue;
      const outcome = evaluate(seg.rule, facts, now, seg.matcherOf);
      decided.set(seg.key, outcome.value);
      if (outcome.value !== current.has(seg.key)) {
        changedHere.add(seg.key);
        changes.push({ segment: seg, subject: s, change: outcome.value ? "entered" : "exited" });
      }
      if (seg.timed || s.force instanceof Set) {
        const c = checks.get(seg.key) ?? { upsert: [], clear: [] };
        checks.set(seg.key, c);
        if (outcome.nextChange !== null && outcome.nextChange > now) c.upsert.push([s.profileId, outcome.nextChange]);
        else c.clear.push(s.profileId);
      }
    }
  }
  for (const ch of changes) statements.push(...membershipWrites(db, ch, destinations, now));
  for (const [key, c] of checks) statements.push(...checkWrites(db, key, c, now));
  return statements;
}

/** Writes for one enter/exit, each guarded on the membership row so racing writers agree. */
export function membershipWrites(
  db: D1Database,
  { segment, subject, change }: Change,
  destinations: ActiveDestination[],
  now: number,
): D1PreparedStatement[] {
  const member = "EXISTS (SELECT 1 FROM memberships WHERE segment_key = ? AND profile_id = ?)";
  const guard = { sql: change === "entered" ? `NOT ${member}` : member, args: [segment.key, subject.profileId] };
  const out = [
    db
      .prepare(
        `INSERT INTO membership_changes (id, segment_key, profile_id, change, at) SELECT ?, ?, ?, ?, ? WHERE ${guard.sql}`,
      )
      .bind(newId("mch"), segment.key, subject.profileId, change, now, ...guard.args),
  ];
  const type: DeliveryType = change === "entered" ? "segment.entered" : "segment.exited";
  for (const d of destinations) {
    if (!d.segments.includes(segment.key)) continue;
    const payload = {
      type,
      timestamp: new Date(now).toISOString(),
      data: { segment: { key: segment.key, name: segment.name }, profile: profilePayload(subject) },
    };
    out.push(outboxInsert(db, { destinationId: d.id, type, payload, now }, guard));
  }
  out.push(
    change === "entered"
      ? db
          .prepare(
            "INSERT INTO memberships (segment_key, profile_id, entered_at) VALUES (?, ?, ?) ON CONFLICT DO NOTHING",
          )
          .bind(segment.key, subject.profileId, now)
      : db
          .prepare("DELETE FROM memberships WHERE segment_key = ? AND profile_id = ?")
          .bind(segment.key, subject.profileId),
  );
  return out;
}

function checkWrites(
  db: D1Database,
  key: string,
  c: { upsert: [string, number][]; clear: string[] },
  now: number,
): D1PreparedStatement[] {
  // A stored re-check is only moved earlier, or replaced once it is due (the cron's own pass): a
  // page view that pushes a 7-day window forward would otherwise rewrite the row and its
  // segment_checks_due_idx entry on every event. A check left too early costs one cron
  // evaluation, which finds nothing changed and stores the later time.
  const out = chunks(c.upsert, 30).map((chunk) =>
    db
      .prepare(
        `INSERT INTO segment_checks (segment_key, profile_id, check_at) VALUES ${chunk
          .map((_, i) => `(?1, ?${i * 2 + 3}, ?${i * 2 + 4})`)
          .join(", ")} ON CONFLICT (segment_key, profile_id) DO UPDATE SET check_at = excluded.check_at
          WHERE excluded.check_at < segment_checks.check_at OR segment_checks.check_at <= ?2`,
      )
      .bind(key, now, ...chunk.flat()),
  );
  for (const chunk of chunks(c.clear)) {
    out.push(
      db
        .prepare(
          `DELETE FROM segment_checks WHERE segment_key = ?1 AND profile_id IN (${placeholders(chunk.length, 2)})`,
        )
        .bind(key, ...chunk),
    );
  }
  return out;
}

function eventDeliveries(
  db: D1Database,
  destinations: ActiveDestination[],
  subjects: Subject[],
  now: number,
): D1PreparedStatement[] {
  const out: D1PreparedStatement[] = [];
  for (const d of destinations) {
    if (d.events.length === 0) continue;
    for (const s of subjects) {
      for (const e of s.events) {
        if (e.type !== "track" || e.event === null || !d.events.includes(e.event)) continue;
        const payload = {
          type: "event",
          timestamp: new Date(now).toISOString(),
          data: {
            event: {
              name: e.event,
              messageId: e.messageId,
              properties: e.properties,
              timestamp: new Date(e.timestamp).toISOString(),
            },
            profile: profilePayload(s),
          },
        };
        out.push(outboxInsert(db, { destinationId: d.id, type: "event", payload, now }));
      }
    }
  }
  return out;
}
