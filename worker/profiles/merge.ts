/**
 * Folding one profile into another, and the snapshot that lets the merge be undone.
 */
import { z } from "zod";
import type { Identifier } from "../identity/extract";
import { addCounters } from "../segments/counters";
import { combineComputed, computedSchema } from "./computed";
import type { Profile } from "./state";
import { mergeTraits, type TraitMeta } from "./traits";

const MAX_TAGS = 50;

const stampSchema = z.object({ t: z.number(), s: z.string(), m: z.string().optional() });

/** What `profile_merges.snapshot` holds: the loser just before the merge. */
export const mergeSnapshotSchema = z.object({
  loser: z.object({
    traits: z.record(z.string(), z.unknown()),
    traitMeta: z.record(z.string(), stampSchema),
    computed: computedSchema,
    email: z.string().nullable(),
    name: z.string().nullable(),
    identified: z.boolean(),
    companyId: z.string().nullable(),
    lifecycleStage: z.string().nullable(),
    ownerId: z.string().nullable(),
    tags: z.array(z.string()),
    mergeCount: z.number(),
    firstSeenAt: z.number().nullable(),
    lastSeenAt: z.number().nullable(),
  }),
  /** The winner's traits before the merge, to take back values that came from the loser. */
  winnerTraits: z.object({ traits: z.record(z.string(), z.unknown()), traitMeta: z.record(z.string(), stampSchema) }),
  identities: z.array(z.object({ type: z.string(), value: z.string() })),
  /** Profiles that had been merged into the loser (they pointed at it). */
  absorbed: z.array(z.string()),
  noteIds: z.array(z.string()),
  taskIds: z.array(z.string()),
});
export type MergeSnapshot = z.infer<typeof mergeSnapshotSchema>;

const clone = <T>(value: T): T => structuredClone(value);

export function snapshotOf(
  loser: Profile,
  winner: Profile,
  related: { identities: Identifier[]; absorbed: string[]; noteIds: string[]; taskIds: string[] },
): MergeSnapshot {
  return {
    loser: {
      traits: clone(loser.traits),
      traitMeta: clone(loser.traitMeta) as TraitMeta,
      computed: clone(loser.computed),
      email: loser.email,
      name: loser.name,
      identified: loser.identified,
      companyId: loser.companyId,
      lifecycleStage: loser.lifecycleStage,
      ownerId: loser.ownerId,
      tags: [...loser.tags],
      mergeCount: loser.mergeCount,
      firstSeenAt: loser.firstSeenAt,
      lastSeenAt: loser.lastSeenAt,
    },
    winnerTraits: { traits: clone(winner.traits), traitMeta: clone(winner.traitMeta) },
    identities: related.identities.map(({ type, value }) => ({ type, value })),
    absorbed: [...related.absorbed],
    noteIds: [...related.noteIds],
    taskIds: [...related.taskIds],
  };
}

/**
 * Folds `loser` into `winner` (in place) and returns the trait names that changed. Traits: newer
 * event time wins per trait. Computed: combined (sums, earliest first seen, latest last seen, …);
 * event counters add up day by day.
 * CRM fields: the winner's, filled from the loser where the winner has none; tags are united.
 */
export function foldProfile(winner: Profile, loser: Profile): string[] {
  const changed = mergeTraits(
    { traits: winner.traits, meta: winner.traitMeta },
    { traits: loser.traits, meta: loser.traitMeta },
  );
  combineComputed(winner.computed, loser.computed);
  addCounters(winner.counters, loser.counters);
  winner.email ??= loser.email;
  winner.name ??= loser.name;
  winner.identified ||= loser.identified;
  winner.companyId ??= loser.companyId;
  winner.lifecycleStage ??= loser.lifecycleStage;
  winner.ownerId ??= loser.ownerId;
  winner.tags = [...new Set([...winner.tags, ...loser.tags])].slice(0, MAX_TAGS);
  const min = (a: number | null, b: number | null) => (a === null ? b : b === null ? a : Math.min(a, b));
  const max = (a: number | null, b: number | null) => (a === null ? b : b === null ? a : Math.max(a, b));
  winner.firstSeenAt = min(winner.firstSeenAt, loser.firstSeenAt);
  winner.lastSeenAt = max(winner.lastSeenAt, loser.lastSeenAt);
  return changed;
}

/** The profile columns a merge may change on the survivor. */
export const mergedColumns = [
  "traits",
  "traitMeta",
  "computed",
  "counters",
  "email",
  "name",
  "identified",
  "companyId",
  "lifecycleStage",
  "ownerId",
  "tags",
  "mergeCount",
  "firstSeenAt",
  "lastSeenAt",
] as const satisfies readonly (keyof Profile)[];

/**
 * Merges a stored profile into another, in memory (both change in place): the snapshot that lets
 * it be undone is taken first, then the loser's merges count towards the winner's cap and the
 * profiles fold. Returns the snapshot and the winner's trait names that changed. The pipeline's
 * stitching and the CRM's manual merge both go through here.
 */
export function absorbProfile(
  winner: Profile,
  loser: Profile,
  related: { identities: Identifier[]; absorbed: string[]; noteIds: string[]; taskIds: string[] },
): { snapshot: MergeSnapshot; changedTraits: string[] } {
  const snapshot = snapshotOf(loser, winner, related);
  winner.mergeCount += loser.mergeCount + 1;
  loser.mergedInto = winner.id;
  return { snapshot, changedTraits: foldProfile(winner, loser) };
}
