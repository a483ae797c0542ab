/**
 * The segment rule language: JSON data validated with zod, never code. A rule is one condition:
 * `all`/`any`/`not` groups, trait and computed-trait comparisons, event conditions (track events
 * by name, or page views) with property filters, counts and time windows, and references to other
 * segments. Both compilers (evaluate.ts in memory, sql.ts for D1) implement the semantics below.
 *
 * Semantics (no type coercion, so both compilers agree):
 * - A value is missing when absent or JSON null. `exists`/`not_exists` test that.
 * - `eq` compares with the same JSON type (`"1"` is not `1`); `neq` is `not eq`, so a missing
 *   value is "not equal". `in`/`not_in` likewise, over a list of strings and numbers.
 * - `gt`/`gte`/`lt`/`lte` compare numbers only. `contains` is a substring test on strings and a
 *   membership test on arrays of strings; `starts_with`/`ends_with` test strings. All
 *   string tests are case-sensitive.
 * - Dates (`before`, `after`, `within_last`) read epoch milliseconds or ISO-8601 strings
 *   (`2024-05-01`, `2024-05-01T10:00:00Z`, `2024-05-01T12:00:00.250+02:00`).
 */
import { z } from "zod";

export const MAX_DEPTH = 8;
export const MAX_LEAVES = 50;
export const MINUTE = 60_000;
export const HOUR = 3_600_000;
export const DAY = 86_400_000;
const MAX_WINDOW = 400 * DAY;

/** A trait or property name; dots walk into nested objects (`address.city`). */
const path = z
  .string()
  .min(1)
  .max(128)
  .regex(/^[A-Za-z0-9_$-]+(\.[A-Za-z0-9_$-]+){0,4}$/, "Use letters, digits, _ $ - and dots between names");

/** A duration such as `30m`, `2h`, `7d` (at most 400 days). */
export const duration = z
  .string()
  .max(5)
  .regex(/^\d{1,4}(m|h|d)$/, "Use a number and m, h or d, e.g. 30m, 2h, 7d")
  .refine((d) => durationMs(d) > 0 && durationMs(d) <= MAX_WINDOW, "Between 1 minute and 400 days");

/** Milliseconds of a validated duration. */
export function durationMs(d: string): number {
  const n = Number(d.slice(0, -1));
  const unit = d.slice(-1);
  return n * (unit === "m" ? MINUTE : unit === "h" ? HOUR : DAY);
}

const isoDate = /^(\d{4})-(\d{2})-(\d{2})(?:[T ](\d{2}):(\d{2})(?::(\d{2})(?:\.(\d{1,3}))?)?(Z|[+-]\d{2}:\d{2})?)?$/;

/**
 * Epoch ms of a date value: a number is already epoch ms; a string must be ISO-8601 (the subset
 * SQLite's date functions read, so the SQL compiler agrees); anything else is not a date.
 */
export function dateMs(value: unknown): number | null {
  if (typeof value === "number") return Number.isFinite(value) ? value : null;
  if (typeof value !== "string") return null;
  const m = isoDate.exec(value);
  if (!m) return null;
  const [, y, mo, d, h = "0", mi = "0", s = "0", frac = "", tz] = m;
  if (+mo < 1 || +mo > 12 || +d < 1 || +d > 31 || +h > 23 || +mi > 59 || +s > 59) return null;
  let ms = Date.UTC(+y, +mo - 1, +d, +h, +mi, +s, Number(frac.padEnd(3, "0")));
  if (tz && tz !== "Z") {
    const sign = tz[0] === "-" ? -1 : 1;
    ms -= sign * (Number(tz.slice(1, 3)) * 60 + Number(tz.slice(4, 6))) * MINUTE;
  }
  return ms;
}

const text = z.string().max(1000);
const needle = z.string().min(1).max(1000);
const scalar = z.union([text, z.number().finite(), z.boolean()]);
const dateValue = z.union([
  z.number().int().min(0).max(8.64e15),
  z
    .string()
    .max(40)
    .refine((v) => dateMs(v) !== null, "Expected an ISO-8601 date such as 2024-05-01 or 2024-05-01T10:00:00Z"),
]);

/** The comparison part of a trait, computed-trait or property condition. */
const comparisons = [
  z.strictObject({ op: z.enum(["eq", "neq"]), value: scalar }),
  z.strictObject({ op: z.enum(["gt", "gte", "lt", "lte"]), value: z.number().finite() }),
  z.strictObject({ op: z.enum(["contains", "starts_with", "ends_with"]), value: needle }),
  z.strictObject({
    op: z.enum(["in", "not_in"]),
    value: z
      .array(z.union([text, z.number().finite()]))
      .min(1)
      .max(100),
  }),
  z.strictObject({ op: z.enum(["exists", "not_exists"]) }),
  z.strictObject({ op: z.enum(["before", "after"]), value: dateValue }),
  z.strictObject({ op: z.literal("within_last"), value: duration }),
] as const;

/** A comparison on a named value: `{"<key>": "plan", "op": "eq", "value": "pro"}`. */
function on<K extends string>(key: K, ops: readonly (typeof comparisons)[number][] = comparisons) {
  return z.union(ops.map((c) => c.extend({ [key]: path }))) as unknown as z.ZodType<Record<K, string> & Comparison>;
}

export type Comparison =
  | { op: "eq" | "neq"; value: string | number | boolean }
  | { op: "gt" | "gte" | "lt" | "lte"; value: number }
  | { op: "contains" | "starts_with" | "ends_with"; value: string }
  | { op: "in" | "not_in"; value: (string | number)[] }
  | { op: "exists" | "not_exists" }
  | { op: "before" | "after"; value: number | string }
  | { op: "within_last"; value: string };

export type Op = Comparison["op"];

export const traitCondition = on("trait");
export const computedCondition = on("computed");
/** Event property filters: every comparison except `within_last` (events carry their own time). */
export const propertyFilter = on("property", comparisons.slice(0, 6)) as z.ZodType<
  { property: string } & Exclude<Comparison, { op: "within_last" }>
>;
export type PropertyFilter = z.infer<typeof propertyFilter>;

const eventOptions = {
  where: z.array(propertyFilter).max(10).optional(),
  count: z
    .strictObject({
      op: z.enum(["eq", "neq", "gt", "gte", "lt", "lte"]),
      value: z.number().int().min(0).max(1_000_000),
    })
    .optional(),
  within: duration.optional(),
};

export const eventCondition = z.strictObject({ event: z.string().trim().min(1).max(200), ...eventOptions });
/** Page views: events of type `page`, filterable on their properties (`path`, `url`, `title`, …). */
export const pageCondition = z.strictObject({ page: z.literal(true), ...eventOptions });
export const segmentCondition = z.strictObject({
  segment: z
    .string()
    .max(64)
    .regex(/^[a-z0-9][a-z0-9_-]{0,63}$/),
});

export type TraitCondition = { trait: string } & Comparison;
export type ComputedCondition = { computed: string } & Comparison;
export type EventCondition = z.infer<typeof eventCondition>;
export type PageCondition = z.infer<typeof pageCondition>;
export type SegmentCondition = z.infer<typeof segmentCondition>;
export type Condition =
  | { all: Condition[] }
  | { any: Condition[] }
  | { not: Condition }
  | TraitCondition
  | ComputedCondition
  | EventCondition
  | PageCondition
  | SegmentCondition;

/** The recursive rule schema (also rendered into the OpenAPI document). */
export const condition: z.ZodType<Condition> = z.lazy(() =>
  z.union([
    z.strictObject({ all: z.array(condition).min(1).max(MAX_LEAVES) }),
    z.strictObject({ any: z.array(condition).min(1).max(MAX_LEAVES) }),
    z.strictObject({ not: condition }),
    traitCondition,
    computedCondition,
    eventCondition,
    pageCondition,
    segmentCondition,
  ]),
);

/** Checks nesting before zod walks the tree, so a hostile 10,000-level document is refused cheaply. */
function shape(raw: unknown): string | null {
  let leaves = 0;
  const stack: { node: unknown; depth: number }[] = [{ node: raw, depth: 1 }];
  while (stack.length) {
    const { node, depth } = stack.pop() as { node: unknown; depth: number };
    if (depth > MAX_DEPTH) return `Rules nest at most ${MAX_DEPTH} levels deep`;
    if (!node || typeof node !== "object" || Array.isArray(node)) continue;
    const group = node as Record<string, unknown>;
    const children = Array.isArray(group.all) ? group.all : Array.isArray(group.any) ? group.any : null;
    if (children) {
      for (const child of children.slice(0, MAX_LEAVES + 1)) stack.push({ node: child, depth: depth + 1 });
    } else if ("not" in group) {
      stack.push({ node: group.not, depth: depth + 1 });
    } else if (++leaves > MAX_LEAVES) {
      return `Rules have at most ${MAX_LEAVES} conditions`;
    }
  }
  return null;
}

type Issue = z.core.$ZodIssue;

/** How badly a union branch failed: a wrong kind of condition scores high, a wrong value low. */
function mismatch(branch: Issue[]): number {
  return branch.reduce((n, i) => {
    if (i.path.length === 1 && i.path[0] === "op") return n + 150;
    if (i.code === "unrecognized_keys") return n + 100;
    if (i.path.length === 1 && i.code === "invalid_type") return n + 50;
    return n + 1;
  }, 0);
}

/**
 * zod reports a failed union as one opaque "Invalid input"; report instead the problems of the
 * branch the author evidently meant (the trait comparison with the right `op`, …).
 */
function explain(issues: Issue[], base: PropertyKey[] = []): { path: PropertyKey[]; message: string }[] {
  return issues.flatMap((i) => {
    const path = [...base, ...i.path];
    if (i.code !== "invalid_union" || i.errors.length === 0) return [{ path, message: i.message }];
    const ranked = [...i.errors].sort((a, b) => mismatch(a) - mismatch(b));
    if (mismatch(ranked[0]) >= 150) {
      return [
        {
          path,
          message:
            "Not a condition: expected one of all, any, not, trait, computed, event, page or segment with its fields",
        },
      ];
    }
    return explain(ranked[0], path);
  });
}

/** The rule as accepted by the API: shape limits first, then the schema, with readable errors. */
export const ruleInput = z.unknown().transform((raw, ctx): Condition => {
  const problem = shape(raw);
  if (problem) {
    ctx.addIssue({ code: "custom", message: problem });
    return z.NEVER;
  }
  const parsed = condition.safeParse(raw);
  if (!parsed.success) {
    for (const issue of explain(parsed.error.issues).slice(0, 20)) {
      ctx.addIssue({ code: "custom", message: issue.message, path: issue.path as (string | number)[] });
    }
    return z.NEVER;
  }
  return parsed.data;
});

/** Calls `visit` on every leaf of a rule. */
export function leaves(rule: Condition, visit: (leaf: Condition) => void): void {
  if ("all" in rule) for (const c of rule.all) leaves(c, visit);
  else if ("any" in rule) for (const c of rule.any) leaves(c, visit);
  else if ("not" in rule) leaves(rule.not, visit);
  else visit(rule);
}

/** Segment keys a rule refers to. */
export function referencedSegments(rule: Condition): string[] {
  const keys = new Set<string>();
  leaves(rule, (leaf) => {
    if ("segment" in leaf) keys.add(leaf.segment);
  });
  return [...keys];
}

/**
 * How an event condition counts: `exists`/`none` are "at least one" and "none" (exact for any
 * window, through each bucket's latest event time); any other count compares the number of
 * matching events on the UTC days the window overlaps.
 */
export function countMode(
  c: EventCondition | PageCondition,
):
  | { kind: "exists" }
  | { kind: "none" }
  | { kind: "compare"; op: "eq" | "neq" | "gt" | "gte" | "lt" | "lte"; value: number } {
  const count = c.count ?? { op: "gte", value: 1 };
  const { op, value } = count;
  if ((op === "gte" && value === 1) || (op === "gt" && value === 0) || (op === "neq" && value === 0)) {
    return { kind: "exists" };
  }
  if ((op === "eq" && value === 0) || (op === "lt" && value === 1) || (op === "lte" && value === 0)) {
    return { kind: "none" };
  }
  return { kind: "compare", op, value };
}

/** Compares two numbers with a rule operator. */
export function compareNumbers(op: "eq" | "neq" | "gt" | "gte" | "lt" | "lte", a: number, b: number): boolean {
  switch (op) {
    case "eq":
      return a === b;
    case "neq":
      return a !== b;
    case "gt":
      return a > b;
    case "gte":
      return a >= b;
    case "lt":
      return a < b;
    case "lte":
      return a <= b;
  }
}
