/**
 * Generators and checks for the hostile-input campaign. Payloads are built as trees and
 * serialised by hand so that `__proto__` survives as a literal key in the JSON text (an object
 * literal or fast-check record would turn it into a prototype and drop it from the wire).
 */
import { createExecutionContext, env, waitOnExecutionContext } from "cloudflare:test";
import fc from "fast-check";
import { expect } from "vitest";
import { z } from "zod";
import { app } from "../../worker";
import { queuedBatchSchema } from "../../worker/pipeline/message";
import { BASE } from "../helpers/api";

export type Node =
  | { kind: "raw"; value: string | number | boolean | null }
  | { kind: "arr"; items: Node[] }
  | { kind: "obj"; entries: [string, Node][] };

export function serialize(node: Node): string {
  if (node.kind === "raw") return JSON.stringify(node.value) ?? "null";
  if (node.kind === "arr") return `[${node.items.map(serialize).join(",")}]`;
  return `{${node.entries.map(([k, v]) => `${JSON.stringify(k)}:${serialize(v)}`).join(",")}}`;
}

const raw = (value: string | number | boolean | null): Node => ({ kind: "raw", value });
export const obj = (entries: [string, Node][]): Node => ({ kind: "obj", entries });

export const FORBIDDEN = ["__proto__", "constructor", "prototype"] as const;

/** Strings that have broken parsers before: NUL, lone surrogates, illegal ids, huge text. */
export const hostileString = fc.oneof(
  { weight: 6, arbitrary: fc.string({ maxLength: 40 }) },
  {
    weight: 6,
    arbitrary: fc.string({
      unit: fc.constantFrom("\u0000", "\ud800", "\udfff", "a", "é", "😀", "\u202e", "\n"),
      maxLength: 40,
    }),
  },
  { weight: 1, arbitrary: fc.integer({ min: 30_000, max: 34_000 }).map((n) => "x".repeat(n)) },
  fc.constantFrom(
    "",
    " ",
    "null",
    "undefined",
    "0",
    "00000000-0000-0000-0000-000000000000",
    "[object Object]",
    "NaN",
    "__proto__",
    "constructor",
    "toString",
    "hasOwnProperty",
    "<script>alert(1)</script>",
    "=cmd|' /C calc'!A0",
    "'; DROP TABLE events; --",
    "\u0000\u0000",
    "\ud800\udc00\ud800",
  ),
);

const hostileNumber = fc.oneof(
  fc.integer(),
  fc.double(),
  fc.constantFrom(
    0,
    -0,
    Number.MAX_SAFE_INTEGER + 2,
    -Number.MAX_VALUE,
    Number.MAX_VALUE,
    8.64e15 + 1,
    -8.64e15 - 1,
    1e308,
  ),
);

const hostileKey = fc.oneof(
  { weight: 3, arbitrary: fc.constantFrom(...FORBIDDEN) },
  { weight: 2, arbitrary: hostileString.filter((s) => s.length < 100) },
  { weight: 1, arbitrary: fc.constantFrom("$set", "a.b", "properties", "traits", "email", "") },
);

/** Any JSON value, with hostile keys and leaves. */
export const hostileValue: fc.Arbitrary<Node> = fc.letrec<{ node: Node }>((tie) => ({
  node: fc.oneof(
    { maxDepth: 4, depthSize: "small" },
    hostileString.map(raw),
    hostileNumber.map(raw),
    fc.constantFrom(true, false, null).map(raw),
    fc.array(tie("node"), { maxLength: 4 }).map((items): Node => ({ kind: "arr", items })),
    fc.array(fc.tuple(hostileKey, tie("node")), { maxLength: 4 }).map(obj),
  ),
})).node;

/** Times near and far beyond every representable range, in every type. */
export const hostileTime: fc.Arbitrary<Node> = fc
  .oneof(
    fc.date({ min: new Date(-8.64e15), max: new Date(8.64e15), noInvalidDate: true }).map((d) => d.toISOString()),
    fc.constantFrom(
      "9999-12-31T23:59:59.999Z",
      "+275760-09-13T00:00:00.000Z",
      "-271821-04-20T00:00:00.000Z",
      "+275760-09-13T00:00:00.001Z",
      "2024-02-30T25:61:61Z",
      "0000-00-00",
      "yesterday",
      "",
    ),
    hostileNumber,
    fc.constantFrom(null, true),
  )
  .map(raw);

const idField = fc.oneof(hostileString.map(raw), hostileNumber.map(raw), hostileValue);

/** A Segment-like message whose every field may be missing, mistyped or hostile. */
export const hostileMessage: fc.Arbitrary<Node> = fc
  .record(
    {
      type: fc.oneof(fc.constantFrom("track", "identify", "page", "screen", "group", "alias").map(raw), hostileValue),
      event: fc.oneof(fc.constant(raw("Signed Up")), hostileString.map(raw), hostileValue),
      name: hostileString.map(raw),
      messageId: idField,
      anonymousId: idField,
      userId: idField,
      previousId: idField,
      groupId: idField,
      timestamp: hostileTime,
      sentAt: hostileTime,
      originalTimestamp: hostileTime,
      properties: hostileValue,
      traits: hostileValue,
      context: hostileValue,
      extra: fc.tuple(hostileKey, hostileValue),
    },
    { requiredKeys: [] },
  )
  .map(({ extra, ...fields }) => {
    const entries = Object.entries(fields) as [string, Node][];
    if (extra) entries.push(extra);
    return obj(entries);
  });

/** A stack frame ("at fn (file:1:2)") or an error's toString leaking into a body. */
const LEAK = /\bat [^\n]*:\d+:\d+|\n\s+at |Error:/;

export const envelope = z.object({ error: z.object({ code: z.string().min(1), message: z.string().min(1) }) });

export const stats = { requests: 0, events: 0 };

/** Calls the app with replaceable bindings, as a browser or server would. */
export async function call(path: string, init: RequestInit & { env?: Partial<Cloudflare.Env> } = {}) {
  const { env: bindings, ...rest } = init;
  const ctx = createExecutionContext();
  const res = await app.fetch(new Request(`${BASE}${path}`, rest), { ...env, ...bindings }, ctx);
  await waitOnExecutionContext(ctx);
  stats.requests++;
  return res;
}

/**
 * The campaign's invariant for one response: no 5xx, no leaked stack, and an error in the one
 * envelope for API routes. Returns the body text.
 */
export async function expectSafe(res: Response, opts: { api: boolean; label: string }) {
  const text = await res.text();
  expect(res.status, `${opts.label}: ${text.slice(0, 300)}`).toBeLessThan(500);
  if (res.status >= 400 || opts.api) expect(LEAK.test(text), `${opts.label} leaks: ${text.slice(0, 300)}`).toBe(false);
  if (opts.api && res.status >= 400) {
    let body: unknown;
    expect(
      () => {
        body = JSON.parse(text);
      },
      `${opts.label} is not JSON: ${text.slice(0, 200)}`,
    ).not.toThrow();
    expect(envelope.safeParse(body).success, `${opts.label}: ${text.slice(0, 300)}`).toBe(true);
  }
  return text;
}

/** Own keys anywhere in a value that could swap a prototype in a later merge. */
export function forbiddenKeyPaths(value: unknown, path = "$"): string[] {
  if (value === null || typeof value !== "object") return [];
  const found: string[] = [];
  for (const key of Object.getOwnPropertyNames(value)) {
    if ((FORBIDDEN as readonly string[]).includes(key)) found.push(`${path}.${key}`);
    found.push(...forbiddenKeyPaths((value as Record<string, unknown>)[key], `${path}.${key}`));
  }
  if (Object.getPrototypeOf(value) !== Object.prototype && Object.getPrototypeOf(value) !== Array.prototype) {
    found.push(`${path} (prototype swapped)`);
  }
  return found;
}

/** Every queued body fits the consumer's guard, belongs to the site, and has no forbidden keys. */
export function expectValidQueue(sent: unknown[], siteId: string) {
  for (const body of sent) {
    const parsed = queuedBatchSchema.safeParse(body);
    expect(parsed.success, parsed.success ? "" : JSON.stringify(parsed.error.issues).slice(0, 500)).toBe(true);
    if (!parsed.success) continue;
    expect(parsed.data.siteId).toBe(siteId);
    expect(forbiddenKeyPaths(body)).toEqual([]);
    stats.events += parsed.data.events.length;
  }
}

export function prototypeKeys() {
  return [Object.prototype, Array.prototype, Function.prototype].map((p) =>
    Reflect.ownKeys(p).map(String).sort().join(","),
  );
}

// Well-typed but absurd times: far past and future, impossible calendar dates.
const hostileIsoTime = fc
  .oneof(
    {
      weight: 4,
      arbitrary: fc
        .date({ min: new Date("2000-01-01T00:00:00Z"), max: new Date("2100-01-01T00:00:00Z"), noInvalidDate: true })
        .map((d) => d.toISOString()),
    },
    fc.date({ min: new Date(-8.64e15), max: new Date(8.64e15), noInvalidDate: true }).map((d) => d.toISOString()),
    fc.constantFrom("9999-12-31T23:59:59.999Z", "1970-01-01T00:00:00Z", "2024-02-30T25:61:61Z", "0000-00-00"),
  )
  .map(raw);

const hostileObject = fc.array(fc.tuple(hostileKey, hostileValue), { maxLength: 4 }).map(obj);

/** A valid message whose free-form parts and times are hostile: the events that should be queued. */
export const nearlyValidMessage: fc.Arbitrary<Node> = fc
  .record({
    type: fc.constantFrom("track", "identify", "page", "screen", "group", "alias"),
    time: fc.tuple(fc.constantFrom("timestamp", "sentAt", "originalTimestamp"), hostileIsoTime),
    properties: hostileObject,
    traits: hostileObject,
    context: hostileObject,
    name: hostileString,
  })
  .map(({ type, time, properties, traits, context, name }) =>
    obj([
      ["type", raw(type)],
      ["event", raw("Signed Up")],
      ["name", raw(name)],
      ["userId", raw("u-1")],
      ["anonymousId", raw("a-1")],
      ["previousId", raw("a-0")],
      ["groupId", raw("acme")],
      time,
      ["properties", properties],
      ["traits", traits],
      ["context", context],
    ]),
  );
