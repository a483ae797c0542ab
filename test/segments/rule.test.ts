import { describe, expect, it } from "vitest";
import { compare, evaluate } from "../../worker/segments/evaluate";
import { type Comparison, type Condition, dateMs, ruleInput } from "../../worker/segments/rule";

const NOW = Date.UTC(2025, 4, 14, 12);
const parse = (rule: unknown) => ruleInput.safeParse(rule);

describe("rule language: validation", () => {
  it.each<[string, unknown]>([
    ["trait eq", { trait: "plan", op: "eq", value: "pro" }],
    ["nested path", { trait: "address.city", op: "neq", value: "Paris" }],
    ["numbers", { all: ["gt", "gte", "lt", "lte"].map((op) => ({ trait: "age", op, value: 18 })) }],
    ["strings", { any: ["contains", "starts_with", "ends_with"].map((op) => ({ trait: "email", op, value: "@x" })) }],
    [
      "lists",
      {
        all: [
          { trait: "plan", op: "in", value: ["a", 1] },
          { trait: "plan", op: "not_in", value: ["b"] },
        ],
      },
    ],
    [
      "presence",
      {
        all: [
          { trait: "a", op: "exists" },
          { trait: "b", op: "not_exists" },
        ],
      },
    ],
    [
      "dates",
      {
        all: [
          { trait: "d", op: "before", value: "2025-01-01" },
          { trait: "d", op: "after", value: 1700000000000 },
        ],
      },
    ],
    ["within_last", { trait: "d", op: "within_last", value: "30d" }],
    ["computed", { computed: "total_revenue", op: "gte", value: 100 }],
    [
      "event",
      {
        event: "Product Added",
        where: [{ property: "category", op: "eq", value: "shoes" }],
        count: { op: "gte", value: 2 },
        within: "7d",
      },
    ],
    ["page views", { page: true, where: [{ property: "path", op: "starts_with", value: "/pricing" }], within: "2h" }],
    ["segment", { segment: "other-key" }],
    ["not", { not: { event: "Order Completed", within: "30m" } }],
  ])("accepts %s", (_, rule) => {
    expect(parse(rule).success).toBe(true);
  });

  it.each<[string, unknown]>([
    ["an unknown operator", { trait: "plan", op: "regex", value: ".*" }],
    ["an expression string as a key", { expr: "profile.plan == 'pro'" }],
    ["a number compared with a string", { trait: "age", op: "gt", value: "18" }],
    ["a missing value", { trait: "plan", op: "eq" }],
    ["a value on exists", { trait: "plan", op: "exists", value: 1 }],
    ["an empty group", { all: [] }],
    ["a bad duration", { event: "x", within: "30s" }],
    ["a window over 400 days", { event: "x", within: "401d" }],
    ["a bad date", { trait: "d", op: "before", value: "next tuesday" }],
    ["an unsafe trait name", { trait: "a'b", op: "exists" }],
    ["a too long string", { trait: "a", op: "eq", value: "x".repeat(1001) }],
    ["a too long list", { trait: "a", op: "in", value: Array(101).fill("x") }],
    ["a negative count", { event: "x", count: { op: "gte", value: -1 } }],
    ["within_last in an event filter", { event: "x", where: [{ property: "t", op: "within_last", value: "1d" }] }],
    ["a bad segment key", { segment: "Not A Key" }],
  ])("rejects %s", (_, rule) => {
    expect(parse(rule).success).toBe(false);
  });

  it("rejects rules nested deeper than 8 levels", () => {
    let rule: unknown = { trait: "a", op: "exists" };
    for (let i = 0; i < 8; i++) rule = { not: rule };
    expect(parse(rule).success).toBe(false);
    let hostile: unknown = {};
    for (let i = 0; i < 10_000; i++) hostile = { not: hostile };
    expect(parse(hostile).success).toBe(false);
  });

  it("rejects rules with more than 50 conditions", () => {
    const leaf = { trait: "a", op: "exists" };
    expect(parse({ any: Array(50).fill(leaf) }).success).toBe(true);
    expect(parse({ any: [{ all: Array(26).fill(leaf) }, { all: Array(25).fill(leaf) }] }).success).toBe(false);
  });
});

describe("rule language: operators", () => {
  const c = (op: string, value?: unknown) => ({ op, value }) as Comparison;
  it.each<[string, unknown, Comparison, boolean]>([
    ["eq same type", "pro", c("eq", "pro"), true],
    ["eq no coercion", "1", c("eq", 1), false],
    ["eq boolean", true, c("eq", true), true],
    ["neq on missing", undefined, c("neq", "pro"), true],
    ["gt", 19, c("gt", 18), true],
    ["gt on a numeric string", "19", c("gt", 18), false],
    ["gte", 18, c("gte", 18), true],
    ["lt", 17, c("lt", 18), true],
    ["lte", 19, c("lte", 18), false],
    ["contains substring", "ann@acme.com", c("contains", "acme"), true],
    ["contains is case-sensitive", "ann@ACME.com", c("contains", "acme"), false],
    ["contains array item", ["vip", "beta"], c("contains", "vip"), true],
    ["starts_with", "/pricing/team", c("starts_with", "/pricing"), true],
    ["ends_with", "ann@acme.com", c("ends_with", "@acme.com"), true],
    ["in", 1, c("in", ["a", 1]), true],
    ["not_in", "b", c("not_in", ["a", 1]), true],
    ["exists", 0, c("exists"), true],
    ["exists on null", null, c("exists"), false],
    ["not_exists", undefined, c("not_exists"), true],
    ["before ISO", "2024-12-31T23:00:00-02:00", c("before", "2025-01-01"), false],
    ["after epoch", Date.UTC(2025, 0, 2), c("after", "2025-01-01"), true],
    ["within_last", new Date(NOW - 3600_000).toISOString(), c("within_last", "2h"), true],
    ["within_last excludes the future", NOW + 1000, c("within_last", "2h"), false],
  ])("%s", (_, value, comparison, expected) => {
    expect(compare(value, comparison, NOW)).toBe(expected);
  });

  it("parses ISO dates with offsets and rejects impossible ones", () => {
    expect(dateMs("2025-05-14T14:00:00+02:00")).toBe(Date.UTC(2025, 4, 14, 12));
    expect(dateMs("2025-05-14")).toBe(Date.UTC(2025, 4, 14));
    expect(dateMs("2025-13-01")).toBeNull();
    expect(dateMs("tomorrow")).toBeNull();
  });

  it("reads nested traits through own properties only", () => {
    const rule: Condition = { trait: "constructor", op: "exists" };
    const facts = { traits: {}, computed: {}, counters: () => [], member: () => false };
    expect(evaluate(rule, facts, NOW, () => ({ id: "m", type: "track", event: "x", where: [] })).value).toBe(false);
  });

  it("says when a window answer can next change", () => {
    const rule: Condition = { not: { event: "Product Added", within: "30m" } };
    const facts = {
      traits: {},
      computed: {},
      counters: () => [{ day: Math.floor((NOW - 600_000) / 86_400_000), count: 1, lastAt: NOW - 600_000 }],
      member: () => false,
    };
    const out = evaluate(rule, facts, NOW, () => ({ id: "m", type: "track", event: "Product Added", where: [] }));
    expect(out).toEqual({ value: false, nextChange: NOW - 600_000 + 30 * 60_000 + 1 });
  });
});
