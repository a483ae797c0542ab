/**
 * The accept path's shortcuts (issue 9) must give the answers of the slow ways they replace:
 * message sizes counted while sanitising instead of serialising, canonical times read from fixed
 * positions, and a request packed whole from size bounds instead of measuring each event.
 */
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { createEnricher } from "../../worker/ingest/enrich";
import { normalizeMessage } from "../../worker/ingest/normalize";
import { MAX_QUEUE_MESSAGE_BYTES, packEvents } from "../../worker/ingest/pack";
import { sanitizeObject, utf8Length } from "../../worker/ingest/sanitize";
import { parseIsoDate } from "../../worker/ingest/time";

const exactBytes = (value: unknown) => utf8Length(JSON.stringify(value));

// Strings with quotes, backslashes, control characters, non-ASCII and lone surrogates: every
// case where JSON.stringify's output differs from the string's own length.
const anyString = fc.string({ unit: "binary", maxLength: 40 });
const jsonish = fc.letrec((tie) => ({
  value: fc.oneof(
    { depthSize: "small" },
    anyString,
    fc.double(),
    fc.integer(),
    fc.boolean(),
    fc.constant(null),
    fc.array(tie("value"), { maxLength: 4 }),
    fc.dictionary(anyString, tie("value"), { maxKeys: 4 }),
  ),
})).value;

describe("message size while sanitising", () => {
  it("counts exactly the bytes JSON.stringify would produce, for any parsed JSON", () => {
    fc.assert(
      fc.property(fc.dictionary(anyString, jsonish, { maxKeys: 6 }), (value) => {
        const parsed = JSON.parse(JSON.stringify(value));
        const result = sanitizeObject(parsed);
        if (!result.ok) return true;
        return result.bytes === exactBytes(result.value);
      }),
      { numRuns: 300 },
    );
  });
});

describe("canonical ISO times", () => {
  const pad = (n: number, width: number) => String(n).padStart(width, "0");
  const canonical = fc
    .tuple(
      fc.integer({ min: 0, max: 9999 }),
      fc.integer({ min: 0, max: 14 }),
      fc.integer({ min: 0, max: 33 }),
      fc.integer({ min: 0, max: 26 }),
      fc.integer({ min: 0, max: 61 }),
      fc.integer({ min: 0, max: 61 }),
      fc.integer({ min: 0, max: 999 }),
    )
    .map(
      ([y, mo, d, h, mi, s, ms]) =>
        `${pad(y, 4)}-${pad(mo, 2)}-${pad(d, 2)}T${pad(h, 2)}:${pad(mi, 2)}:${pad(s, 2)}.${pad(ms, 3)}Z`,
    );

  it("reads every toISOString()-shaped text as the general parser reads the same time with +00:00", () => {
    fc.assert(
      fc.property(canonical, (text) => parseIsoDate(text) === parseIsoDate(text.replace("Z", "+00:00"))),
      { numRuns: 2_000 },
    );
  });

  it("refuses impossible calendar dates in the canonical form", () => {
    for (const text of ["2023-02-29T00:00:00.000Z", "2024-04-31T10:00:00.000Z", "2024-01-01T24:00:00.000Z"]) {
      expect(parseIsoDate(text)).toBeNull();
    }
    expect(parseIsoDate("2024-02-29T23:59:59.999Z")).toBe(Date.UTC(2024, 1, 29, 23, 59, 59, 999));
  });
});

describe("packing a request whole", () => {
  const message = fc.record({
    type: fc.constantFrom("track", "page", "identify"),
    event: fc.string({ minLength: 1, maxLength: 20 }).filter((s) => s.trim() !== ""),
    category: fc.option(anyString, { nil: undefined }),
    anonymousId: fc.string({ minLength: 3, maxLength: 30 }).map((s) => `a-${s}`),
    userId: fc.option(fc.constant(1e21), { nil: undefined }),
    properties: fc.dictionary(anyString, jsonish, { maxKeys: 5 }),
    traits: fc.dictionary(anyString, jsonish, { maxKeys: 3 }),
    context: fc.record({
      traits: fc.dictionary(anyString, jsonish, { maxKeys: 3 }),
      userAgent: fc.constantFrom(undefined, "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) Safari/604.1"),
      note: anyString,
    }),
  });

  it("never under-counts what is sent, so every queue message stays within its limit", () => {
    const enrich = createEnricher({ geo: { country: "BR", city: 'São Paulo \u2028 "\\' }, userAgent: null });
    fc.assert(
      fc.property(
        fc.array(message, { minLength: 1, maxLength: 25 }),
        fc.option(fc.dictionary(anyString, jsonish, { maxKeys: 3 }), { nil: null }),
        (raws, batchContext) => {
          const events = [];
          for (const raw of JSON.parse(JSON.stringify(raws))) {
            const result = normalizeMessage(raw, {
              batch: { sentAt: null, context: batchContext },
              receivedAt: Date.UTC(2025, 0, 1),
            });
            if (!result.ok) continue;
            const enriched = enrich(result.event.context);
            result.event.context = enriched.context;
            if (enriched.bot) result.event.flags.push("bot");
            events.push(result.event);
          }
          for (const packed of packEvents("site_x", events)) {
            const exact = exactBytes(packed.batch);
            if (packed.bytes < exact || exact > MAX_QUEUE_MESSAGE_BYTES) return false;
          }
          return true;
        },
      ),
      { numRuns: 150 },
    );
  });

  it("sends a page's few events as one queue message", () => {
    const events = Array.from({ length: 20 }, (_, i) => {
      const result = normalizeMessage(
        { type: "page", anonymousId: "a-1", messageId: `m-${i}`, properties: { path: `/p/${i}` } },
        { batch: { sentAt: null, context: null }, receivedAt: Date.UTC(2025, 0, 1) },
      );
      if (!result.ok) throw new Error(result.reason);
      return result.event;
    });
    expect(packEvents("site_x", events).map((p) => p.batch.events.length)).toEqual([20]);
  });
});
