/**
 * Real-time evaluation for a set of profiles, shared by the pipeline hook (profiles touched by a
 * consumer batch) and the cron (profiles whose window may have lapsed). One read round trip
 * (memberships; counters come with the profiles), decisions in memory, and the writes returned as
 * statements for the caller's atomic batch: memberships, history, re-check times and the webhook
 * outbox.
 */
import {
  type ActiveDestination,
  activeDestinations,
  type DeliveryType,
  outboxInsert,
  outboxInserts,
} from "../activation/outbox";
import { jsonRowStatements } from "../db/json-rows";
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

/** The subjects' memberships, in one round trip (memberships_profile_idx, ids as one JSON parameter). */
async function readMemberships(db: D1Database, subjects: Subject[]): Promise<Map<string, Set<string>>> {
  const memberships = new Map<string, Set<string>>();
  const existing = subjects.filter((s) => !s.isNew).map((s) => [s.profileId]);
  if (existing.length === 0) return memberships;
  const results = await db.batch<{ segment_key: string; profile_id: string }>(
    jsonRowStatements(
      db,
      "SELECT m.segment_key, m.profile_id FROM json_each(?1) j CROSS JOIN memberships m ON m.profile_id = j.value ->> 0",
      existing,
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
  statements.push(...membershipWrites(db, changes, destinations, now));
  for (const [key, c] of checks) statements.push(...checkWrites(db, key, c, now));
  return statements;
}

/** Whether (segment `j.value ->> k`, profile `j.value ->> k+1`) is a stored membership. */
const isMember = (k: number) =>
  `EXISTS (SELECT 1 FROM memberships m WHERE m.segment_key = j.value ->> ${k} AND m.profile_id = j.value ->> ${k + 1})`;

/**
 * Writes for a batch's enters and exits: history, outbox rows of subscribed destinations, then
 * the memberships themselves. Each history and outbox row is guarded on the membership row as
 * it stands when the statement runs, so two writers racing on one change record and announce it
 * once. A few statements per batch whatever the number of changes (db/json-rows.ts).
 */
function membershipWrites(
  db: D1Database,
  changes: Change[],
  destinations: ActiveDestination[],
  now: number,
): D1PreparedStatement[] {
  const out: D1PreparedStatement[] = [];
  for (const change of ["entered", "exited"] as const) {
    const list = changes.filter((c) => c.change === change);
    if (list.length === 0) continue;
    const guard = change === "entered" ? `NOT ${isMember(1)}` : isMember(1);
    out.push(
      ...jsonRowStatements(
        db,
        `INSERT INTO membership_changes (id, segment_key, profile_id, change, at)
         SELECT j.value ->> 0, j.value ->> 1, j.value ->> 2, ?2, ?3 FROM json_each(?1) j WHERE ${guard}`,
        list.map((c) => [newId("mch"), c.segment.key, c.subject.profileId]),
        [change, now],
      ),
    );
    const type: DeliveryType = change === "entered" ? "segment.entered" : "segment.exited";
    const timestamp = new Date(now).toISOString();
    for (const d of destinations) {
      const subscribed = list.filter((c) => d.segments.includes(c.segment.key));
      if (subscribed.length === 0) continue;
      out.push(
        ...outboxInserts(
          db,
          { destinationId: d.id, type, now },
          subscribed.map((c) => ({
            payload: {
              type,
              timestamp,
              data: { segment: { key: c.segment.key, name: c.segment.name }, profile: profilePayload(c.subject) },
            },
            guard: [c.segment.key, c.subject.profileId],
          })),
          guard,
        ),
      );
    }
  }
  const entered = changes.filter((c) => c.change === "entered");
  const exited = changes.filter((c) => c.change === "exited");
  out.push(
    ...jsonRowStatements(
      db,
      `INSERT INTO memberships (segment_key, profile_id, entered_at)
       SELECT j.value ->> 0, j.value ->> 1, ?2 FROM json_each(?1) j WHERE true ON CONFLICT DO NOTHING`,
      entered.map((c) => [c.segment.key, c.subject.profileId]),
      [now],
    ),
    ...jsonRowStatements(
      db,
      "DELETE FROM memberships WHERE (segment_key, profile_id) IN (SELECT j.value ->> 0, j.value ->> 1 FROM json_each(?1) j)",
      exited.map((c) => [c.segment.key, c.subject.profileId]),
    ),
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
  return [
    ...jsonRowStatements(
      db,
      `INSERT INTO segment_checks (segment_key, profile_id, check_at)
       SELECT ?2, j.value ->> 0, j.value ->> 1 FROM json_each(?1) j WHERE true
       ON CONFLICT (segment_key, profile_id) DO UPDATE SET check_at = excluded.check_at
         WHERE excluded.check_at < segment_checks.check_at OR segment_checks.check_at <= ?3`,
      c.upsert,
      [key, now],
    ),
    ...jsonRowStatements(
      db,
      "DELETE FROM segment_checks WHERE segment_key = ?2 AND profile_id IN (SELECT j.value ->> 0 FROM json_each(?1) j)",
      c.clear.map((id) => [id]),
      [key],
    ),
  ];
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
