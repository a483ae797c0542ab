import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { cleanId, normalizeMessage } from "../../worker/ingest/normalize";
import { MAX_QUEUE_MESSAGE_BYTES, MAX_SEND_BYTES, packEvents, sendCalls } from "../../worker/ingest/pack";
import { boundedJson, sanitizeObject, utf8Length } from "../../worker/ingest/sanitize";
import { eventTime, parseIsoDate } from "../../worker/ingest/time";
import { classifyUserAgent } from "../../worker/ingest/ua";
import type { NormalizedEvent } from "../../worker/wire/queue";

describe("classifyUserAgent", () => {
  const cases: [ua: string, expected: ReturnType<typeof classifyUserAgent>][] = [
    [
      "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36",
      { browser: "Chrome", browserVersion: "124", os: "Windows", deviceType: "desktop" },
    ],
    [
      "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36 Edg/124.0.2478.51",
      { browser: "Edge", browserVersion: "124", os: "Windows", deviceType: "desktop" },
    ],
    [
      "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4 Safari/605.1.15",
      { browser: "Safari", browserVersion: "17", os: "macOS", deviceType: "desktop" },
    ],
    [
      "Mozilla/5.0 (X11; Ubuntu; Linux x86_64; rv:125.0) Gecko/20100101 Firefox/125.0",
      { browser: "Firefox", browserVersion: "125", os: "Linux", deviceType: "desktop" },
    ],
    [
      "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) CriOS/124.0.6367.88 Mobile/15E148 Safari/604.1",
      { browser: "Chrome", browserVersion: "124", os: "iOS", deviceType: "mobile" },
    ],
    [
      "Mozilla/5.0 (iPad; CPU OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4 Mobile/15E148 Safari/604.1",
      { browser: "Safari", browserVersion: "17", os: "iOS", deviceType: "tablet" },
    ],
    [
      "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.6367.82 Mobile Safari/537.36",
      { browser: "Chrome", browserVersion: "124", os: "Android", deviceType: "mobile" },
    ],
    [
      "Mozilla/5.0 (Linux; Android 13; SM-X700) AppleWebKit/537.36 (KHTML, like Gecko) SamsungBrowser/24.0 Chrome/117.0.0.0 Safari/537.36",
      { browser: "Samsung Internet", browserVersion: "24", os: "Android", deviceType: "tablet" },
    ],
    [
      "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/123.0.0.0 Safari/537.36 OPR/109.0.0.0",
      { browser: "Opera", browserVersion: "109", os: "Windows", deviceType: "desktop" },
    ],
    [
      "Mozilla/5.0 (X11; CrOS x86_64 14541.0.0) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36",
      { browser: "Chrome", browserVersion: "124", os: "Chrome OS", deviceType: "desktop" },
    ],
    [
      "Mozilla/5.0 (Windows NT 6.1; Trident/7.0; rv:11.0) like Gecko",
      { browser: "Internet Explorer", browserVersion: "11", os: "Windows", deviceType: "desktop" },
    ],
  ];
  for (const [ua, expected] of cases) {
    it(`reads ${expected.browser} on ${expected.os} (${expected.deviceType})`, () => {
      expect(classifyUserAgent(ua)).toEqual(expected);
    });
  }

  it("knows nothing about an empty or unknown user agent", () => {
    const unknown = { browser: null, browserVersion: null, os: null, deviceType: null };
    expect(classifyUserAgent("")).toEqual(unknown);
    expect(classifyUserAgent("curl/8.0")).toEqual(unknown);
  });
});

describe("parseIsoDate", () => {
  it("reads UTC, offsets, fractions beyond milliseconds and date-only forms", () => {
    expect(parseIsoDate("2024-05-01T10:00:00Z")).toBe(Date.UTC(2024, 4, 1, 10));
    expect(parseIsoDate("2024-05-01T12:00:00.123+02:00")).toBe(Date.UTC(2024, 4, 1, 10, 0, 0, 123));
    expect(parseIsoDate("2024-05-01T05:30:00-0430")).toBe(Date.UTC(2024, 4, 1, 10));
    expect(parseIsoDate("2024-05-01T10:00:00.123456789Z")).toBe(Date.UTC(2024, 4, 1, 10, 0, 0, 123));
    expect(parseIsoDate("2024-05-01 10:00")).toBe(Date.UTC(2024, 4, 1, 10));
    expect(parseIsoDate("2024-05-01")).toBe(Date.UTC(2024, 4, 1));
  });

  it("refuses what is not an ISO-8601 date", () => {
    for (const text of ["March 7 2020", "2024-02-30T00:00:00Z", "2024-13-01", "2024-05-01T25:00Z", "1714557600", ""]) {
      expect(parseIsoDate(text)).toBeNull();
    }
  });
});

describe("eventTime", () => {
  const receivedAt = Date.UTC(2025, 0, 1, 12);

  it("applies receivedAt − (sentAt − timestamp)", () => {
    expect(eventTime({ timestamp: 1_000_000_000_000, sentAt: 1_000_000_004_500, receivedAt })).toEqual({
      ok: true,
      timestamp: receivedAt - 4_500,
      futureClamped: false,
    });
  });

  it("clamps to receivedAt beyond one hour ahead, not at one hour", () => {
    expect(eventTime({ timestamp: receivedAt + 3_600_000, sentAt: null, receivedAt })).toMatchObject({
      timestamp: receivedAt + 3_600_000,
      futureClamped: false,
    });
    expect(eventTime({ timestamp: receivedAt + 3_600_001, sentAt: null, receivedAt })).toMatchObject({
      timestamp: receivedAt,
      futureClamped: true,
    });
  });

  it("refuses times before 2000", () => {
    expect(eventTime({ timestamp: Date.UTC(1999, 11, 31), sentAt: null, receivedAt }).ok).toBe(false);
  });
});

describe("cleanId", () => {
  it("keeps real ids, trimmed, and numbers as strings", () => {
    expect(cleanId("  user-1 ")).toBe("user-1");
    expect(cleanId(1234)).toBe("1234");
    expect(cleanId("a".repeat(100))).toBe("a".repeat(100));
  });

  it("drops placeholders whatever their case", () => {
    for (const id of [
      "NULL",
      "Undefined",
      "[object Object]",
      "nan",
      "0",
      "000",
      "-1",
      "ANONYMOUS",
      "guest",
      "a".repeat(101),
    ]) {
      expect(cleanId(id)).toBeNull();
    }
    expect(cleanId(Number.NaN)).toBeNull();
    expect(cleanId(0)).toBeNull();
  });
});

describe("sanitizeObject", () => {
  it("never lets a forbidden key through, for any JSON", () => {
    fc.assert(
      fc.property(fc.jsonValue({ maxDepth: 6 }), (value) => {
        const parsed = JSON.parse(
          JSON.stringify({ a: value, __proto__: value, nested: { constructor: value, ok: [value] } }),
        );
        const result = sanitizeObject(parsed);
        if (!result.ok) return true;
        return !/"(__proto__|constructor|prototype)":/.test(JSON.stringify(result.value));
      }),
    );
  });

  it("says why a value is refused", () => {
    expect(sanitizeObject([1, 2])).toEqual({ ok: false, reason: "not a JSON object" });
    expect(sanitizeObject({ long: "x".repeat(16_385) })).toMatchObject({ ok: false });
    expect(sanitizeObject({ list: new Array(1_001).fill(0) })).toMatchObject({ ok: false });
  });
});

describe("boundedJson", () => {
  it("serialises a value nested 100,000 levels deep without overflowing the stack", () => {
    const deep = JSON.parse(`${"[".repeat(100_000)}${"]".repeat(100_000)}`);
    const out = boundedJson({ deep }, 4_096);
    expect(out).toContain("[too deep]");
    expect(out.length).toBeLessThanOrEqual(4_096 + 20);
  });

  it("keeps small values as exact JSON", () => {
    expect(boundedJson({ a: [1, "x", null, { b: true }] }, 4_096)).toBe('{"a":[1,"x",null,{"b":true}]}');
  });
});

describe("utf8Length", () => {
  it("counts UTF-8 bytes like TextEncoder", () => {
    fc.assert(
      fc.property(fc.string({ unit: "grapheme" }), (s) => utf8Length(s) === new TextEncoder().encode(s).byteLength),
    );
  });
});

describe("packing", () => {
  const event = (i: number, pad: number): NormalizedEvent => ({
    type: "track",
    messageId: `m-${i}`,
    anonymousId: "a",
    userId: null,
    previousId: null,
    groupId: null,
    event: "E",
    name: null,
    properties: { pad: "é".repeat(pad) },
    traits: {},
    context: {},
    timestamp: 0,
    receivedAt: 0,
    flags: [],
    verified: false,
  });

  it("keeps every queue message under 100 KB and every sendBatch call within its limits", () => {
    const events = Array.from({ length: 2_500 }, (_, i) => event(i, 100 + (i % 7) * 300));
    const packed = packEvents("site_x", events);
    const exact = packed.map((p) => new TextEncoder().encode(JSON.stringify(p.batch)).byteLength);
    // The running estimate never under-counts what is sent.
    for (const [k, p] of packed.entries()) expect(p.bytes).toBeGreaterThanOrEqual(exact[k]);
    expect(Math.max(...exact)).toBeLessThanOrEqual(MAX_QUEUE_MESSAGE_BYTES);
    const calls = sendCalls(packed);
    let i = 0;
    for (const call of calls) {
      expect(call.length).toBeLessThanOrEqual(100);
      expect(exact.slice(i, i + call.length).reduce((a, b) => a + b, 0)).toBeLessThanOrEqual(MAX_SEND_BYTES);
      i += call.length;
    }
    expect(calls.flat().flatMap((b) => b.events.map((e) => e.messageId))).toEqual(events.map((e) => e.messageId));
  });
});

describe("validation speed", () => {
  it("normalises a 500-message batch in well under a second", () => {
    const raw = JSON.stringify({
      batch: Array.from({ length: 500 }, (_, i) => ({
        type: i % 2 ? "track" : "page",
        event: "Product Viewed",
        name: "Product",
        messageId: `perf-${i}`,
        anonymousId: "anon-1",
        userId: "user-1",
        timestamp: "2025-01-01T00:00:00.000Z",
        properties: { sku: `SKU-${i}`, price: 12.5, tags: ["a", "b"], nested: { x: 1, y: "two" } },
        context: { page: { path: "/p", url: "https://shop.example/p", title: "P", referrer: "" }, locale: "en-US" },
      })),
    });
    const start = performance.now();
    const { batch } = JSON.parse(raw) as { batch: unknown[] };
    const results = batch.map((m) =>
      normalizeMessage(m, { batch: { sentAt: null, context: null }, receivedAt: Date.UTC(2025, 0, 1, 0, 0, 1) }),
    );
    const elapsed = performance.now() - start;
    expect(results.every((r) => r.ok)).toBe(true);
    expect(elapsed).toBeLessThan(1_000);
  });
});
