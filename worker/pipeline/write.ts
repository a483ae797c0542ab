/**
 * The write step: a plan becomes the statements of ONE atomic `db.batch()`. The first statement
 * is the guard (see `write_guards` in db/schema.ts): if any profile the plan read has changed
 * since, an identifier it attaches was erased meanwhile, or a segment changed (counters and
 * memberships were decided under the old rules), the batch aborts as a whole and
 * process.ts reads and decides again. Identities and events are inserted without `OR IGNORE`, so
 * a concurrent writer that claimed the same identifier or stored the same messageId aborts the
 * batch too. Merges re-point rows in SQL, so nothing depends on a read made in another round trip.
 */
import { jsonColumns, jsonRowStatements } from "../db/json-rows";
import { recentEventWrites } from "../events";
import { mergeWrites } from "../identity/merge";
import { newId } from "../lib/ids";
import { guardStatement, profileInsertStatements, profileUpdateStatements } from "../profiles/state";
import { EVENTS_METRIC, eventNameRows, metricRows, metricUpserts, withProfileTotals } from "../stats/metrics";
import type { Plan } from "./plan";

/** `INSERT INTO table (columns) SELECT …` of rows given as a JSON parameter (db/json-rows.ts). */
function insertRows(db: D1Database, table: string, columns: string[], rows: unknown[][]): D1PreparedStatement[] {
  return jsonRowStatements(
    db,
    `INSERT INTO ${table} (${columns.join(", ")}) SELECT ${jsonColumns(columns.length).join(", ")} FROM json_each(?1) j`,
    rows,
  );
}

/** The `events` columns the pipeline writes, in the order of its rows. */
const EVENT_COLUMNS = [
  "site_id",
  "message_id",
  "profile_id",
  "type",
  "event",
  "name",
  "group_id",
  "previous_id",
  "properties",
  "traits",
  "context",
  "user_id",
  "anonymous_id",
  "timestamp",
  "received_at",
  "flags",
];

/**
 * The statements that carry out a plan decided under the segment set whose `heads` are given (the
 * segments hook's statements are appended by the caller).
 */
export function writeStatements(db: D1Database, plan: Plan, heads: [string, number][]): D1PreparedStatement[] {
  const { now } = plan;
  const out: D1PreparedStatement[] = [];
  out.push(
    ...insertRows(
      db,
      "events",
      EVENT_COLUMNS,
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
  // The live debugger's feed: one ring row per batch, in the same atomic write as the events.
  out.push(
    ...recentEventWrites(
      db,
      plan.events.map(({ siteId, event: e }) => ({ siteId, messageId: e.messageId, type: e.type })),
    ),
  );
  // Profiles whose count in the totals can move: new, merged (either side), newly identified.
  // A page view on a known profile touches none of them and pays nothing for the totals.
  const counted = [
    ...plan.created.map((h) => h.profile.id),
    ...plan.merges.flatMap((m) => [m.winnerId, m.loserId]),
    ...plan.updated.filter((h) => h.changed.has("identified")).map((h) => h.profile.id),
  ];
  const profileWrites: D1PreparedStatement[] = [];
  profileWrites.push(
    ...profileInsertStatements(
      db,
      plan.created.map((h) => h.profile),
    ),
  );
  for (const m of plan.merges) profileWrites.push(...mergeWrites(db, m, now));
  profileWrites.push(
    ...insertRows(
      db,
      "identities",
      ["type", "value", "profile_id", "source_message_id", "created_at"],
      plan.identities.map((i) => [i.identifier.type, i.identifier.value, i.profileId, i.messageId, now]),
    ),
  );
  profileWrites.push(
    ...profileUpdateStatements(
      db,
      plan.updated.map((h) => ({ profile: h.profile, fields: h.changed })),
    ),
  );
  out.push(...withProfileTotals(db, counted, profileWrites));
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
    ...insertRows(
      db,
      "identity_warnings",
      ["id", "profile_id", "message_id", "identifier_type", "identifier_value", "reason", "created_at"],
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
    ...metricUpserts(db, [
      ...metricRows(
        EVENTS_METRIC,
        plan.events.map((e) => e.event.timestamp),
        false,
      ),
      ...metricRows("suppressed", Array(plan.counts.suppressed).fill(now)),
      ...metricRows("merges", Array(plan.merges.length).fill(now)),
      ...eventNameRows(plan.events.map((e) => e.event)),
    ]),
  );
  return out.length === 0 ? [] : [guardStatement(db, plan.expectations, plan.attachedHashes, heads), ...out];
}
