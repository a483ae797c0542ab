/**
 * The pipeline hook: the contract between the single-writer pipeline consumer and segments.
 * The consumer loads the segment set (`loadSegments`) before it reads profiles, counts each
 * event into its profile's counters under that set (counters.ts), calls `planSegmentWrites`
 * once per batch with the new state of every profile it touched and appends the statements to
 * its own atomic `DB.batch`, guarded on the set's heads; after that batch committed it
 * calls `afterPipelineBatch`, which hands the webhook outbox to the delivery queue.
 */
import { relayDeliveries } from "../activation/outbox";
import type { Env } from "../env";
import type { NormalizedEvent } from "../wire/queue";
import type { Counters } from "./counters";
import { planEvaluation } from "./engine";
import type { SegmentSet } from "./store";

export interface ProfileDelta {
  profileId: string;
  traits: Record<string, unknown>;
  computed: Record<string, unknown>;
  /** Its counters after this batch (counted and compacted by the caller, written with the row). */
  counters: Counters;
  changedTraits: string[];
  events: NormalizedEvent[];
  /** Created by this batch. */
  isNew: boolean;
  /** Its history changed wholesale (a merge into it, an unmerge): every segment is re-evaluated. */
  rebuilt: boolean;
}

/**
 * Memberships, history, re-check times and outbox rows for the segments each delta can affect,
 * decided under `segs`: the set the caller loaded before it read the profiles, and whose `heads`
 * its write guard checks.
 */
export async function planSegmentWrites(
  db: D1Database,
  segs: SegmentSet,
  deltas: ProfileDelta[],
  now: number,
): Promise<D1PreparedStatement[]> {
  return planEvaluation(
    db,
    segs,
    deltas.map((d) => ({
      profileId: d.profileId,
      traits: d.traits,
      computed: d.computed,
      counters: d.counters,
      events: d.events,
      changedTraits: d.changedTraits,
      isNew: d.isNew,
      // A merge replaces the profile's history wholesale and drops the loser's memberships.
      force: d.rebuilt ? "all" : null,
    })),
    now,
  );
}

/** Relays pending webhook deliveries to the queue; one indexed read when there are none. */
export async function afterPipelineBatch(env: Env, now: number): Promise<void> {
  await relayDeliveries(env, now);
}
