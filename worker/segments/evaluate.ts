/**
 * The in-memory compiler: evaluates a rule over one profile's facts (traits, computed traits,
 * event counters, memberships) at a given time, and says when the answer can next change without
 * a new event (a window lapsing), so the cron can look again exactly then.
 */
import type { Matcher } from "./matchers";
import {
  type Comparison,
  type Condition,
  compareNumbers,
  countMode,
  DAY,
  dateMs,
  durationMs,
  type EventCondition,
  type PageCondition,
} from "./rule";

/** One day of matching events: how many, and the latest one's time. */
export interface Bucket {
  /** Days since the epoch (UTC); -1 collapses days older than any window in use. */
  day: number;
  count: number;
  lastAt: number;
}

export interface ProfileFacts {
  traits: Record<string, unknown>;
  computed: Record<string, unknown>;
  counters(matcherId: string): readonly Bucket[];
  member(segmentKey: string): boolean;
}

export interface Outcome {
  value: boolean;
  /** The earliest time (ms) at which `value` may flip with no new event, if any. */
  nextChange: number | null;
}

/** Reads a dotted path through own properties only (a trait named `__proto__` reads nothing). */
export function valueAt(doc: unknown, path: string): unknown {
  let node = doc;
  for (const key of path.split(".")) {
    if (!node || typeof node !== "object" || Array.isArray(node) || !Object.hasOwn(node, key)) return undefined;
    node = (node as Record<string, unknown>)[key];
  }
  return node;
}

const missing = (v: unknown) => v === undefined || v === null;

function sameTypedEqual(a: unknown, b: unknown): boolean {
  return (typeof a === "string" || typeof a === "number" || typeof a === "boolean") && a === b;
}

/** Applies a comparison to a value (`now` for `within_last`). */
export function compare(value: unknown, c: Comparison, now: number): boolean {
  switch (c.op) {
    case "exists":
      return !missing(value);
    case "not_exists":
      return missing(value);
    case "eq":
      return sameTypedEqual(value, c.value);
    case "neq":
      return !sameTypedEqual(value, c.value);
    case "gt":
    case "gte":
    case "lt":
    case "lte":
      return typeof value === "number" && compareNumbers(c.op, value, c.value);
    case "contains":
      if (typeof value === "string") return value.includes(c.value);
      return Array.isArray(value) && value.some((item) => item === c.value);
    case "starts_with":
      return typeof value === "string" && value.startsWith(c.value);
    case "ends_with":
      return typeof value === "string" && value.endsWith(c.value);
    case "in":
      return c.value.some((item) => sameTypedEqual(value, item));
    case "not_in":
      return !c.value.some((item) => sameTypedEqual(value, item));
    case "before":
    case "after": {
      const t = dateMs(value);
      const bound = dateMs(c.value) as number;
      return t !== null && (c.op === "before" ? t < bound : t > bound);
    }
    case "within_last": {
      const t = dateMs(value);
      return t !== null && t <= now && t >= now - durationMs(c.value);
    }
  }
}

function comparisonOutcome(value: unknown, c: Comparison, now: number): Outcome {
  const result = compare(value, c, now);
  if (c.op !== "within_last") return { value: result, nextChange: null };
  const t = dateMs(value);
  if (t === null) return { value: result, nextChange: null };
  const lapse = t + durationMs(c.value) + 1;
  return { value: result, nextChange: t > now ? t : lapse > now ? lapse : null };
}

function eventOutcome(c: EventCondition | PageCondition, buckets: readonly Bucket[], now: number): Outcome {
  const mode = countMode(c);
  const window = c.within ? durationMs(c.within) : null;
  if (mode.kind !== "compare") {
    let lastAt = Number.NEGATIVE_INFINITY;
    for (const b of buckets) if (b.count > 0 && b.lastAt > lastAt) lastAt = b.lastAt;
    const some = window === null ? lastAt > Number.NEGATIVE_INFINITY : lastAt >= now - window;
    const nextChange = window !== null && some ? lastAt + window + 1 : null;
    return { value: mode.kind === "exists" ? some : !some, nextChange };
  }
  if (window === null) {
    const total = buckets.reduce((n, b) => n + b.count, 0);
    return { value: compareNumbers(mode.op, total, mode.value), nextChange: null };
  }
  // Day granularity: the window covers every UTC day it overlaps; a day leaves it once the window
  // start passes the end of that day.
  const firstDay = Math.floor((now - window) / DAY);
  let total = 0;
  let oldest = Number.POSITIVE_INFINITY;
  for (const b of buckets) {
    if (b.day < firstDay || b.count <= 0) continue;
    total += b.count;
    oldest = Math.min(oldest, b.day);
  }
  const nextChange = oldest === Number.POSITIVE_INFINITY ? null : (oldest + 1) * DAY + window;
  return { value: compareNumbers(mode.op, total, mode.value), nextChange };
}

const earliest = (a: number | null, b: number | null) => (a === null ? b : b === null ? a : Math.min(a, b));

/**
 * Evaluates `rule` for one profile. Every branch is evaluated (no short-circuit) so that the
 * next-change time covers every window the answer depends on.
 */
export function evaluate(
  rule: Condition,
  facts: ProfileFacts,
  now: number,
  matcherOf: (leaf: EventCondition | PageCondition) => Matcher,
): Outcome {
  if ("all" in rule || "any" in rule) {
    const parts = ("all" in rule ? rule.all : rule.any).map((c) => evaluate(c, facts, now, matcherOf));
    const value = "all" in rule ? parts.every((p) => p.value) : parts.some((p) => p.value);
    return { value, nextChange: parts.reduce<number | null>((t, p) => earliest(t, p.nextChange), null) };
  }
  if ("not" in rule) {
    const inner = evaluate(rule.not, facts, now, matcherOf);
    return { value: !inner.value, nextChange: inner.nextChange };
  }
  if ("trait" in rule) return comparisonOutcome(valueAt(facts.traits, rule.trait), rule, now);
  if ("computed" in rule) return comparisonOutcome(valueAt(facts.computed, rule.computed), rule, now);
  if ("segment" in rule) return { value: facts.member(rule.segment), nextChange: null };
  return eventOutcome(rule, facts.counters(matcherOf(rule).id), now);
}
