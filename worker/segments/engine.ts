/**
 * Real-time evaluation for a set of profiles, shared by the pipeline hook (profiles touched by a
 * consumer batch) and the cron (profiles whose window may have lapsed). One read round trip
 * (memberships; counters come with the profiles), decisions in memory, and the writes returned as
 * statements for the caller's atomic batch: memberships, history, re-check times and the webhook
 * outbox.
 */
import { type ActiveDestination, activeDestinations, type DeliveryType, outboxInsert } from "../activation/outbox";
import { newId } from "../lib/ids";
import type { NormalizedEvent } from "../wire/queue";
import type { Counters } from "./counters";
import { evaluate } from "./evaluate";
import { eventMatches } from "./matchers";
import type { CompiledSegment, SegmentSet } from "./store";

/** One profile to evaluate. */
export interface Subject {
  profileId: string;
  traits: Record<string, unknown>;
  computed: Record<string, unknown>;
  /** Its counters, this batch's events included (the caller counted them: segments/counters.ts). */
  counters: Counters;
  /** New events of this profile (what may have changed, and event webhooks). */
  events: NormalizedEvent[];
  changedTraits: string[];
  /** Created by the caller's batch: evaluated against every segment. */
  isNew: boolean;
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

/** The subjects' memberships, in one round trip. */
async function readMemberships(db: D1Database, subjects: Subject[]): Promise<Map<string, Set<string>>> {
  const memberships = new Map<string, Set<string>>();
  const existing = subjects.filter((s) => !s.isNew).map((s) => s.profileId);
  if (existing.length === 0) return memberships;
  const results = await db.batch<{ segment_key: string; profile_id: string }>(
    chunks(existing).map((chunk) =>
      db
        .prepare(`SELECT segment_key, profile_id FROM memberships WHERE profile_id IN (${placeholders(chunk.length)})`)
        .bind(...chunk),
    ),
  );
  for (const res of results) {
    for (const row of res.results) {
      const set = memberships.get(row.profile_id) ?? new Set<string>();
      memberships.set(row.profile_id, set);
      set.add(row.segment_key);
    }
  }
  return memberships;
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
 * Plans the writes for `subjects` at `now` under the segment set `segs` (which the caller loaded
 * before reading the profiles, and guards its write with): event webhooks, then memberships,
 * history, re-check times and outbox rows. Counters are the subjects' own: the caller writes
 * them with the profile row.
 */
export async function planEvaluation(
  db: D1Database,
  segs: SegmentSet,
  subjects: Subject[],
  now: number,
): Promise<D1PreparedStatement[]> {
  if (subjects.length === 0) return [];
  const destinations = await activeDestinations(db);
  const statements: D1PreparedStatement[] = [];
  statements.push(...eventDeliveries(db, destinations, subjects, now));
  if (segs.list.length === 0) return statements;

  const memberships = await readMemberships(db, subjects);
  const changes: Change[] = [];
  const checks = new Map<string, { upsert: [string, number][]; clear: string[] }>();
  for (const s of subjects) {
    const current = memberships.get(s.profileId) ?? new Set<string>();
    const decided = new Map<string, boolean>();
    const changedHere = new Set<string>();
    const facts = {
      traits: s.traits,
      computed: s.computed,
      counters: (matcherId: string) => s.counters[matcherId] ?? [],
      member: (key: string) => decided.get(key) ?? current.has(key),
    };
    for (const seg of segs.list) {
      if (!isAffected(seg, s, s.isNew, changedHere)) continue;
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
