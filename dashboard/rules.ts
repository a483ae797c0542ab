/**
 * The rule builder's model: plain functions over the rule JSON of issue 6, so that the builder
 * and the raw JSON tab edit the same value. No rule is ever evaluated here (the server does that).
 */
import type { Op, PropertyFilter, Rule } from "./api";

export type Group = { all: Rule[] } | { any: Rule[] };
export type LeafKind = "trait" | "computed" | "event" | "page" | "segment";

export const ops: { op: Op; label: string }[] = [
  { op: "eq", label: "equals" },
  { op: "neq", label: "does not equal" },
  { op: "gt", label: ">" },
  { op: "gte", label: "≥" },
  { op: "lt", label: "<" },
  { op: "lte", label: "≤" },
  { op: "contains", label: "contains" },
  { op: "starts_with", label: "starts with" },
  { op: "ends_with", label: "ends with" },
  { op: "in", label: "is one of" },
  { op: "not_in", label: "is none of" },
  { op: "exists", label: "exists" },
  { op: "not_exists", label: "does not exist" },
  { op: "before", label: "is before" },
  { op: "after", label: "is after" },
  { op: "within_last", label: "is within the last" },
];

export const countOps: Op[] = ["gte", "gt", "eq", "neq", "lte", "lt"];

/** Event property filters take every operator but `within_last` (events carry their own time). */
export const propertyOps: Op[] = ops.map((o) => o.op).filter((op) => op !== "within_last");

/** Computed traits of issue 5, offered as suggestions (any name is accepted). */
export const computedNames = [
  "first_seen",
  "last_seen",
  "sessions",
  "page_views",
  "total_revenue",
  "order_count",
  "first_touch",
  "last_touch",
  "last_page",
  "country",
  "browser",
  "device",
];

export const isGroup = (r: Rule): r is Group => "all" in r || "any" in r;
export const childrenOf = (g: Group): Rule[] => ("all" in g ? g.all : g.any);
export const withChildren = (g: Group, children: Rule[]): Group => ("all" in g ? { all: children } : { any: children });

/** The builder always edits a group at the root; a bare condition is shown as a group of one. */
export function asRoot(rule: Rule | null | undefined): Group {
  if (!rule) return { all: [] };
  return isGroup(rule) ? rule : { all: [rule] };
}

/** What a node is; "other" for shapes the builder does not edit (kept as they are, see the JSON tab). */
export function kindOf(r: Rule): LeafKind | "group" | "not" | "other" {
  if (isGroup(r)) return "group";
  if ("not" in r) return "not";
  if ("trait" in r) return "trait";
  if ("computed" in r) return "computed";
  if ("event" in r) return "event";
  if ("page" in r) return "page";
  if ("segment" in r) return "segment";
  return "other";
}

export function newLeaf(kind: LeafKind): Rule {
  switch (kind) {
    case "trait":
      return { trait: "", op: "eq", value: "" };
    case "computed":
      return { computed: "total_revenue", op: "gte", value: 100 };
    case "event":
      return { event: "", within: "7d" };
    case "page":
      return { page: true, where: [{ property: "path", op: "starts_with", value: "/" }], within: "7d" };
    case "segment":
      return { segment: "" };
  }
}

/** Operators that take no value. */
export const noValue = (op: Op) => op === "exists" || op === "not_exists";

/**
 * The typed value for what the user typed: lists for `in`/`not_in`, numbers where the text is a
 * plain number (no leading zeros, so ids like "02139" stay text), booleans for true/false, and the
 * text otherwise (durations, dates, strings).
 */
export function coerceValue(op: Op, input: string): unknown {
  if (op === "in" || op === "not_in") {
    return input
      .split(",")
      .map((s) => s.trim())
      .filter(Boolean)
      .map((s) => coerceScalar(s));
  }
  if (op === "within_last" || op === "before" || op === "after") return input.trim();
  return coerceScalar(input);
}

function coerceScalar(s: string): unknown {
  // Only text that survives the round trip becomes a number, so typing "1.0" on the way to
  // "1.05" is not rewritten under the cursor.
  if (/^-?(0|[1-9]\d{0,14})(\.\d+)?$/.test(s) && String(Number(s)) === s) return Number(s);
  if (s === "true") return true;
  if (s === "false") return false;
  return s;
}

/** The text shown in a value input for a stored value. */
export function valueText(value: unknown): string {
  if (Array.isArray(value)) return value.map((v) => String(v)).join(", ");
  if (value === undefined || value === null) return "";
  return String(value);
}

/** Sets `op` and keeps the value consistent with it (no value for exists; a list for in). */
export function withOp<T extends { op: Op; value?: unknown }>(leaf: T, op: Op): T {
  const next = { ...leaf, op };
  if (noValue(op)) delete next.value;
  else next.value = coerceValue(op, valueText(leaf.value));
  return next;
}

export function withFilter(filters: PropertyFilter[] | undefined, i: number, f: PropertyFilter | null) {
  const list = [...(filters ?? [])];
  if (f) list[i] = f;
  else list.splice(i, 1);
  return list;
}

/** Leaves in a rule (the server bounds them; the builder shows the count). */
export function leafCount(r: Rule): number {
  if (isGroup(r)) return childrenOf(r).reduce((n, c) => n + leafCount(c), 0);
  if ("not" in r) return leafCount(r.not);
  return 1;
}

/** Whether a rule is complete enough to preview (no empty names). */
export function isComplete(r: Rule): boolean {
  if (isGroup(r)) return childrenOf(r).length > 0 && childrenOf(r).every(isComplete);
  if ("not" in r) return isComplete(r.not);
  if ("trait" in r) return r.trait.trim() !== "";
  if ("computed" in r) return r.computed.trim() !== "";
  if ("event" in r) return r.event.trim() !== "" && (r.where ?? []).every((w) => w.property.trim() !== "");
  if ("page" in r) return (r.where ?? []).every((w) => w.property.trim() !== "");
  if ("segment" in r) return r.segment.trim() !== "";
  return true;
}
