/**
 * The pipeline hook: the contract between the single-writer pipeline consumer and segments.
 * The consumer calls `planSegmentWrites` once per batch with the new state of every profile it
 * touched and appends the statements to its own atomic `DB.batch`; after that batch committed it
 * calls `afterPipelineBatch`, which hands the webhook outbox to the delivery queue.
 */
import { relayDeliveries } from "../activation/outbox";
import type { Env } from "../env";
import type { NormalizedEvent } from "../wire/queue";
import { planEvaluation } from "./engine";

export interface ProfileDelta {
  profileId: string;
  traits: Record<string, unknown>;
  computed: Record<string, unknown>;
  changedTraits: string[];
  events: NormalizedEvent[];
  mergedFrom: string[];
}

/**
 * Counter increments for the batch's events, then memberships, history, re-check times and
 * outbox rows for the segments each delta can affect.
 */
export async function planSegmentWrites(
  db: D1Database,
  deltas: ProfileDelta[],
  now: number,
): Promise<D1PreparedStatement[]> {
  return planEvaluation(
    db,
    deltas.map((d) => ({
      profileId: d.profileId,
      traits: d.traits,
      computed: d.computed,
      events: d.events,
      changedTraits: d.changedTraits,
      // Counters of merged-away ids are folded into the winner in the same batch, which has not
      // run yet: read them under both ids.
      counterIds: d.mergedFrom,
      // A merge replaces the profile's history wholesale and drops the loser's memberships.
      force: d.mergedFrom.length > 0 ? "all" : null,
    })),
    now,
  );
}

/** Relays pending webhook deliveries to the queue; one indexed read when there are none. */
export async function afterPipelineBatch(env: Env, now: number): Promise<void> {
  await relayDeliveries(env, now);
}
