import { describe, expect, it } from "vitest";
import type { TrackedEvent } from "../../dashboard/api";
import { displayName, lastDays, mergeLatest, pct, safeHref, text } from "../../dashboard/format";
import { asRoot, coerceValue, isComplete, kindOf, leafCount, withOp } from "../../dashboard/rules";

describe("safeHref", () => {
  it("keeps http and https URLs", () => {
    expect(safeHref("https://shop.example/p?q=1")).toBe("https://shop.example/p?q=1");
    expect(safeHref("http://shop.example/")).toBe("http://shop.example/");
  });

  for (const url of [
    "javascript:window.__xss=1",
    "JavaScript:alert(1)",
    " javascript:alert(1)",
    "java\tscript:alert(1)",
    "java\nscript:alert(1)",
    "data:text/html,<script>alert(1)</script>",
    "vbscript:msgbox(1)",
    "//evil.example/x",
    "/relative/path",
    "file:///etc/passwd",
  ]) {
    it(`refuses ${JSON.stringify(url)}`, () => {
      expect(safeHref(url)).toBeNull();
    });
  }

  it("refuses values that are not strings", () => {
    expect(safeHref({ toString: () => "https://x.example" })).toBeNull();
    expect(safeHref(42)).toBeNull();
  });
});

describe("text", () => {
  it("shows objects as JSON and cuts long values", () => {
    expect(text({ a: 1 })).toBe('{"a":1}');
    expect(text("x".repeat(300), 10)).toBe(`${"x".repeat(9)}…`);
    expect(text(null)).toBe("");
  });

  it("survives values that cannot be serialised", () => {
    const cyclic: Record<string, unknown> = {};
    cyclic.self = cyclic;
    expect(typeof text(cyclic)).toBe("string");
  });
});

describe("displayName", () => {
  it("prefers the name, then first and last name, then email, then id", () => {
    expect(displayName({ name: "Ada", email: "a@x.io", id: "prf_1" })).toBe("Ada");
    expect(displayName({ id: "prf_1", traits: { firstName: "Ada", lastName: "L" } })).toBe("Ada L");
    expect(displayName({ email: "a@x.io", id: "prf_1" })).toBe("a@x.io");
    expect(displayName({ id: "prf_1" })).toBe("prf_1");
  });
});

describe("pct", () => {
  it("answers a dash instead of dividing by zero", () => {
    expect(pct(1, 0)).toBe("—");
    expect(pct(1, 4)).toBe("25.0%");
  });
});

describe("lastDays", () => {
  it("fills the days without events with zeros, oldest first", () => {
    const now = new Date("2025-03-10T12:00:00Z");
    const days = lastDays([{ day: "2025-03-09", count: 5 }], 3, now);
    expect(days).toEqual([
      { label: "2025-03-08", value: 0 },
      { label: "2025-03-09", value: 5 },
      { label: "2025-03-10", value: 0 },
    ]);
  });
});

const event = (messageId: string, receivedAt: string): TrackedEvent => ({
  messageId,
  type: "track",
  event: "x",
  timestamp: receivedAt,
  receivedAt,
  siteId: "site_1",
});

describe("mergeLatest", () => {
  it("puts new events first and drops the ones a poll returned twice", () => {
    const current = [event("a", "2025-01-01T00:00:01Z")];
    const merged = mergeLatest(current, [
      event("c", "2025-01-01T00:00:03Z"),
      event("b", "2025-01-01T00:00:02Z"),
      event("a", "2025-01-01T00:00:01Z"),
    ]);
    expect(merged.map((e) => e.messageId)).toEqual(["c", "b", "a"]);
  });

  it("keeps at most the bound", () => {
    const many = Array.from({ length: 10 }, (_, i) => event(`m${i}`, new Date(i * 1000).toISOString()));
    expect(mergeLatest([], many, 3)).toHaveLength(3);
  });
});

describe("the rule builder model", () => {
  it("shows a bare condition as a group of one", () => {
    expect(asRoot({ trait: "plan", op: "eq", value: "pro" })).toEqual({
      all: [{ trait: "plan", op: "eq", value: "pro" }],
    });
  });

  it("types what was typed: numbers, booleans, lists, and text that only looks numeric", () => {
    expect(coerceValue("gte", "100")).toBe(100);
    expect(coerceValue("eq", "true")).toBe(true);
    expect(coerceValue("eq", "02139")).toBe("02139");
    expect(coerceValue("eq", "1.0")).toBe("1.0");
    expect(coerceValue("in", "pro, team, 3")).toEqual(["pro", "team", 3]);
    expect(coerceValue("within_last", " 7d ")).toBe("7d");
  });

  it("drops the value when the operator takes none, and makes a list for in", () => {
    expect(withOp({ trait: "plan", op: "eq", value: "pro" }, "exists")).toEqual({ trait: "plan", op: "exists" });
    expect(withOp({ trait: "plan", op: "eq", value: "pro" }, "in")).toEqual({
      trait: "plan",
      op: "in",
      value: ["pro"],
    });
  });

  it("recognises every condition kind, including page views", () => {
    expect(kindOf({ not: { segment: "a" } })).toBe("not");
    expect(kindOf({ page: true })).toBe("page");
    expect(kindOf({ event: "Order Completed" })).toBe("event");
    expect(kindOf({ computed: "sessions", op: "gt", value: 3 })).toBe("computed");
  });

  it("counts leaves through groups and negations", () => {
    expect(leafCount({ all: [{ segment: "a" }, { not: { any: [{ event: "x" }, { page: true }] } }] })).toBe(3);
  });

  it("holds back the preview until every name is filled in", () => {
    expect(isComplete({ all: [{ trait: "", op: "eq", value: "" }] })).toBe(false);
    expect(isComplete({ all: [] })).toBe(false);
    expect(isComplete({ all: [{ event: "Product Added", where: [{ property: "", op: "eq", value: 1 }] }] })).toBe(
      false,
    );
    expect(isComplete({ any: [{ trait: "plan", op: "exists" }, { page: true }] })).toBe(true);
  });
});
