/**
 * Matchers: the event part of an event condition (which events count, not how many or when).
 * Each has a stable id, the hash of its canonical JSON, under which a profile's `counters` keep
 * daily counts, so two segments asking about the same events share one set of counters.
 */
import { sha256Hex } from "../lib/ids";
import { compare, valueAt } from "./evaluate";
import type { EventCondition, PageCondition, PropertyFilter } from "./rule";

export interface Matcher {
  id: string;
  type: "track" | "page";
  /** The track event name (null for page views). */
  event: string | null;
  where: PropertyFilter[];
}

/** The fields of an event a matcher looks at (a NormalizedEvent or an `events` row). */
export interface MatchableEvent {
  type: string;
  event: string | null;
  properties: Record<string, unknown>;
}

function canonical(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonical).join(",")}]`;
  if (value && typeof value === "object") {
    const entries = Object.entries(value as Record<string, unknown>).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonical(v)}`).join(",")}}`;
  }
  return JSON.stringify(value);
}

/** The canonical text of the events a condition selects (its count and window aside). */
export function matcherKey(c: EventCondition | PageCondition): string {
  const type = "page" in c ? "page" : "track";
  const event = "event" in c ? c.event : null;
  // Filters are ANDed: their order does not change which events match.
  const where = (c.where ?? []).map(canonical).sort();
  return `{"event":${JSON.stringify(event)},"type":"${type}","where":[${where.join(",")}]}`;
}

/** The matcher of an event condition, with its stable id. */
export async function matcherOf(c: EventCondition | PageCondition): Promise<Matcher> {
  const id = `m_${(await sha256Hex(matcherKey(c))).slice(0, 24)}`;
  return { id, type: "page" in c ? "page" : "track", event: "event" in c ? c.event : null, where: c.where ?? [] };
}

/**
 * Whether an event counts for a matcher. `within_last` is not allowed in filters, so `now` is
 * irrelevant here.
 */
export function eventMatches(m: Matcher, e: MatchableEvent): boolean {
  if (e.type !== m.type) return false;
  if (m.type === "track" && e.event !== m.event) return false;
  return m.where.every((f) => compare(valueAt(e.properties, f.property), f, 0));
}
