/**
 * Event counters: for each matcher a segment uses, a profile's matching events per UTC day (how
 * many, and the latest one's time), so windowed counts never rescan history.
 *
 * They live in the profile row itself (`profiles.counters`, JSON `{ matcherId: [[day, count,
 * lastAt], …] }`), not in a table of their own: every event already rewrites its profile row
 * (last seen, computed traits), so counting it costs no D1 row written, where a counter table
 * cost one per event and three per new day (issue 9). The SQL compiler reads the same JSON
 * (sql.ts), the back-fill writes it (backfill.ts).
 *
 * Days older than every window in use collapse into one bucket, day -1: all-time counts stay
 * exact and a long-lived profile's row stays small. A segment whose window reaches further than
 * any before it rebuilds its matchers from `events` when it is saved (service.ts), because the
 * days it needs were collapsed.
 */
import type { NormalizedEvent } from "../wire/queue";
import type { Bucket } from "./evaluate";
import { eventMatches, type Matcher } from "./matchers";
import { DAY } from "./rule";

/** A profile's counters: matcher id → buckets, oldest day first (day -1 before every other). */
export type Counters = Record<string, Bucket[]>;

/** What counting needs from the segment set. */
export interface CounterScope {
  /** The matchers segments use; counters of any other matcher are dropped. */
  matchers: ReadonlyMap<string, Matcher>;
  /** The earliest day a window can read (SegmentSet.firstDay): older days collapse into day -1. */
  firstDay: number;
}

/** Matcher ids as matchers.ts makes them; anything else in a stored document is ignored. */
const MATCHER_ID = /^m_[0-9a-f]{24}$/;

const isBucket = (v: unknown): v is [number, number, number] =>
  Array.isArray(v) && v.length === 3 && v.every((n) => typeof n === "number" && Number.isFinite(n));

/** Reads a stored `profiles.counters` document; malformed parts read as no counts. */
export function parseCounters(text: string | null | undefined): Counters {
  const out: Counters = {};
  if (!text || text === "{}") return out;
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch {
    return out;
  }
  if (!doc || typeof doc !== "object" || Array.isArray(doc)) return out;
  for (const [id, list] of Object.entries(doc)) {
    if (!MATCHER_ID.test(id) || !Array.isArray(list)) continue;
    const buckets = list.filter(isBucket).map(([day, count, lastAt]) => ({ day, count, lastAt }));
    if (buckets.length) out[id] = buckets.sort((a, b) => a.day - b.day);
  }
  return out;
}

/** The stored form of `counters` (compact: one `[day, count, lastAt]` triple per bucket). */
export function serializeCounters(counters: Counters): string {
  const doc: Record<string, [number, number, number][]> = {};
  for (const [id, buckets] of Object.entries(counters)) {
    if (buckets.length) doc[id] = buckets.map((b) => [b.day, b.count, b.lastAt]);
  }
  return JSON.stringify(doc);
}

/** Adds `n` events, the latest at `lastAt`, to the bucket of `day`, keeping days in order. */
function add(buckets: Bucket[], day: number, n: number, lastAt: number): void {
  let i = buckets.length;
  while (i > 0 && buckets[i - 1].day > day) i--;
  const at = buckets[i - 1];
  if (at?.day === day) {
    at.count += n;
    at.lastAt = Math.max(at.lastAt, lastAt);
  } else {
    buckets.splice(i, 0, { day, count: n, lastAt });
  }
}

/** The bucket day of an event time under `firstDay`. */
const dayOf = (t: number, firstDay: number) => {
  const day = Math.floor(t / DAY);
  return day < firstDay ? -1 : day;
};

/** Counts one event into `counters` (in place); returns whether any matcher counted it. */
export function countEvent(counters: Counters, scope: CounterScope, event: NormalizedEvent): boolean {
  let counted = false;
  for (const m of scope.matchers.values()) {
    if (!eventMatches(m, event)) continue;
    counters[m.id] ??= [];
    add(counters[m.id], dayOf(event.timestamp, scope.firstDay), 1, event.timestamp);
    counted = true;
  }
  return counted;
}

/**
 * Drops the counters of matchers no segment uses and collapses days before `firstDay` into day
 * -1 (in place); returns whether anything changed.
 */
export function compactCounters(counters: Counters, scope: CounterScope): boolean {
  let changed = false;
  for (const [id, buckets] of Object.entries(counters)) {
    if (!scope.matchers.has(id)) {
      delete counters[id];
      changed = true;
      continue;
    }
    const old = buckets.filter((b) => b.day >= 0 && b.day < scope.firstDay);
    if (old.length === 0) continue;
    const kept = buckets.filter((b) => b.day < 0 || b.day >= scope.firstDay);
    for (const b of old) add(kept, -1, b.count, b.lastAt);
    counters[id] = kept;
    changed = true;
  }
  return changed;
}

/** Adds `from` into `into` (in place), day by day: a merge's survivor counts both profiles' events. */
export function addCounters(into: Counters, from: Counters): void {
  for (const [id, buckets] of Object.entries(from)) {
    into[id] ??= [];
    for (const b of buckets) add(into[id], b.day, b.count, b.lastAt);
  }
}
