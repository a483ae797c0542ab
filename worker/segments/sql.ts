/**
 * The SQL compiler: the same rule as evaluate.ts, as a D1 expression over a profile row `p`, for
 * previews, back-fills and on-demand evaluation. Every value is bound. Expressions are always
 * 0 or 1, never NULL, so `NOT` behaves like the in-memory `!`.
 *
 * Event conditions read either the profile row's `counters` (matchers that existing segments keep
 * counted, segments/counters.ts) or, in a preview of a condition nobody counts yet, the `events` table itself, with the same
 * window semantics (exact "at least one within W"; other counts by UTC day). A preview reads
 * `events` once per such condition (`EventScans`), not once per profile.
 *
 * Top-level trait conditions read `profile_traits` (the indexed mirror of live profiles' traits)
 * instead of parsing each profile's JSON; `compileSet` turns a rule made only of them into index
 * lookups combined with INTERSECT / UNION / EXCEPT.
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
  leaves,
  type PageCondition,
} from "./rule";

/** D1 binds at most 100 parameters per statement. */
const MAX_PARAMS = 100;

class TooManyParams extends Error {}

/**
 * Bound values, deduplicated (`?N` may repeat). A statement needing more than D1's 100 falls back
 * to a single JSON array parameter read with `json_extract(?1, '$[i]')`.
 */
export class SqlParams {
  readonly values: (string | number)[] = [];
  private readonly seen = new Map<string, string>();
  constructor(private readonly packed = false) {}

  add(value: string | number): string {
    const key = `${typeof value}:${value}`;
    const known = this.seen.get(key);
    if (known) return known;
    this.values.push(value);
    if (!this.packed && this.values.length > MAX_PARAMS) throw new TooManyParams();
    const ref = this.packed ? `json_extract(?1, '$[${this.values.length - 1}]')` : `?${this.values.length}`;
    this.seen.set(key, ref);
    return ref;
  }

  bindings(): (string | number)[] {
    return this.packed ? [JSON.stringify(this.values)] : this.values;
  }
}

/** Prepares the statement `build` writes, packing its parameters if there are too many. */
export function prepare(db: D1Database, build: (p: SqlParams) => string): D1PreparedStatement {
  for (const packed of [false, true]) {
    const params = new SqlParams(packed);
    try {
      const sql = build(params);
      return db.prepare(sql).bind(...params.bindings());
    } catch (err) {
      if (!(err instanceof TooManyParams)) throw err;
    }
  }
  throw new Error("unreachable");
}

/** `$."a"."b"` for `a.b`; names are validated to letters, digits and `_$-`. */
export function jsonPath(path: string): string {
  return `$${path
    .split(".")
    .map((k) => `."${k}"`)
    .join("")}`;
}

const numberTypes = "('integer','real')";
const sqlOps = { eq: "=", neq: "<>", gt: ">", gte: ">=", lt: "<", lte: "<=" } as const;

/** A comparison on the JSON document `doc` (a column such as `p.traits`) at `path`. */
export function compileComparison(doc: string, path: string, c: Comparison, p: SqlParams, now: number): string {
  const at = p.add(jsonPath(path));
  const T = `json_type(${doc}, ${at})`;
  const X = `json_extract(${doc}, ${at})`;
  const date = `(CASE WHEN ${T} IN ${numberTypes} THEN ${X} WHEN ${T} = 'text' AND ${X} GLOB '[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9]*' THEN round(unixepoch(${X}, 'subsec') * 1000) END)`;
  const eq = (v: string | number | boolean) =>
    typeof v === "boolean"
      ? `${T} = '${v ? "true" : "false"}'`
      : typeof v === "number"
        ? `${T} IN ${numberTypes} AND ${X} = ${p.add(v)}`
        : `${T} = 'text' AND ${X} = ${p.add(v)}`;
  const inList = (list: (string | number)[]) =>
    `EXISTS (SELECT 1 FROM json_each(${p.add(JSON.stringify(list))}) j WHERE (j.type = 'text' AND ${T} = 'text' AND j.value = ${X}) OR (j.type IN ${numberTypes} AND ${T} IN ${numberTypes} AND j.value = ${X}))`;
  let expr: string;
  switch (c.op) {
    case "exists":
      return `(COALESCE(${T}, 'null') <> 'null')`;
    case "not_exists":
      return `(COALESCE(${T}, 'null') = 'null')`;
    case "eq":
      expr = eq(c.value);
      break;
    case "neq":
      return `(NOT COALESCE(${eq(c.value)}, 0))`;
    case "gt":
    case "gte":
    case "lt":
    case "lte":
      expr = `${T} IN ${numberTypes} AND ${X} ${sqlOps[c.op]} ${p.add(c.value)}`;
      break;
    case "contains": {
      const needle = p.add(c.value);
      expr = `CASE ${T} WHEN 'text' THEN instr(${X}, ${needle}) > 0 WHEN 'array' THEN EXISTS (SELECT 1 FROM json_each(${doc}, ${at}) j WHERE j.type = 'text' AND j.value = ${needle}) ELSE 0 END`;
      break;
    }
    case "starts_with":
      expr = `${T} = 'text' AND instr(${X}, ${p.add(c.value)}) = 1`;
      break;
    case "ends_with": {
      const needle = p.add(c.value);
      expr = `${T} = 'text' AND length(${X}) >= length(${needle}) AND substr(${X}, -length(${needle})) = ${needle}`;
      break;
    }
    case "in":
      expr = inList(c.value);
      break;
    case "not_in":
      return `(NOT COALESCE(${inList(c.value)}, 0))`;
    case "before":
    case "after":
      expr = `${date} ${c.op === "before" ? "<" : ">"} ${p.add(dateMs(c.value) as number)}`;
      break;
    case "within_last":
      expr = `${date} <= ${p.add(now)} AND ${date} >= ${p.add(now - durationMs(c.value))}`;
      break;
  }
  return `(COALESCE(${expr}, 0))`;
}

/** Where event conditions read their counts from. */
export interface EventSource {
  matcherOf(leaf: EventCondition | PageCondition): Matcher;
  /** Matchers kept in `profiles.counters`; others are counted from `events` (previews only). */
  counted(matcherId: string): boolean;
  /**
   * Set for a statement that can open with `WITH` clauses: uncounted matchers are then counted
   * in one pass over `events` each; without it, by a correlated count per profile.
   */
  scans?: EventScans;
}

/** The events (`e`) a matcher selects, as SQL: plain columns first, JSON only for `where`. */
export function compileMatch(m: Matcher, p: SqlParams): string {
  const parts = [`e.type = ${p.add(m.type)}`];
  if (m.event !== null) parts.push(`e.event = ${p.add(m.event)}`);
  for (const f of m.where) parts.push(compileComparison("e.properties", f.property, f, p, 0));
  return parts.join(" AND ");
}

/**
 * The `events` passes of one statement: per (matcher, earliest time), a CTE `scanN (pid)` with
 * the stored profile id of each matching event and, for counts, `scanN_n (pid, n)` grouping it.
 *
 * Without a driver, a pass reads the table once in its stored order and keeps only the matching
 * events' profile ids (materialised, so SQLite cannot fold a grouping into a walk of
 * `events_profile_time_idx`). Walking the timeline index instead costs a primary-key lookup per
 * event in the window, in random order once events interleave across profiles (and `events` is
 * clustered on its dedupe key): at 200k profiles and 2M events, 1.7 s against 0.5 s for the plain
 * pass, which costs what reading the table costs. No index on `events (type, event)` is needed,
 * which would cost a row written per stored event.
 *
 * With a driver (a few profiles the statement checks, `SELECT … AS pid`), the pass reads only
 * their timelines through `events_profile_time_idx`.
 */
export class EventScans {
  private readonly names = new Map<string, string>();
  private readonly grouped = new Set<string>();
  private readonly ctes: string[] = [];

  constructor(
    private readonly p: SqlParams,
    private readonly driver: string | null = null,
  ) {}

  /** The CTE of `m`'s events at or after `since` (all when null): one `pid` row per event. */
  rows(m: Matcher, since: number | null): string {
    const key = `${m.id}@${since}`;
    const known = this.names.get(key);
    if (known) return known;
    const name = `scan${this.names.size}`;
    const match = `${compileMatch(m, this.p)}${since === null ? "" : ` AND e.timestamp >= ${this.p.add(since)}`}`;
    const from = this.driver === null ? "events e" : `(${this.driver}) d CROSS JOIN events e ON e.profile_id = d.pid`;
    this.ctes.push(`${name} AS MATERIALIZED (SELECT e.profile_id AS pid FROM ${from} WHERE ${match})`);
    this.names.set(key, name);
    return name;
  }

  /** The CTE counting `m`'s events at or after `since` per stored profile id: `(pid, n)`. */
  counts(m: Matcher, since: number | null): string {
    const rows = this.rows(m, since);
    const name = `${rows}_n`;
    if (!this.grouped.has(name)) {
      this.ctes.push(`${name} AS MATERIALIZED (SELECT pid, COUNT(*) AS n FROM ${rows} GROUP BY pid)`);
      this.grouped.add(name);
    }
    return name;
  }

  /** The CTE definitions made so far, for a `WITH` clause. */
  definitions(): string[] {
    return [...this.ctes];
  }
}

/** Live profiles that absorbed others: their events may sit under the merged-away ids too. */
const SURVIVORS = "SELECT q.merged_into FROM profiles q WHERE q.merged_into IS NOT NULL";

function compileEvent(c: EventCondition | PageCondition, src: EventSource, p: SqlParams, now: number): string {
  const m = src.matcherOf(c);
  const mode = countMode(c);
  const window = c.within ? durationMs(c.within) : null;
  const firstDay = window === null ? null : Math.floor((now - window) / DAY);
  if (src.counted(m.id)) {
    // The profile row's buckets of this matcher, `[day, count, lastAt]` (segments/counters.ts).
    const base = `FROM json_each(p.counters, ${p.add(jsonPath(m.id))}) c WHERE 1`;
    if (mode.kind !== "compare") {
      const recent =
        window === null
          ? ""
          : ` AND c.value ->> 0 >= ${p.add(firstDay as number)} AND c.value ->> 2 >= ${p.add(now - window)}`;
      const some = `EXISTS (SELECT 1 ${base} AND c.value ->> 1 > 0${recent})`;
      return mode.kind === "exists" ? `(${some})` : `(NOT ${some})`;
    }
    const recent = firstDay === null ? "" : ` AND c.value ->> 0 >= ${p.add(firstDay)}`;
    return `((SELECT COALESCE(SUM(c.value ->> 1), 0) ${base}${recent}) ${sqlOps[mode.op]} ${p.add(mode.value)})`;
  }
  // Same windows as the counters: exact for "at least one"/"none", whole UTC days for counts.
  const since =
    mode.kind !== "compare" ? (window === null ? null : now - window) : firstDay === null ? null : firstDay * DAY;
  // A profile's events may sit under ids that were merged into it.
  const base = `FROM events e WHERE e.profile_id IN (SELECT q.id FROM profiles q WHERE q.id = p.id OR q.merged_into = p.id) AND ${compileMatch(m, p)}${since === null ? "" : ` AND e.timestamp >= ${p.add(since)}`}`;
  const correlated =
    mode.kind === "compare"
      ? `((SELECT COUNT(*) ${base}) ${sqlOps[mode.op]} ${p.add(mode.value)})`
      : `(${mode.kind === "none" ? "NOT " : ""}EXISTS (SELECT 1 ${base}))`;
  if (!src.scans) return correlated;
  // A profile's count is its own row of the pass (none: 0), unless ids were merged into it: those
  // few survivors keep the correlated count, so the pass needs no join to resolve merged ids.
  let own: string;
  if (mode.kind === "compare") {
    const counts = src.scans.counts(m, since);
    const test = `n ${sqlOps[mode.op]} ${p.add(mode.value)}`;
    // Profiles without a matching event are absent from the pass: decide them by a count of 0.
    own = compareNumbers(mode.op, 0, mode.value)
      ? `p.id NOT IN (SELECT pid FROM ${counts} WHERE NOT (${test}))`
      : `p.id IN (SELECT pid FROM ${counts} WHERE ${test})`;
  } else {
    own = `p.id ${mode.kind === "none" ? "NOT IN" : "IN"} (SELECT pid FROM ${src.scans.rows(m, since)})`;
  }
  return `(CASE WHEN p.id IN (${SURVIVORS}) THEN ${correlated} ELSE ${own} END)`;
}

/** Ops whose matches are the live profiles outside the positive op's set (a missing value counts). */
const complements: Partial<Record<Comparison["op"], Comparison["op"]>> = {
  neq: "eq",
  not_in: "in",
  not_exists: "exists",
};

const LIVE = "SELECT id AS pid FROM profiles WHERE merged_into IS NULL";

/**
 * A top-level trait condition as a set of profile ids read from `profile_traits` through its
 * indexes (`SELECT … AS pid`), or null for a nested path (`address.city`), which only the JSON
 * document holds. The table holds live profiles only (migration 0009 triggers), so the positive
 * set needs no join; complements are `NOT IN` that set within live profiles. Same semantics as
 * `compileComparison`: the row's `type` is the value's `json_type`.
 */
export function traitSet(
  trait: string,
  c: Comparison,
  p: SqlParams,
  now: number,
): { sql: string; complement: boolean } | null {
  if (trait.includes(".")) return null;
  const positive = complements[c.op];
  const cond = positive ? ({ ...c, op: positive } as Comparison) : c;
  const from = `SELECT t.profile_id AS pid FROM profile_traits t WHERE t.key = ${p.add(trait)}`;
  const num = `t.type IN ${numberTypes}`;
  let sql: string;
  switch (cond.op) {
    case "exists":
      sql = from;
      break;
    case "eq":
      sql =
        typeof cond.value === "boolean"
          ? `${from} AND t.type = '${cond.value ? "true" : "false"}'`
          : typeof cond.value === "number"
            ? `${from} AND ${num} AND t.value_num = ${p.add(cond.value)}`
            : `${from} AND t.value_text = ${p.add(cond.value)}`;
      break;
    case "in": {
      const texts = cond.value.filter((v) => typeof v === "string");
      const nums = cond.value.filter((v) => typeof v === "number");
      const parts: string[] = [];
      if (texts.length)
        parts.push(`${from} AND t.value_text IN (SELECT value FROM json_each(${p.add(JSON.stringify(texts))}))`);
      if (nums.length)
        parts.push(
          `${from} AND ${num} AND t.value_num IN (SELECT value FROM json_each(${p.add(JSON.stringify(nums))}))`,
        );
      sql = parts.join(" UNION ");
      break;
    }
    case "gt":
    case "gte":
    case "lt":
    case "lte":
      sql = `${from} AND ${num} AND t.value_num ${sqlOps[cond.op]} ${p.add(cond.value)}`;
      break;
    case "starts_with": {
      // Every string with this prefix sorts in [v, v || 0xF5): no UTF-8 byte is above 0xF4.
      const v = p.add(cond.value);
      sql = `${from} AND t.value_text >= ${v} AND t.value_text < (${v} || CAST(x'F5' AS TEXT)) AND instr(t.value_text, ${v}) = 1`;
      break;
    }
    case "ends_with": {
      const v = p.add(cond.value);
      sql = `${from} AND t.value_text IS NOT NULL AND length(t.value_text) >= length(${v}) AND substr(t.value_text, -length(${v})) = ${v}`;
      break;
    }
    case "contains": {
      // Arrays are not indexed element by element: read those few documents.
      const v = p.add(cond.value);
      sql = `${from} AND t.value_text IS NOT NULL AND instr(t.value_text, ${v}) > 0 UNION SELECT t.profile_id AS pid FROM profile_traits t JOIN profiles q ON q.id = t.profile_id WHERE t.key = ${p.add(trait)} AND t.type = 'array' AND EXISTS (SELECT 1 FROM json_each(q.traits, ${p.add(jsonPath(trait))}) j WHERE j.type = 'text' AND j.value = ${v})`;
      break;
    }
    case "before":
    case "after":
      // value_num of a string is its epoch ms when it reads as a date, else NULL.
      sql = `${from} AND t.type IN ('integer','real','text') AND t.value_num ${cond.op === "before" ? "<" : ">"} ${p.add(dateMs(cond.value) as number)}`;
      break;
    case "within_last":
      sql = `${from} AND t.type IN ('integer','real','text') AND t.value_num <= ${p.add(now)} AND t.value_num >= ${p.add(now - durationMs(cond.value))}`;
      break;
    default:
      return null;
  }
  return { sql, complement: positive !== undefined };
}

/** Whether `compileSet` can express the rule (top-level trait conditions under all/any/not). */
export function settable(rule: Condition): boolean {
  if ("all" in rule) return rule.all.every(settable);
  if ("any" in rule) return rule.any.every(settable);
  if ("not" in rule) return settable(rule.not);
  return "trait" in rule && !rule.trait.includes(".");
}

/** Whether `compileDriver` narrows the rule. */
export function drivable(rule: Condition): boolean {
  if (settable(rule)) return true;
  if ("all" in rule) return rule.all.some(drivable);
  if ("any" in rule) return rule.any.every(drivable);
  return false;
}

/**
 * The whole rule as a set of live profile ids (`SELECT … AS pid`), when it is made of top-level
 * trait conditions only: INTERSECT / UNION / EXCEPT of index lookups. Null otherwise.
 */
export function compileSet(rule: Condition, p: SqlParams, now: number): string | null {
  // Decided before compiling anything: an abandoned attempt would leave unused bound values.
  if (!settable(rule)) return null;
  const wrap = (sql: string) => `SELECT pid FROM (${sql})`;
  if ("all" in rule || "any" in rule) {
    const parts = ("all" in rule ? rule.all : rule.any).map((c) => compileSet(c, p, now));
    if (parts.some((s) => s === null)) return null;
    return (parts as string[]).map(wrap).join("all" in rule ? " INTERSECT " : " UNION ");
  }
  if ("not" in rule) {
    const inner = compileSet(rule.not, p, now);
    return inner === null ? null : `${LIVE} EXCEPT ${wrap(inner)}`;
  }
  if (!("trait" in rule)) return null;
  const set = traitSet(rule.trait, rule, p, now);
  if (!set) return null;
  return set.complement ? `${LIVE} EXCEPT ${wrap(set.sql)}` : set.sql;
}

/**
 * A superset of the profiles a rule selects, from indexes, to drive a scan that then checks the
 * full rule per row: the intersection of an `all`'s set-compilable parts, the union of an `any`'s
 * drivers. Null when nothing narrows the rule (every live profile must be checked).
 */
export function compileDriver(rule: Condition, p: SqlParams, now: number): string | null {
  if (!drivable(rule)) return null;
  if (settable(rule)) return compileSet(rule, p, now);
  const parts = "all" in rule ? rule.all.filter(drivable) : "any" in rule ? rule.any : [];
  return parts
    .map((c) => `SELECT pid FROM (${compileDriver(c, p, now)})`)
    .join("all" in rule ? " INTERSECT " : " UNION ");
}

/** Compiles a rule into a 0/1 expression over the profile row `p`. */
export function compileRule(rule: Condition, src: EventSource, p: SqlParams, now: number): string {
  if ("all" in rule) return `(${rule.all.map((c) => compileRule(c, src, p, now)).join(" AND ")})`;
  if ("any" in rule) return `(${rule.any.map((c) => compileRule(c, src, p, now)).join(" OR ")})`;
  if ("not" in rule) return `(NOT ${compileRule(rule.not, src, p, now)})`;
  if ("trait" in rule) {
    const set = traitSet(rule.trait, rule, p, now);
    if (set) return `(p.id ${set.complement ? "NOT IN" : "IN"} (${set.sql}))`;
    return compileComparison("p.traits", rule.trait, rule, p, now);
  }
  if ("computed" in rule) return compileComparison("p.computed", rule.computed, rule, p, now);
  if ("segment" in rule) {
    return `(EXISTS (SELECT 1 FROM memberships sm WHERE sm.segment_key = ${p.add(rule.segment)} AND sm.profile_id = p.id))`;
  }
  return compileEvent(rule, src, p, now);
}

/**
 * The live profiles a rule selects at `now`, as a `WITH` clause whose last CTE is `hits (pid)`,
 * for one statement that both counts and samples them. Each uncounted matcher is one pass over
 * `events` (`EventScans`), restricted to the driver's profiles when `narrow` says the driver
 * selects few; trait conditions that narrow the rule drive the walk (`compileDriver`); otherwise
 * the walk reads only an index of live profiles while every condition is an `IN` list.
 */
export function compileHits(rule: Condition, src: EventSource, p: SqlParams, now: number, narrow = false): string {
  // CROSS JOIN keeps SQLite from walking all profiles and probing the driver set per row.
  const driver = compileDriver(rule, p, now);
  const scans = new EventScans(p, narrow ? driver : null);
  const from = driver === null ? "profiles p" : `(${driver}) d CROSS JOIN profiles p ON p.id = d.pid`;
  const where = compileRule(rule, { ...src, scans }, p, now);
  const hits = `hits AS MATERIALIZED (SELECT p.id AS pid FROM ${from} WHERE p.merged_into IS NULL AND ${where})`;
  return `WITH ${[...scans.definitions(), hits].join(", ")}`;
}

/**
 * Candidate re-check times for every profile (rows `pid, t`), mirroring `nextChange` in
 * evaluate.ts: when a windowed event condition or a `within_last` date can flip without an event.
 * Null when the rule has no time-dependent condition.
 */
export function compileCheckTimes(rule: Condition, src: EventSource, p: SqlParams, now: number): string | null {
  const parts: string[] = [];
  leaves(rule, (c) => {
    if ("segment" in c || "all" in c || "any" in c || "not" in c) return;
    if ("trait" in c || "computed" in c) {
      if (c.op !== "within_last") return;
      if ("trait" in c && !c.trait.includes(".")) {
        // value_num is the trait's date (epoch ms) whether stored as a number or an ISO string.
        const n = p.add(now);
        const lapse = p.add(durationMs(c.value) + 1);
        parts.push(
          `SELECT t.profile_id AS pid, CASE WHEN t.value_num > ${n} THEN t.value_num ELSE t.value_num + ${lapse} END AS t FROM profile_traits t WHERE t.key = ${p.add(c.trait)} AND t.type IN ('integer','real','text') AND t.value_num > ${n} - ${lapse}`,
        );
        return;
      }
      const doc = "trait" in c ? "p.traits" : "p.computed";
      const at = p.add(jsonPath("trait" in c ? c.trait : c.computed));
      const T = `json_type(${doc}, ${at})`;
      const X = `json_extract(${doc}, ${at})`;
      const D = `(CASE WHEN ${T} IN ${numberTypes} THEN ${X} WHEN ${T} = 'text' AND ${X} GLOB '[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9]*' THEN round(unixepoch(${X}, 'subsec') * 1000) END)`;
      const n = p.add(now);
      const lapse = `${D} + ${p.add(durationMs(c.value) + 1)}`;
      parts.push(
        `SELECT p.id AS pid, CASE WHEN ${D} > ${n} THEN ${D} ELSE ${lapse} END AS t FROM profiles p WHERE p.merged_into IS NULL AND (${D} > ${n} OR ${lapse} > ${n})`,
      );
      return;
    }
    if (!c.within) return;
    const window = durationMs(c.within);
    const m = src.matcherOf(c).id;
    // Every live profile row's buckets of the matcher (`instr` skips rows that never held any).
    const buckets = `FROM profiles p CROSS JOIN json_each(p.counters, ${p.add(jsonPath(m))}) c WHERE p.merged_into IS NULL AND instr(p.counters, ${p.add(m)}) > 0 AND c.value ->> 1 > 0`;
    if (countMode(c).kind !== "compare") {
      parts.push(
        `SELECT p.id AS pid, MAX(c.value ->> 2) + ${p.add(window + 1)} AS t ${buckets} AND c.value ->> 2 >= ${p.add(now - window)} GROUP BY p.id`,
      );
    } else {
      parts.push(
        `SELECT p.id AS pid, (MIN(c.value ->> 0) + 1) * ${DAY} + ${p.add(window)} AS t ${buckets} AND c.value ->> 0 >= ${p.add(Math.floor((now - window) / DAY))} GROUP BY p.id`,
      );
    }
  });
  return parts.length ? parts.join(" UNION ALL ") : null;
}
