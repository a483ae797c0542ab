/**
 * Data-subject rights: erase a person, and export everything held about them.
 *
 * Erasure writes the person's identifiers to `suppressions` (SHA-256 of type:value) FIRST, in
 * the same atomic batch as the deletes: an event of theirs still in the queue, or retried by a
 * client, is then dropped by the pipeline instead of recreating them. Webhook deliveries whose
 * payload names the person go too. Rejected events and dead letters can't be attributed to a
 * person reliably (they failed validation or processing); they expire instead, after
 * `RETENTION_MS` (pipeline/retention.ts). Re-apply erasures after a D1 Time Travel restore (a
 * restore brings the rows back).
 */
import { suppressionHash } from "../identity/extract";
import { withProfileTotals } from "../stats/metrics";
import { eventsOf, idSetOf, type ProfileJson, profileJson, resolveProfile } from "./read";
import { guardStatement, jsonList } from "./state";

/** Largest export of events (a person with more gets `eventsTruncated: true`). */
const MAX_EXPORT_EVENTS = 10_000;

export interface EraseResult {
  profileIds: string[];
  identifiers: number;
}

/**
 * Erases a profile and every profile merged into it. Null when the id is unknown. Throws when a
 * concurrent pipeline write kept changing it (the caller answers 503; retrying is safe).
 */
export async function eraseProfile(db: D1Database, id: string, now: number): Promise<EraseResult | null> {
  let lastError: unknown;
  for (let attempt = 0; attempt < 3; attempt++) {
    const profile = await resolveProfile(db, id);
    if (!profile) return null;
    const ids = await idSetOf(db, profile.id);
    const { results: identities } = await db
      .prepare("SELECT type, value FROM identities WHERE profile_id IN (SELECT value FROM json_each(?1))")
      .bind(jsonList(ids))
      .all<{ type: string; value: string }>();
    const hashes = await Promise.all(identities.map(suppressionHash));
    const set = jsonList(ids);
    const statements: D1PreparedStatement[] = [guardStatement(db, [[profile.id, profile.updatedAt]], [])];
    for (let i = 0; i < hashes.length; i += 50) {
      const part = hashes.slice(i, i + 50);
      statements.push(
        db
          .prepare(
            `INSERT OR IGNORE INTO suppressions (hash, created_at) VALUES ${part.map(() => "(?, ?)").join(", ")}`,
          )
          .bind(...part.flatMap((h) => [h, now])),
      );
    }
    const inSet = "IN (SELECT value FROM json_each(?1))";
    for (const sql of [
      `DELETE FROM identities WHERE profile_id ${inSet}`,
      `DELETE FROM events WHERE profile_id ${inSet}`,
      `DELETE FROM notes WHERE profile_id ${inSet}`,
      `DELETE FROM tasks WHERE profile_id ${inSet}`,
      `DELETE FROM memberships WHERE profile_id ${inSet}`,
      `DELETE FROM membership_changes WHERE profile_id ${inSet}`,
      `DELETE FROM segment_checks WHERE profile_id ${inSet}`,
      `DELETE FROM profile_merges WHERE winner_id ${inSet} OR loser_id ${inSet}`,
      `DELETE FROM identity_warnings WHERE profile_id ${inSet}`,
      // Webhook payloads carry the person's traits and identifiers; a pending one must not be sent
      // after the erasure either (the delivery consumer skips a row that is gone).
      // deliveries_profile_idx
      `DELETE FROM deliveries WHERE payload ->> '$.data.profile.id' ${inSet}`,
      `DELETE FROM profiles WHERE id ${inSet}`,
    ]) {
      statements.push(db.prepare(sql).bind(set));
    }
    // Refused links elsewhere may still name this person's identifiers.
    statements.push(
      db
        .prepare("DELETE FROM identity_warnings WHERE identifier_value IN (SELECT value FROM json_each(?1))")
        .bind(jsonList(identities.map((i) => i.value))),
    );
    try {
      await db.batch(withProfileTotals(db, ids, statements));
      return { profileIds: ids, identifiers: identities.length };
    } catch (err) {
      lastError = err;
    }
  }
  throw new Error("erasing the profile failed", { cause: lastError });
}

export interface ProfileExport {
  exportedAt: string;
  profile: ProfileJson;
  profileIds: string[];
  events: unknown[];
  eventsTruncated: boolean;
  notes: unknown[];
  tasks: unknown[];
  memberships: unknown[];
  membershipChanges: unknown[];
  merges: unknown[];
  warnings: unknown[];
}

const parseJson = (text: unknown) => {
  try {
    return typeof text === "string" ? (JSON.parse(text) as unknown) : text;
  } catch {
    return text;
  }
};
const iso = (ms: unknown) => (typeof ms === "number" ? new Date(ms).toISOString() : null);

/** Everything held about a person (a data-subject access request). Null when unknown. */
export async function exportProfile(db: D1Database, id: string, now: number): Promise<ProfileExport | null> {
  const profile = await resolveProfile(db, id);
  if (!profile) return null;
  const ids = await idSetOf(db, profile.id);
  const set = jsonList(ids);
  const inSet = "IN (SELECT value FROM json_each(?1))";
  const [notes, tasks, memberships, changes, merges, warnings] = await db.batch<Record<string, unknown>>([
    db
      .prepare(`SELECT id, author_id, body, created_at FROM notes WHERE profile_id ${inSet} ORDER BY created_at`)
      .bind(set),
    db
      .prepare(
        `SELECT id, title, due_at, done, created_by, created_at, updated_at FROM tasks WHERE profile_id ${inSet}`,
      )
      .bind(set),
    db.prepare(`SELECT segment_key, entered_at FROM memberships WHERE profile_id ${inSet}`).bind(set),
    db
      .prepare(`SELECT segment_key, change, at FROM membership_changes WHERE profile_id ${inSet} ORDER BY at`)
      .bind(set),
    db
      .prepare(
        `SELECT id, winner_id, loser_id, message_id, identifier_type, identifier_value, snapshot, created_at, undone_at
         FROM profile_merges WHERE winner_id ${inSet} OR loser_id ${inSet} ORDER BY created_at`,
      )
      .bind(set),
    db
      .prepare(
        `SELECT identifier_type, identifier_value, reason, message_id, created_at FROM identity_warnings
         WHERE profile_id ${inSet} ORDER BY created_at`,
      )
      .bind(set),
  ]);
  const events: unknown[] = [];
  let cursor: [number, string, string] | undefined;
  let truncated = false;
  for (;;) {
    const page = await eventsOf(db, ids, 200, cursor);
    events.push(...page.items);
    if (!page.nextCursor) break;
    if (events.length >= MAX_EXPORT_EVENTS) {
      truncated = true;
      break;
    }
    const last = page.items[page.items.length - 1];
    cursor = [Date.parse(last.timestamp), last.messageId, last.siteId];
  }
  return {
    exportedAt: new Date(now).toISOString(),
    profile: await profileJson(db, profile),
    profileIds: ids,
    events,
    eventsTruncated: truncated,
    notes: notes.results.map((r) => ({ id: r.id, authorId: r.author_id, body: r.body, createdAt: iso(r.created_at) })),
    tasks: tasks.results.map((r) => ({
      id: r.id,
      title: r.title,
      dueAt: iso(r.due_at),
      done: Boolean(r.done),
      createdBy: r.created_by,
      createdAt: iso(r.created_at),
      updatedAt: iso(r.updated_at),
    })),
    memberships: memberships.results.map((r) => ({ segment: r.segment_key, enteredAt: iso(r.entered_at) })),
    membershipChanges: changes.results.map((r) => ({ segment: r.segment_key, change: r.change, at: iso(r.at) })),
    merges: merges.results.map((r) => ({
      id: r.id,
      winnerId: r.winner_id,
      loserId: r.loser_id,
      messageId: r.message_id,
      identifier: { type: r.identifier_type, value: r.identifier_value },
      snapshot: parseJson(r.snapshot),
      createdAt: iso(r.created_at),
      undoneAt: iso(r.undone_at),
    })),
    warnings: warnings.results.map((r) => ({
      identifierType: r.identifier_type,
      identifierValue: r.identifier_value,
      reason: r.reason,
      messageId: r.message_id,
      createdAt: iso(r.created_at),
    })),
  };
}
