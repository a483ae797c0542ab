/**
 * The consumer's queue guard is written by hand for speed (issue 9); the zod schema states the
 * contract. They must agree on every body: what one accepts the other accepts, with the same output.
 */
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { parseQueuedBatch, queuedBatchSchema } from "../../worker/pipeline/message";

const validEvent = () => ({
  type: "page",
  messageId: "m-1",
  anonymousId: "a-1",
  userId: null,
  previousId: null,
  groupId: null,
  event: null,
  name: "Home",
  properties: { path: "/" },
  traits: {},
  context: { device: { browser: "Chrome" } },
  timestamp: 1_735_689_600_000,
  receivedAt: 1_735_689_600_000,
  flags: [],
  verified: false,
});

const FIELDS = [...Object.keys(validEvent()), "extra"];

// Values on both sides of every bound the schema states.
const oddValue = fc.oneof(
  fc.constantFrom(
    undefined,
    null,
    "",
    "x",
    "x".repeat(100),
    "x".repeat(101),
    "x".repeat(200),
    "x".repeat(201),
    "x".repeat(1000),
    "x".repeat(1001),
    "identify",
    "merge",
    0,
    -1,
    1.5,
    Number.MAX_SAFE_INTEGER,
    2 ** 53,
    Number.NaN,
    true,
    [],
    ["bot"],
    Array(21).fill("f"),
    ["x".repeat(101)],
    {},
    { a: 1 },
    [1],
  ),
  fc.string({ maxLength: 8 }),
  fc.integer(),
);

const mutatedBody = fc
  .tuple(
    fc.array(fc.tuple(fc.constantFrom(...FIELDS), oddValue), { maxLength: 2 }),
    fc.constantFrom<[string, unknown][]>(
      [],
      [["v", 2]],
      [["siteId", ""]],
      [["siteId", "s".repeat(101)]],
      [["events", {}]],
    ),
  )
  .map(([eventChanges, bodyChanges]) => {
    const event: Record<string, unknown> = validEvent();
    for (const [key, value] of eventChanges) {
      if (value === undefined) delete event[key];
      else event[key] = value;
    }
    const body: Record<string, unknown> = { v: 1, siteId: "site_1", events: [validEvent(), event] };
    for (const [key, value] of bodyChanges) body[key] = value;
    // What the queue delivers: JSON, deserialised.
    return JSON.parse(JSON.stringify(body));
  });

describe("parseQueuedBatch", () => {
  it("accepts exactly the bodies queuedBatchSchema accepts, with the same output", () => {
    fc.assert(
      fc.property(mutatedBody, (body) => {
        const zod = queuedBatchSchema.safeParse(body);
        const fast = parseQueuedBatch(body);
        expect(fast !== null).toBe(zod.success);
        if (zod.success) expect(fast).toStrictEqual(zod.data);
      }),
      { numRuns: 1_000 },
    );
  });

  it("drops an own __proto__ key from free-form records, as zod does", () => {
    const body = JSON.parse(
      `{"v":1,"siteId":"s","events":[${JSON.stringify(validEvent()).replace('"properties":{', '"properties":{"__proto__":{"x":1},')}]}`,
    );
    const fast = parseQueuedBatch(body);
    expect(fast).toStrictEqual(queuedBatchSchema.parse(body));
    expect(Object.hasOwn(fast?.events[0].properties ?? {}, "__proto__")).toBe(false);
  });
});
