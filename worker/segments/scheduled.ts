/**
 * The Cron Trigger's work: re-evaluate the (segment, profile) pairs whose time window may have
 * lapsed (`segment_checks` due now), plus the segments that refer to them, then relay the webhook
 * outbox. Bounded per run; whatever is left is due again at the next minute.
 */
import { relayDeliveries } from "../activation/outbox";
import type { Env } from "../env";
import { parseCounters } from "./counters";
import { planEvaluation, type Subject } from "./engine";
import { loadSegments } from "./store";

const CHECKS_PER_ROUND = 500;
const ROUNDS = 4;

/** Processes due re-checks at `now`; returns how many pairs were looked at. */
export async function runScheduled(env: Env, now: number): Promise<{ checked: number; relayed: number }> {
  const db = env.DB;
  let checked = 0;
  for (let round = 0; round < ROUNDS; round++) {
    const due = await db
      .prepare("SELECT segment_key, profile_id FROM segment_checks WHERE check_at <= ? ORDER BY check_at LIMIT ?")
      .bind(now, CHECKS_PER_ROUND)
      .all<{ segment_key: string; profile_id: string }>();
    if (due.results.length === 0) break;
    checked += due.results.length;
    await recheck(db, due.results, now);
    if (due.results.length < CHECKS_PER_ROUND) break;
  }
  const relayed = await relayDeliveries(env, now);
  return { checked, relayed };
}

async function recheck(db: D1Database, due: { segment_key: string; profile_id: string }[], now: number): Promise<void> {
  const segs = await loadSegments(db);
  const wanted = new Map<string, Set<string>>();
  const stale: D1PreparedStatement[] = [];
  for (const { segment_key: key, profile_id: pid } of due) {
    if (!segs.byKey.get(key)?.timed) {
      // The segment was deleted or no longer has a window.
      stale.push(db.prepare("DELETE FROM segment_checks WHERE segment_key = ? AND profile_id = ?").bind(key, pid));
      continue;
    }
    const set = wanted.get(pid) ?? new Set<string>();
    wanted.set(pid, set);
    set.add(key);
    for (const dep of segs.dependentsOf(key)) set.add(dep);
  }
  const ids = [...wanted.keys()];
  const subjects: Subject[] = [];
  for (let i = 0; i < ids.length; i += 90) {
    const chunk = ids.slice(i, i + 90);
    const rows = await db
      .prepare(
        `SELECT id, traits, computed, counters, merged_into FROM profiles WHERE id IN (${chunk.map(() => "?").join(", ")})`,
      )
      .bind(...chunk)
      .all<{ id: string; traits: string; computed: string; counters: string; merged_into: string | null }>();
    const found = new Map(rows.results.map((r) => [r.id, r]));
    for (const id of chunk) {
      const row = found.get(id);
      if (!row || row.merged_into) {
        // Erased or merged away: the survivor carries its own checks.
        stale.push(db.prepare("DELETE FROM segment_checks WHERE profile_id = ?").bind(id));
        continue;
      }
      subjects.push({
        profileId: id,
        traits: JSON.parse(row.traits),
        computed: JSON.parse(row.computed),
        counters: parseCounters(row.counters),
        events: [],
        changedTraits: [],
        isNew: false,
        force: wanted.get(id) as Set<string>,
      });
    }
  }
  const statements = [...stale, ...(await planEvaluation(db, segs, subjects, now))];
  if (statements.length) await db.batch(statements);
}
