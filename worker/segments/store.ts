/**
 * Segments as the evaluators need them: rules parsed once, matchers hashed, dependencies known,
 * ordered so that a segment comes after the segments it refers to. Cached per isolate and
 * invalidated by the rows' `updated_at`.
 */
import { type Matcher, matcherKey, matcherOf } from "./matchers";
import {
  type Condition,
  condition,
  DAY,
  durationMs,
  type EventCondition,
  leaves,
  type PageCondition,
  referencedSegments,
} from "./rule";

export interface CompiledSegment {
  key: string;
  name: string;
  rule: Condition;
  updatedAt: number;
  /** Distinct matchers of the rule's event conditions. */
  matchers: Matcher[];
  matcherOf(leaf: EventCondition | PageCondition): Matcher;
  refs: string[];
  /** Top-level trait names read (a change to `address` touches `address.city`). */
  traits: Set<string>;
  usesComputed: boolean;
  /** Has a time window or `within_last`: the answer can change as time passes. */
  timed: boolean;
  /** The longest window, in ms (0 when none). */
  maxWindow: number;
}

export interface SegmentSet {
  /** Topological order: every segment after those it refers to. */
  list: CompiledSegment[];
  byKey: Map<string, CompiledSegment>;
  /** Every matcher in use, by id. */
  matchers: Map<string, Matcher>;
  /** Keys of the segments that refer to `key`, directly or not. */
  dependentsOf(key: string): Set<string>;
  /** The earliest day any windowed condition can look at. */
  firstDay(now: number): number;
  /** The longest window of any segment, in ms (0 when none). */
  maxWindow: number;
  /**
   * `[key, updated_at]` of every segment as loaded, for a write guard (profiles/state.ts): a
   * writer that decided with this set aborts if a segment was saved or deleted meanwhile.
   */
  heads: [string, number][];
}

/** Parses and analyses one segment's rule. */
export async function compileSegment(row: {
  key: string;
  name: string;
  rule: unknown;
  updatedAt: number;
}): Promise<CompiledSegment> {
  const rule = condition.parse(row.rule);
  const byKey = new Map<string, Matcher>();
  const matchers = new Map<string, Matcher>();
  const traits = new Set<string>();
  let usesComputed = false;
  let timed = false;
  let maxWindow = 0;
  const eventLeaves: (EventCondition | PageCondition)[] = [];
  leaves(rule, (leaf) => {
    if ("trait" in leaf || "computed" in leaf) {
      if ("trait" in leaf) traits.add(leaf.trait.split(".")[0]);
      else usesComputed = true;
      if (leaf.op === "within_last") {
        timed = true;
        maxWindow = Math.max(maxWindow, durationMs(leaf.value));
      }
    } else if ("event" in leaf || "page" in leaf) {
      eventLeaves.push(leaf);
      if (leaf.within) {
        timed = true;
        maxWindow = Math.max(maxWindow, durationMs(leaf.within));
      }
    }
  });
  for (const leaf of eventLeaves) {
    const m = await matcherOf(leaf);
    byKey.set(matcherKey(leaf), m);
    matchers.set(m.id, m);
  }
  return {
    key: row.key,
    name: row.name,
    rule,
    updatedAt: row.updatedAt,
    matchers: [...matchers.values()],
    matcherOf: (leaf) => {
      const m = byKey.get(matcherKey(leaf));
      if (!m) throw new Error("matcherOf: condition is not part of this segment's rule");
      return m;
    },
    refs: referencedSegments(rule),
    traits,
    usesComputed,
    timed,
    maxWindow,
  };
}

/** The `segments.dependencies` column: what a rule reads, for inspection and other modules. */
export function dependenciesOf(seg: CompiledSegment): Record<string, string[]> {
  return {
    traits: [...seg.traits],
    matchers: seg.matchers.map((m) => m.id),
    events: [...new Set(seg.matchers.map((m) => m.event ?? "$page"))],
    segments: seg.refs,
    computed: seg.usesComputed ? ["*"] : [],
  };
}

/** Orders segments so that references come first; segments caught in a cycle go last. */
export function buildSet(segments: CompiledSegment[], heads: [string, number][] = []): SegmentSet {
  const byKey = new Map(segments.map((s) => [s.key, s]));
  const list: CompiledSegment[] = [];
  const state = new Map<string, "visiting" | "done">();
  const visit = (s: CompiledSegment): boolean => {
    const st = state.get(s.key);
    if (st === "done") return true;
    if (st === "visiting") return false;
    state.set(s.key, "visiting");
    const ok = s.refs.every((k) => {
      const ref = byKey.get(k);
      return !ref || visit(ref);
    });
    state.set(s.key, "done");
    if (ok) list.push(s);
    return ok;
  };
  for (const s of segments) visit(s);
  for (const s of segments) if (!list.includes(s)) list.push(s);

  const direct = new Map<string, string[]>();
  for (const s of segments) for (const r of s.refs) direct.set(r, [...(direct.get(r) ?? []), s.key]);
  const matchers = new Map<string, Matcher>();
  for (const s of segments) for (const m of s.matchers) matchers.set(m.id, m);
  const maxWindow = Math.max(0, ...segments.map((s) => s.maxWindow));
  return {
    list,
    byKey,
    matchers,
    dependentsOf(key) {
      const out = new Set<string>();
      const queue = [...(direct.get(key) ?? [])];
      while (queue.length) {
        const k = queue.pop() as string;
        if (out.has(k)) continue;
        out.add(k);
        queue.push(...(direct.get(k) ?? []));
      }
      return out;
    },
    firstDay: (now) => Math.floor((now - maxWindow) / DAY),
    maxWindow,
    heads,
  };
}

let cached: { signature: string; set: SegmentSet } | undefined;

/** Every segment, compiled; one small query when nothing changed since the last call. */
export async function loadSegments(db: D1Database): Promise<SegmentSet> {
  const heads = await db
    .prepare("SELECT key, updated_at FROM segments ORDER BY key")
    .all<{ key: string; updated_at: number }>();
  const signature = heads.results.map((r) => `${r.key}:${r.updated_at}`).join("|");
  if (cached?.signature === signature) return cached.set;
  const rows = await db
    .prepare("SELECT key, name, rule, updated_at FROM segments ORDER BY key")
    .all<{ key: string; name: string; rule: string; updated_at: number }>();
  const compiled = await Promise.all(
    rows.results.map((r) =>
      compileSegment({ key: r.key, name: r.name, rule: JSON.parse(r.rule), updatedAt: r.updated_at }),
    ),
  );
  const set = buildSet(
    compiled,
    rows.results.map((r) => [r.key, r.updated_at]),
  );
  cached = { signature: rows.results.map((r) => `${r.key}:${r.updated_at}`).join("|"), set };
  return set;
}
