/**
 * Where identifiers come from in an event: anonymousId, userId, traits.email/phone (also
 * context.traits), alias's previousId, `context.externalIds` (Segment's `[{type, id}]`) and traits
 * named like a custom type the site declared.
 */
import { sha256Hex } from "../lib/ids";
import type { NormalizedEvent } from "../wire/queue";
import { builtinTypes, type IdentityPolicy, isBlocked, normalizeIdentifier, ruleOf } from "./policy";

export interface Identifier {
  type: string;
  value: string;
}

/** Most identifiers taken from one event; anything beyond is ignored. */
const MAX_PER_EVENT = 20;

/** The identity-graph key of an identifier (type names never contain `:`). */
export const keyOf = (id: Identifier) => `${id.type}:${id.value}`;

const isRecord = (v: unknown): v is Record<string, unknown> => typeof v === "object" && v !== null && !Array.isArray(v);

export interface Extracted {
  identifiers: Identifier[];
  /** Values that were well-formed but are on the blocklist: never linked, reported. */
  blocked: Identifier[];
}

/**
 * An alias's previousId names an earlier identity of the same person: usually an anonymous id,
 * sometimes an earlier user id. `previousIdType` says which one the graph already knows.
 */
export type PreviousIdType = (value: string) => "user_id" | "anonymous_id";

/** Raw (type, value) pairs carried by an event, before normalisation. */
function rawPairs(event: NormalizedEvent, policy: IdentityPolicy, previousIdType: PreviousIdType) {
  const pairs: [string, unknown][] = [];
  if (event.userId) pairs.push(["user_id", event.userId]);
  if (event.anonymousId) pairs.push(["anonymous_id", event.anonymousId]);
  if (event.type === "alias" && event.previousId) {
    const value = normalizeIdentifier("user_id", event.previousId);
    if (value) pairs.push([previousIdType(value), event.previousId]);
  }
  const traitSources = [event.type === "identify" ? event.traits : undefined, event.context.traits];
  const custom = Object.keys(policy.types).filter((t) => !(builtinTypes as readonly string[]).includes(t));
  for (const traits of traitSources) {
    if (!isRecord(traits)) continue;
    pairs.push(["email", traits.email], ["phone", traits.phone]);
    for (const type of custom) pairs.push([type, traits[type]]);
  }
  const external = event.context.externalIds;
  if (Array.isArray(external)) {
    for (const item of external.slice(0, MAX_PER_EVENT)) {
      if (isRecord(item) && typeof item.type === "string") pairs.push([item.type.toLowerCase(), item.id]);
    }
  }
  return pairs;
}

/** The normalised, de-duplicated identifiers of an event under a site's policy. */
export function extractIdentifiers(
  event: NormalizedEvent,
  policy: IdentityPolicy,
  previousIdType: PreviousIdType = () => "anonymous_id",
): Extracted {
  const seen = new Set<string>();
  const identifiers: Identifier[] = [];
  const blocked: Identifier[] = [];
  for (const [type, raw] of rawPairs(event, policy, previousIdType)) {
    if (!ruleOf(policy, type) || raw === undefined || raw === null) continue;
    const value = normalizeIdentifier(type, raw);
    if (value === null) continue;
    const id = { type, value };
    const key = keyOf(id);
    if (seen.has(key)) continue;
    seen.add(key);
    if (isBlocked(policy, value)) blocked.push(id);
    else if (identifiers.length < MAX_PER_EVENT) identifiers.push(id);
  }
  return { identifiers, blocked };
}

/** Every identifier key an event could resolve to (both readings of an alias's previousId). */
export function candidateKeys(event: NormalizedEvent, policy: IdentityPolicy): string[] {
  const keys = extractIdentifiers(event, policy).identifiers.map(keyOf);
  if (event.type === "alias" && event.previousId) {
    const value = normalizeIdentifier("user_id", event.previousId);
    if (value && !isBlocked(policy, value)) keys.push(keyOf({ type: "user_id", value }));
  }
  return keys;
}

/** SHA-256 of `type:value`: how erased identifiers are remembered without keeping them. */
export const suppressionHash = (id: Identifier): Promise<string> => sha256Hex(keyOf(id));
