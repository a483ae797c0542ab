/**
 * The write step: a plan becomes the statements of ONE atomic `db.batch()`. The first statement
 * is the guard (see `write_guards` in db/schema.ts): if any profile the plan read has changed
 * since, or an identifier it attaches was erased meanwhile, the batch aborts as a whole and
 * process.ts reads and decides again. Identities and events are inserted without `OR IGNORE`, so
 * a concurrent writer that claimed the same identifier or stored the same messageId aborts the
 * batch too. Merges re-point rows in SQL, so nothing depends on a read made in another round trip.
 */
import { newId } from "../lib/ids";
import { guardStatement, type Profile } from "../profiles/state";
import type { Holder, Plan } from "./plan";

const DAY_MS = 86_400_000;

/** Profile columns, by the in-memory field they hold. */
const columns: Partial<Record<keyof Profile, [string, (p: Profile) => unknown]>> = {
  traits: ["traits", (p) => JSON.stringify(p.traits)],
  traitMeta: ["trait_meta", (p) => JSON.stringify(p.traitMeta)],
  computed: ["computed", (p) => JSON.stringify(p.computed)],
  email: ["email", (p) => p.email],
  name: ["name", (p) => p.name],
  identified: ["identified", (p) => (p.identified ? 1 : 0)],
  companyId: ["company_id", (p) => p.companyId],
  lifecycleStage: ["lifecycle_stage", (p) => p.lifecycleStage],
  ownerId: ["owner_id", (p) => p.ownerId],
  tags: ["tags", (p) => JSON.stringify(p.tags)],
  mergeCount: ["merge_count", (p) => p.mergeCount],
  firstSeenAt: ["first_seen_at", (p) => p.firstSeenAt],
  lastSeenAt: ["last_seen_at", (p) => p.lastSeenAt],
};

/** Rows per multi-row INSERT, so each statement stays under D1's 100 bound parameters. */
function rowsPer(params: number) {
  return Math.floor(100 / params);
}

function multiInsert(db: D1Database, head: string, width: number, rows: unknown[][], tail = ""): D1PreparedStatement[] {
  const out: D1PreparedStatement[] = [];
  const per = rowsPer(width);
  const tuple = `(${Array(width).fill("?").join(", ")})`;
  for (let i = 0; i < rows.length; i += per) {
    const part = rows.slice(i, i + per);
    out.push(db.prepare(`${head} VALUES ${part.map(() => tuple).join(", ")}${tail}`).bind(...part.flat()));
  }
  return out;
}

function updateProfile(db: D1Database, h: Holder): D1PreparedStatement {
  const sets: string[] = [];
  const values: unknown[] = [];
  for (const field of h.changed) {
    const column = columns[field];
    if (!column) continue;
    sets.push(`${column[0]} = ?`);
    values.push(column[1](h.profile));
  }
  sets.push("updated_at = ?");
  values.push(h.profile.updatedAt);
  return db.prepare(`UPDATE profiles SET ${sets.join(", ")} WHERE id = ?`).bind(...values, h.profile.id);
}

function insertProfile(db: D1Database, p: Profile): D1PreparedStatement {
  return db
    .prepare(
      `INSERT INTO profiles (id, merged_into, traits, trait_meta, computed, email, name, identified, company_id,
         lifecycle_stage, owner_id, tags, merge_count, first_seen_at, last_seen_at, created_at, updated_at)
       VALUES (?, NULL, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
    )
    .bind(
      p.id,
      JSON.stringify(p.traits),
      JSON.stringify(p.traitMeta),
      JSON.stringify(p.computed),
      p.email,
      p.name,
      p.identified ? 1 : 0,
      p.companyId,
      p.lifecycleStage,
      p.ownerId,
      JSON.stringify(p.tags),
      p.mergeCount,
      p.firstSeenAt,
      p.lastSeenAt,
      p.createdAt,
      p.updatedAt,
    );
}

/** Moves everything a merged-away profile owns to the survivor (statements in order). */
export function mergeStatements(db: D1Database, winner: string, loser: string, now: number): D1PreparedStatement[] {
  return [
    db.prepare("UPDATE identities SET profile_id = ?1 WHERE profile_id = ?2").bind(winner, loser),
    // Counters add up per (matcher, day).
    db
      .prepare(
        `INSERT INTO event_counters (profile_id, matcher, day, count, last_at)
         SELECT ?1, matcher, day, count, last_at FROM event_counters WHERE profile_id = ?2
         ON CONFLICT (profile_id, matcher, day) DO UPDATE SET
           count = event_counters.count + excluded.count, last_at = max(event_counters.last_at, excluded.last_at)`,
      )
      .bind(winner, loser),
    db.prepare("DELETE FROM event_counters WHERE profile_id = ?1").bind(loser),
    // The survivor is re-evaluated by the segments hook; the loser's memberships would be stale.
    db.prepare("DELETE FROM memberships WHERE profile_id = ?1").bind(loser),
    db.prepare("DELETE FROM segment_checks WHERE profile_id = ?1").bind(loser),
    db.prepare("UPDATE notes SET profile_id = ?1 WHERE profile_id = ?2").bind(winner, loser),
    db.prepare("UPDATE tasks SET profile_id = ?1 WHERE profile_id = ?2").bind(winner, loser),
    // Chains: profiles merged into the loser earlier now resolve to the survivor in one hop.
    db.prepare("UPDATE profiles SET merged_into = ?1 WHERE merged_into = ?2").bind(winner, loser),
    db.prepare("UPDATE profiles SET merged_into = ?1, updated_at = ?3 WHERE id = ?2").bind(winner, loser, now),
  ];
}

/** Adds `value` to a running total for day 0 (all time) and for the day of each time given. */
export function metricStatements(db: D1Database, name: string, times: number[]): D1PreparedStatement[] {
  if (times.length === 0) return [];
  const perDay = new Map<number, number>([[0, times.length]]);
  for (const t of times) perDay.set(Math.floor(t / DAY_MS), (perDay.get(Math.floor(t / DAY_MS)) ?? 0) + 1);
  return multiInsert(
    db,
    "INSERT INTO metrics (name, day, value)",
    3,
    [...perDay].map(([day, n]) => [name, day, n]),
    " ON CONFLICT (name, day) DO UPDATE SET value = metrics.value + excluded.value",
  );
}

/** The statements that carry out a plan (the segments hook's statements are appended by the caller). */
export function writeStatements(db: D1Database, plan: Plan): D1PreparedStatement[] {
  const { now } = plan;
  const out: D1PreparedStatement[] = [];
  if (plan.expectations.length > 0 || plan.attachedHashes.length > 0) {
    out.push(guardStatement(db, plan.expectations, plan.attachedHashes));
  }
  out.push(
    ...multiInsert(
      db,
      `INSERT INTO events (site_id, message_id, profile_id, type, event, name, group_id, previous_id, properties,
         traits, context, user_id, anonymous_id, timestamp, received_at, flags)`,
      16,
      plan.events.map(({ siteId, event: e, profileId }) => [
        siteId,
        e.messageId,
        profileId,
        e.type,
        e.event,
        e.name,
        e.groupId,
        e.previousId,
        JSON.stringify(e.properties),
        e.type === "identify" || e.type === "group" ? JSON.stringify(e.traits) : null,
        JSON.stringify(e.context),
        e.userId,
        e.anonymousId,
        e.timestamp,
        e.receivedAt,
        e.flags.length > 0 ? JSON.stringify(e.flags) : null,
      ]),
    ),
  );
  for (const h of plan.created) out.push(insertProfile(db, h.profile));
  for (const m of plan.merges) {
    out.push(...mergeStatements(db, m.winnerId, m.loserId, now));
    out.push(
      db
        .prepare(
          `INSERT INTO profile_merges (id, winner_id, loser_id, message_id, identifier_type, identifier_value,
             snapshot, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
        )
        .bind(
          m.id,
          m.winnerId,
          m.loserId,
          m.messageId,
          m.identifier.type,
          m.identifier.value,
          JSON.stringify(m.snapshot),
          now,
        ),
    );
  }
  out.push(
    ...multiInsert(
      db,
      "INSERT INTO identities (type, value, profile_id, source_message_id, created_at)",
      5,
      plan.identities.map((i) => [i.identifier.type, i.identifier.value, i.profileId, i.messageId, now]),
    ),
  );
  for (const h of plan.updated) out.push(updateProfile(db, h));
  for (const [groupId, traits] of plan.groups) {
    // Group traits: the latest call's keys win (json_patch: nested objects merge, null removes).
    out.push(
      db
        .prepare(
          `INSERT INTO groups (id, traits, created_at, updated_at) VALUES (?1, ?2, ?3, ?3)
           ON CONFLICT (id) DO UPDATE SET traits = json_patch(groups.traits, excluded.traits), updated_at = ?3`,
        )
        .bind(groupId, JSON.stringify(traits), now),
    );
  }
  out.push(
    ...multiInsert(
      db,
      "INSERT INTO identity_warnings (id, profile_id, message_id, identifier_type, identifier_value, reason, created_at)",
      7,
      plan.warnings.map((w) => [
        newId("iwn"),
        w.profileId,
        w.messageId,
        w.identifier.type,
        w.identifier.value.slice(0, 200),
        w.reason,
        now,
      ]),
    ),
  );
  out.push(
    ...metricStatements(
      db,
      "events",
      plan.events.map((e) => e.event.timestamp),
    ),
  );
  out.push(...metricStatements(db, "suppressed", Array(plan.counts.suppressed).fill(now)));
  out.push(...metricStatements(db, "merges", Array(plan.merges.length).fill(now)));
  return out;
}
