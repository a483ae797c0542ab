/**
 * The decision API's core, `/v1/personalize` minus HTTP: authenticate the write key, resolve the
 * visitor, decide each requested slot — and fail open whenever D1 errs or is slow.
 */
import { z } from "zod";
import {
  type Decision,
  decideSlot,
  defaultDecision,
  resolveSiteVisitor,
  type SiteVisitor,
  withDeadline,
} from "./decide";
import type { ExposureInput } from "./exposures";
import { type SlotCache, type SlotDefinition, slotCache } from "./slots";

/** How long a decision may wait for D1 before it answers with defaults. */
export const DECISION_DEADLINE_MS = 300;

export const personalizeResponseSchema = z.object({
  slots: z.record(
    z.string(),
    z.object({ content: z.union([z.string(), z.record(z.string(), z.unknown())]), variant: z.string() }),
  ),
  /** Only segments marked public, and only when the visitor is in any. */
  segments: z.array(z.string()).optional(),
});
export type PersonalizeResponse = z.infer<typeof personalizeResponseSchema>;

export interface PersonalizeInput {
  writeKey: string;
  slots: string[];
  anonymousId: string | null;
  userId: string | null;
  userHash: string | null;
}

export type PersonalizeOutcome =
  | { kind: "unauthorized" }
  | {
      kind: "ok";
      body: PersonalizeResponse;
      /** Set when the decisions can be attributed to a visitor of a known site. */
      exposure: ExposureInput | null;
      /** Why the answer fell back to defaults (for tests and logs; never sent to the client). */
      failOpen: "slots" | "visitor" | null;
    };

function render(decisions: { slot: string; decision: Decision }[]): PersonalizeResponse["slots"] {
  const out: PersonalizeResponse["slots"] = {};
  for (const { slot, decision } of decisions) out[slot] = { content: decision.content, variant: decision.variant };
  return out;
}

/**
 * Decides the requested slots. The slot definitions (isolate cache) and the site + visitor
 * (one D1 read) are fetched in parallel, each raced against the deadline. An unknown write key is
 * `unauthorized`; when the definitions cannot be loaded the answer is empty (the page keeps its
 * own HTML); when the visitor cannot be resolved every slot gets its default.
 */
export async function personalize(
  d1: D1Database,
  input: PersonalizeInput,
  now: number,
  options: { cache?: SlotCache; deadlineMs?: number } = {},
): Promise<PersonalizeOutcome> {
  const cache = options.cache ?? slotCache;
  const deadline = options.deadlineMs ?? DECISION_DEADLINE_MS;
  const ids = { anonymousId: input.anonymousId, userId: input.userId };
  const [slots, site] = await Promise.all([
    withDeadline(cache.get(d1, input.slots, now), deadline).catch(() => null),
    withDeadline(resolveSiteVisitor(d1, input.writeKey, ids, input.userHash), deadline).then(
      (value): { ok: true; value: SiteVisitor | null } => ({ ok: true, value }),
      () => ({ ok: false }) as const,
    ),
  ]);
  if (site.ok && site.value === null) return { kind: "unauthorized" };
  if (slots === null) return { kind: "ok", body: { slots: {} }, exposure: null, failOpen: "slots" };

  const requested = input.slots.flatMap((key) => {
    const slot = slots.get(key);
    return slot ? [slot] : [];
  });
  if (!site.ok) {
    const decisions = requested.map((slot: SlotDefinition) => ({ slot: slot.key, decision: defaultDecision(slot) }));
    return { kind: "ok", body: { slots: render(decisions) }, exposure: null, failOpen: "visitor" };
  }

  const { siteId, visitor, userIdTrusted, verified } = site.value!;
  const decisions = requested.map((slot) => ({ slot: slot.key, decision: decideSlot(slot, visitor, now) }));
  const body: PersonalizeResponse = { slots: render(decisions) };
  if (visitor.publicSegments.length > 0) body.segments = visitor.publicSegments;
  const userId = userIdTrusted ? input.userId : null;
  const exposure: ExposureInput | null =
    decisions.length > 0 && (input.anonymousId || userId)
      ? { siteId, anonymousId: input.anonymousId, userId, verified, decisions, now, source: "edge" }
      : null;
  return { kind: "ok", body, exposure, failOpen: null };
}
