/**
 * Merging two profiles: the statements every merge writes (the pipeline's stitching and the
 * CRM's manual merge alike), and `mergeProfiles`, the manual merge.
 *
 * A merge re-points in SQL whatever the loser owns (identities, notes, tasks, profiles merged
 * into it; its event counters are folded into the survivor's row by `foldProfile`), drops its
 * memberships (the survivor is re-evaluated in the same batch), marks
 * it `merged_into` the survivor, and logs the merge with a snapshot so that `unmergeProfile` can
 * split it back out. Events are never rewritten: a profile's events are read over its id set.
 */
import type { Db } from "../db";
import { ApiError } from "../lib/errors";
import { newId } from "../lib/ids";
import { absorbProfile, type MergeSnapshot, mergedColumns } from "../profiles/merge";
import { resolveProfile } from "../profiles/read";
import { guardStatement, profileUpdateStatement } from "../profiles/state";
import { compactCounters } from "../segments/counters";
import { planSegmentWrites } from "../segments/pipeline";
import { loadSegments } from "../segments/store";
import { metricStatements, withProfileTotals } from "../stats/metrics";
import type { Identifier } from "./extract";
import { MAX_MERGES_PER_PROFILE, resolvePolicy, strictestPolicy } from "./policy";
import { limitBreach } from "./stitch";

/** One merge, as logged in `profile_merges`. */
export interface MergeRecord {
  id: string;
  winnerId: string;
  loserId: string;
  /** The event that caused it; null for a manual merge. */
  messageId: string | null;
  /** The identifier that linked the two; null for a manual merge. */
  identifier: Identifier | null;
  snapshot: MergeSnapshot;
  /** Who asked for a manual merge; null when an event caused it. */
  actor: string | null;
}

/** Moves everything a merged-away profile owns to the survivor (statements in order). */
export function mergeStatements(db: D1Database, winner: string, loser: string, now: number): D1PreparedStatement[] {
  return [
    db.prepare("UPDATE identities SET profile_id = ?1 WHERE profile_id = ?2").bind(winner, loser),
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

/** The merge's re-pointing statements followed by its `profile_merges` row. */
export function mergeWrites(db: D1Database, m: MergeRecord, now: number): D1PreparedStatement[] {
  return [
    ...mergeStatements(db, m.winnerId, m.loserId, now),
    db
      .prepare(
        `INSERT INTO profile_merges (id, winner_id, loser_id, message_id, identifier_type, identifier_value,
           snapshot, actor, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
      )
      .bind(
        m.id,
        m.winnerId,
        m.loserId,
        m.messageId,
        m.identifier?.type ?? null,
        m.identifier?.value ?? null,
        JSON.stringify(m.snapshot),
        m.actor,
        now,
      ),
  ];
}

const ATTEMPTS = 3;

const d1Of = (db: D1Database | Db): D1Database => ("$client" in db ? db.$client : db);

/** The identifier limits a manual merge respects: the strictest of every site's policy. */
async function workspacePolicy(db: D1Database) {
  const { results } = await db
    .prepare("SELECT identity_policy FROM sites LIMIT 1000")
    .all<{ identity_policy: string | null }>();
  return strictestPolicy(
    results.map((r) => {
      try {
        return resolvePolicy(r.identity_policy ? JSON.parse(r.identity_policy) : {});
      } catch {
        return resolvePolicy({});
      }
    }),
  );
}

/**
 * Merges `loserId` into `winnerId` by hand (the CRM's "these two are one person"). Either id may
 * be an old merged-away id: both resolve to their live profile. The merge is the pipeline's own
 * (traits by event time, computed traits combined, identities re-pointed, counters folded, the
 * loser's memberships dropped and the winner's re-evaluated, notes and tasks re-pointed, logged
 * with a snapshot so `POST /api/profiles/:id/unmerge` can undo it), written in one atomic batch
 * opened by the write guard. Throws ApiError: 404 for an unknown profile; 409 when both are
 * already one profile or when the merged profile would break the identity policy (two user ids,
 * a type's limit, the identifier or merge cap — `details.reason` says which); 503 when a
 * concurrent write kept changing them.
 */
export async function mergeProfiles(
  database: D1Database | Db,
  winnerId: string,
  loserId: string,
  now: number,
  actor?: string,
): Promise<{ mergeId: string }> {
  const db = d1Of(database);
  const policy = await workspacePolicy(db);
  let lastError: unknown;
  for (let attempt = 0; attempt < ATTEMPTS; attempt++) {
    // Segments before profiles: the write is guarded on this set (see guardStatement).
    const segs = await loadSegments(db);
    const [winner, loser] = await Promise.all([resolveProfile(db, winnerId), resolveProfile(db, loserId)]);
    if (!winner) throw new ApiError("not_found", "The profile to keep was not found");
    if (!loser) throw new ApiError("not_found", "The profile to merge was not found");
    if (winner.id === loser.id) {
      throw new ApiError("conflict", "These profiles are already one profile", { details: { profileId: winner.id } });
    }

    const [identities, absorbed, notes, tasks] = await db.batch<Record<string, string>>([
      // identities_profile_idx
      db
        .prepare("SELECT profile_id, type, value FROM identities WHERE profile_id IN (?1, ?2)")
        .bind(winner.id, loser.id),
      // contacts_last_seen_idx (merged_into prefix)
      db.prepare("SELECT id FROM profiles WHERE merged_into = ?").bind(loser.id),
      db.prepare("SELECT id FROM notes WHERE profile_id = ?").bind(loser.id),
      db.prepare("SELECT id FROM tasks WHERE profile_id = ?").bind(loser.id),
    ]);
    const counts: Record<string, number> = {};
    const userIds: string[] = [];
    for (const i of identities.results) {
      counts[i.type] = (counts[i.type] ?? 0) + 1;
      if (i.type === "user_id") userIds.push(i.value);
    }
    const reason =
      limitBreach(policy, counts) ??
      (winner.mergeCount + loser.mergeCount + 1 > MAX_MERGES_PER_PROFILE ? "merge_cap" : null);
    if (reason) {
      throw new ApiError(
        "conflict",
        reason === "limit:user_id"
          ? "Both profiles have a user id; one person has one user id, so they can't be merged"
          : `The merged profile would break the identity policy (${reason})`,
        { details: { reason, ...(reason === "limit:user_id" ? { userIds } : {}) } },
      );
    }

    const expectations: [string, number][] = [
      [winner.id, winner.updatedAt],
      [loser.id, loser.updatedAt],
    ];
    const { snapshot, changedTraits } = absorbProfile(winner, loser, {
      identities: identities.results
        .filter((i) => i.profile_id === loser.id)
        .map((i) => ({ type: i.type, value: i.value })),
      absorbed: absorbed.results.map((r) => r.id),
      noteIds: notes.results.map((r) => r.id),
      taskIds: tasks.results.map((r) => r.id),
    });
    compactCounters(winner.counters, { matchers: segs.matchers, firstDay: segs.firstDay(now) });
    // Strictly newer, so a writer that read the winner before this merge loses its guard.
    winner.updatedAt = Math.max(now, winner.updatedAt + 1);
    const record: MergeRecord = {
      id: newId("mrg"),
      winnerId: winner.id,
      loserId: loser.id,
      messageId: null,
      identifier: null,
      snapshot,
      actor: actor ?? null,
    };
    const statements = [
      guardStatement(db, expectations, [], segs.heads),
      ...mergeWrites(db, record, now),
      profileUpdateStatement(db, winner, mergedColumns),
      ...metricStatements(db, "merges", [now]),
      ...(await planSegmentWrites(
        db,
        segs,
        [
          {
            profileId: winner.id,
            traits: winner.traits,
            computed: winner.computed,
            counters: winner.counters,
            changedTraits,
            events: [],
            isNew: false,
            rebuilt: true,
          },
        ],
        now,
      )),
    ];
    try {
      await db.batch(withProfileTotals(db, [winner.id, loser.id], statements));
      return { mergeId: record.id };
    } catch (err) {
      // The pipeline changed one of them between our read and write (the guard): read again.
      lastError = err;
    }
  }
  console.error("merge: gave up after lost races or D1 errors", lastError);
  throw new ApiError("unavailable", "The profiles kept changing; try again", { headers: { "Retry-After": "1" } });
}
