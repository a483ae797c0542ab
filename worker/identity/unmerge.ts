/**
 * Splitting a wrongly merged profile back out, from the merge log's snapshot.
 *
 * The loser comes back as it was at merge time (traits, computed traits, CRM fields), with the
 * identifiers, absorbed profiles, notes and tasks it had then — those still on the survivor move
 * back. Its events never moved (events keep the id they were stored with), so they are its own
 * again. The survivor gives back trait values that still carry the loser's stamp (restoring its
 * own earlier value, if any) and the loser's additive totals (page views, sessions, counts,
 * revenue, orders). Event counters can't be given back by arithmetic (days collapse, latest
 * times don't subtract), so both profiles' counters are recounted from their stored events, and
 * both are re-evaluated against every segment. Known limit: identifiers and events that reached
 * the survivor after the merge stay with it.
 */
import { ApiError } from "../lib/errors";
import { subtractComputed } from "../profiles/computed";
import { mergeSnapshotSchema } from "../profiles/merge";
import { idSetOf, resolveProfile } from "../profiles/read";
import {
  guardStatement,
  jsonList,
  type Profile,
  profileColumnNames,
  profileColumns,
  profileUpdateStatement,
} from "../profiles/state";
import { displayName } from "../profiles/traits";
import { recountCounters } from "../segments/backfill";
import { planSegmentWrites } from "../segments/pipeline";
import { loadSegments } from "../segments/store";
import { withProfileTotals } from "../stats/metrics";

interface MergeRow {
  id: string;
  winner_id: string;
  loser_id: string;
  snapshot: string;
  created_at: number;
}

export interface UnmergeResult {
  mergeId: string;
  /** The profile that was split back out. */
  restoredId: string;
  /** The profile it had been merged into (the live one it was part of). */
  survivorId: string;
}

const sameStamp = (a?: { t: number; s: string; m?: string }, b?: { t: number; s: string; m?: string }) =>
  a !== undefined && b !== undefined && a.t === b.t && a.s === b.s && a.m === b.m;

/** The loser, live again with the state it had when it was merged (its snapshot). */
const restoreLoserSql = `UPDATE profiles SET merged_into = NULL, ${profileColumnNames.map((c) => `${c} = ?`).join(", ")},
  updated_at = ? WHERE id = ?`;

/** What giving back the loser's traits changes on the survivor. */
const givenBack: (keyof Profile)[] = [
  "traits",
  "traitMeta",
  "computed",
  "counters",
  "email",
  "name",
  "identified",
  "mergeCount",
];

/** Undoes `mergeId` (or the latest merge into the profile). Throws ApiError 404/409/503. */
export async function unmergeProfile(
  db: D1Database,
  profileId: string,
  mergeId: string | undefined,
  now: number,
): Promise<UnmergeResult> {
  for (let attempt = 0; attempt < 3; attempt++) {
    // Segments before profiles: the write is guarded on this set (see guardStatement).
    const segs = await loadSegments(db);
    const survivor = await resolveProfile(db, profileId);
    if (!survivor) throw new ApiError("not_found", "Profile not found");
    const ids = await idSetOf(db, survivor.id);
    const set = jsonList(ids);
    const merge = mergeId
      ? await db
          .prepare(
            "SELECT * FROM profile_merges WHERE id = ?1 AND undone_at IS NULL AND winner_id IN (SELECT value FROM json_each(?2))",
          )
          .bind(mergeId, set)
          .first<MergeRow>()
      : await db
          .prepare(
            `SELECT * FROM profile_merges WHERE undone_at IS NULL AND winner_id IN (SELECT value FROM json_each(?1))
             ORDER BY created_at DESC, rowid DESC LIMIT 1`,
          )
          .bind(set)
          .first<MergeRow>();
    if (!merge) throw new ApiError("not_found", mergeId ? "No such merge into this profile" : "Nothing to unmerge");
    if (!ids.includes(merge.loser_id)) {
      throw new ApiError("conflict", "The merged profile is no longer part of this profile");
    }
    let snapshot: ReturnType<typeof mergeSnapshotSchema.parse>;
    try {
      snapshot = mergeSnapshotSchema.parse(JSON.parse(merge.snapshot));
    } catch {
      throw new ApiError("conflict", "This merge's snapshot can't be read; it can't be undone");
    }

    const { results: current } = await db
      .prepare("SELECT type, value FROM identities WHERE profile_id = ?")
      .bind(survivor.id)
      .all<{ type: string; value: string }>();
    const giveBack = new Set(snapshot.identities.map((i) => `${i.type}:${i.value}`));
    const remaining = current.filter((i) => !giveBack.has(`${i.type}:${i.value}`));

    // Each stored id's events count for the loser if they come back with it, else the survivor.
    const loserIds = new Set([merge.loser_id, ...snapshot.absorbed]);
    const owners = new Map(ids.map((id) => [id, loserIds.has(id) ? merge.loser_id : survivor.id]));
    const counters = await recountCounters(db, { matchers: segs.matchers, firstDay: segs.firstDay(now) }, owners);

    const updated = giveBackTraits(survivor, snapshot);
    updated.counters = counters.get(survivor.id) ?? {};
    updated.identified = remaining.some((i) => i.type === "user_id" || i.type === "email");
    updated.mergeCount = Math.max(0, survivor.mergeCount - snapshot.loser.mergeCount - 1);
    updated.updatedAt = Math.max(now, survivor.updatedAt + 1);
    const l = { ...snapshot.loser, counters: counters.get(merge.loser_id) ?? {} };

    const statements: D1PreparedStatement[] = [
      guardStatement(db, [[survivor.id, survivor.updatedAt]], [], segs.heads),
      db.prepare(restoreLoserSql).bind(...profileColumns(l), now, merge.loser_id),
      db
        .prepare(
          `UPDATE identities SET profile_id = ?1 WHERE profile_id = ?2
             AND (type, value) IN (SELECT value ->> 0, value ->> 1 FROM json_each(?3))`,
        )
        .bind(merge.loser_id, survivor.id, jsonList(snapshot.identities.map((i) => [i.type, i.value]))),
      db
        .prepare(
          "UPDATE profiles SET merged_into = ?1 WHERE merged_into = ?2 AND id IN (SELECT value FROM json_each(?3))",
        )
        .bind(merge.loser_id, survivor.id, jsonList(snapshot.absorbed)),
      db
        .prepare("UPDATE notes SET profile_id = ?1 WHERE profile_id = ?2 AND id IN (SELECT value FROM json_each(?3))")
        .bind(merge.loser_id, survivor.id, jsonList(snapshot.noteIds)),
      db
        .prepare("UPDATE tasks SET profile_id = ?1 WHERE profile_id = ?2 AND id IN (SELECT value FROM json_each(?3))")
        .bind(merge.loser_id, survivor.id, jsonList(snapshot.taskIds)),
      profileUpdateStatement(db, updated, givenBack),
      db.prepare("UPDATE profile_merges SET undone_at = ? WHERE id = ?").bind(now, merge.id),
    ];
    statements.push(
      ...(await planSegmentWrites(
        db,
        segs,
        [
          {
            profileId: survivor.id,
            traits: updated.traits,
            computed: updated.computed,
            counters: updated.counters,
            changedTraits: Object.keys(l.traitMeta),
            events: [],
            isNew: false,
            rebuilt: true,
          },
          {
            profileId: merge.loser_id,
            traits: l.traits,
            computed: l.computed,
            counters: l.counters,
            changedTraits: Object.keys(l.traitMeta),
            events: [],
            isNew: false,
            rebuilt: true,
          },
        ],
        now,
      )),
    );
    try {
      await db.batch(withProfileTotals(db, [survivor.id, merge.loser_id], statements));
      return { mergeId: merge.id, restoredId: merge.loser_id, survivorId: survivor.id };
    } catch {
      // The pipeline changed the survivor between our read and write: read again.
    }
  }
  throw new ApiError("unavailable", "The profile kept changing; try again", { headers: { "Retry-After": "1" } });
}

/** The survivor without the loser's contribution (a copy; the input is left alone). */
function giveBackTraits(survivor: Profile, snapshot: ReturnType<typeof mergeSnapshotSchema.parse>): Profile {
  const p: Profile = structuredClone(survivor);
  const before = snapshot.winnerTraits;
  for (const [name, stamp] of Object.entries(snapshot.loser.traitMeta)) {
    if (!sameStamp(p.traitMeta[name], stamp)) continue;
    const own = before.traitMeta[name];
    if (own) p.traitMeta[name] = own;
    else delete p.traitMeta[name];
    if (Object.hasOwn(before.traits, name)) p.traits[name] = before.traits[name];
    else delete p.traits[name];
  }
  subtractComputed(p.computed, snapshot.loser.computed);
  if (p.email === snapshot.loser.email && typeof p.traits.email !== "string") p.email = null;
  else if (typeof p.traits.email === "string") p.email = p.traits.email.trim().toLowerCase();
  p.name = displayName(p.traits);
  return p;
}
