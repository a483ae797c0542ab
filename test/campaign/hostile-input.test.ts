/**
 * Issue 10, "Bad input": generated and hand-picked hostile payloads at every public endpoint.
 * Each response must be a 4xx in the error envelope or a documented acceptance; never a 5xx or a
 * stack trace; no prototype changes; every event that reaches the queue passes the consumer's guard.
 */
import fc from "fast-check";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { adminHeaders, BASE } from "../helpers/api";
import { basic, makeIngestSite, recordingQueue } from "../ingest/helpers";
import {
  call,
  expectSafe,
  expectValidQueue,
  hostileMessage,
  hostileString,
  hostileValue,
  type Node,
  nearlyValidMessage,
  obj,
  prototypeKeys,
  serialize,
  stats,
} from "./hostile";

const RUNS = { numRuns: 150 };
// The campaign is about the server's answers, not the rate limiter's.
const allowAll = { limit: async () => ({ success: true }) } as unknown as RateLimit;

let site: Awaited<ReturnType<typeof makeIngestSite>>;
let before: string[];

beforeAll(async () => {
  before = prototypeKeys();
  site = await makeIngestSite();
});

afterAll(() => {
  console.log(
    `hostile-input campaign: ${stats.requests} requests, 0 server errors, 0 prototype pollution, ${stats.events} events queued, all valid`,
  );
});

/** Sends one body to an ingest route with a recording queue, checks the response and the queue. */
async function sendIngest(path: string, body: BodyInit, headers: Record<string, string> = basic(site.writeKey)) {
  const q = recordingQueue();
  const res = await call(path, {
    method: "POST",
    headers: { "Content-Type": "text/plain", ...headers },
    body,
    env: { EVENTS: q.queue, INGEST_RATE_LIMIT: allowAll },
  });
  await expectSafe(res, { api: true, label: `POST ${path}` });
  expectValidQueue(q.sent, site.id);
  return { res, q };
}

const batchOf = (messages: Node[], extra: [string, Node][] = []) =>
  serialize(obj([["batch", { kind: "arr", items: messages }], ...extra]));

describe("hostile input on /v1 ingest", () => {
  it("answers generated batches of hostile messages without a 5xx and queues only valid events", async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.oneof(hostileMessage, nearlyValidMessage), { maxLength: 8 }),
        hostileValue,
        async (messages, context) => {
          await sendIngest("/v1/batch", batchOf(messages, [["context", context]]));
        },
      ),
      RUNS,
    );
  });

  it("answers generated single messages on /v1/track and its short form without a 5xx", async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.oneof(hostileMessage, nearlyValidMessage),
        fc.constantFrom("/v1/track", "/v1/t", "/v1/identify", "/v1/a"),
        async (m, path) => {
          await sendIngest(path, serialize(m));
        },
      ),
      RUNS,
    );
  });

  it("refuses truncated, mistyped and non-JSON bodies with a 4xx in the envelope", async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(hostileMessage, { minLength: 1, maxLength: 3 }),
        fc.nat(),
        fc.constantFrom("/v1/batch", "/v1/track"),
        async (messages, cut, path) => {
          const text = batchOf(messages);
          // Any proper prefix of an object's JSON text is invalid JSON.
          const truncated = text.slice(0, cut % text.length);
          const { res, q } = await sendIngest(path, truncated);
          expect(res.status).toBeGreaterThanOrEqual(400);
          expect(q.sent).toHaveLength(0);
        },
      ),
      RUNS,
    );
  });

  it("refuses JSON of the wrong shape at the top level without queueing anything", async () => {
    const bodies = ["null", "[]", "42", '"batch"', "true", '{"batch":null}', '{"batch":{}}', '{"batch":"x"}', "{}"];
    for (const body of bodies) {
      const { res, q } = await sendIngest("/v1/batch", body);
      expect(res.status, body).toBeGreaterThanOrEqual(400);
      expect(q.sent, body).toHaveLength(0);
    }
  });

  it("answers invalid UTF-8, NUL bytes and BOMs in the raw body without a 5xx", async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.uint8Array({ maxLength: 200 }),
        fc.constantFrom(
          new Uint8Array([0xff, 0xfe]),
          new Uint8Array([0xef, 0xbb, 0xbf]),
          new Uint8Array([0xc0, 0x80]),
          new Uint8Array([0xed, 0xa0, 0x80]),
          new Uint8Array([0]),
        ),
        async (noise, prefix) => {
          const inner = new TextEncoder().encode('{"batch":[{"type":"track","event":"E","anonymousId":"a');
          const body = new Uint8Array([...prefix, ...inner, ...noise, ...new TextEncoder().encode('"}]}')]);
          await sendIngest("/v1/batch", body);
        },
      ),
      RUNS,
    );
  });

  it("accepts or rejects messages at and around 32 KB without a 5xx", async () => {
    for (const size of [32 * 1024 - 200, 32 * 1024 - 90, 32 * 1024, 32 * 1024 + 1, 40_000]) {
      const body = JSON.stringify({
        type: "track",
        event: "Big",
        anonymousId: "a-1",
        properties: { s: "x".repeat(size) },
      });
      await sendIngest("/v1/track", body);
      await sendIngest("/v1/batch", JSON.stringify({ batch: [JSON.parse(body)] }));
    }
  });

  it("refuses a batch of more than 2,500 messages and accepts one of exactly 2,500", async () => {
    const msg = { type: "track", event: "E", anonymousId: "a" };
    const atLimit = await sendIngest("/v1/batch", JSON.stringify({ batch: Array(2_500).fill(msg) }));
    expect(atLimit.res.status).toBe(200);
    expect(atLimit.q.events()).toHaveLength(2_500);
    const over = await sendIngest("/v1/batch", JSON.stringify({ batch: Array(2_501).fill(msg) }));
    expect(over.res.status).toBe(413);
    expect(over.q.sent).toHaveLength(0);
  });

  it("answers deeply nested properties and bodies without a 5xx", async () => {
    for (const depth of [50, 500, 5_000, 20_000]) {
      const nested = `${'{"a":'.repeat(depth)}1${"}".repeat(depth)}`;
      await sendIngest("/v1/track", `{"type":"track","event":"Deep","anonymousId":"a","properties":${nested}}`);
      await sendIngest("/v1/batch", `{"batch":[${"[".repeat(depth)}${"]".repeat(depth)}]}`);
    }
  });

  it("strips __proto__, constructor and prototype keys wherever they appear", async () => {
    const poisoned = `{"__proto__":{"polluted":1},"constructor":{"prototype":{"polluted":1}},"ok":{"__proto__":{"x":1}}}`;
    const body = `{"batch":[{"type":"identify","userId":"u-proto","traits":${poisoned},"context":${poisoned},"properties":${poisoned}}],"__proto__":{"polluted":1}}`;
    const { res, q } = await sendIngest("/v1/batch", body);
    expect(res.status).toBe(200);
    expect(q.events()).toHaveLength(1);
    expect(q.events()[0].traits).toEqual({ ok: {} });
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
  });

  it("answers hostile write keys in every carrier without a 5xx", async () => {
    await fc.assert(
      fc.asyncProperty(hostileString, fc.constantFrom("basic", "header", "query", "body"), async (key, carrier) => {
        const m = { type: "track", event: "E", anonymousId: "a" };
        const latin1 = key.replace(/[^\x20-\x7e]/g, "?");
        if (carrier === "basic") {
          await sendIngest("/v1/track", JSON.stringify(m), { Authorization: `Basic ${btoa(`${latin1}:`)}` });
        } else if (carrier === "header") {
          await sendIngest("/v1/track", JSON.stringify(m), { Authorization: `Basic ${latin1}`.trim() });
        } else if (carrier === "query") {
          await sendIngest(
            `/v1/track?writeKey=${encodeURIComponent(key.replace(/[\ud800-\udfff]/g, "?"))}`,
            JSON.stringify(m),
            {},
          );
        } else {
          await sendIngest("/v1/track", JSON.stringify({ ...m, writeKey: key }), {});
        }
      }),
      RUNS,
    );
  });
});

describe("hostile input on the other public endpoints", () => {
  const queryValue = fc.oneof(
    hostileString.map((s) => encodeURIComponent(s.replace(/[\ud800-\udfff]/g, "\ufffd"))),
    fc.constantFrom("%", "%zz", "%ud800", "%ED%A0%80", "%00", "%FF%FE", "a&slots=b", "=", "[]", "%2C%2C%2C"),
    fc.integer({ min: 1_290, max: 1_310 }).map((n) => "k,".repeat(n / 2)),
  );
  const queryName = fc.constantFrom(
    "slots",
    "anonymousId",
    "userId",
    "userHash",
    "writeKey",
    "slots[]",
    "__proto__",
    "constructor",
    "segments",
  );

  it("answers hostile /v1/personalize query strings with a 200 or a 4xx envelope", async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.tuple(queryName, queryValue), { maxLength: 6 }),
        fc.boolean(),
        async (pairs, withKey) => {
          const qs = pairs.map(([k, v]) => `${k}=${v}`).join("&");
          const res = await call(`/v1/personalize?${qs}`, {
            headers: withKey ? { "X-Tessera-Key": site.writeKey } : {},
            env: { EVENTS: recordingQueue().queue },
          });
          await expectSafe(res, { api: true, label: `GET /v1/personalize?${qs.slice(0, 200)}` });
        },
      ),
      RUNS,
    );
  });

  it("serves /s.js or a 304 whatever the conditional headers say", async () => {
    const header = fc.oneof(
      fc.string({ unit: fc.constantFrom("a", '"', "*", ",", " ", "W", "/", "\t"), maxLength: 60 }),
      fc.constantFrom("*", 'W/"x"', '"', '""', ", , ,", "x".repeat(8_000), "W/", '"a", W/"b", *'),
    );
    await fc.assert(
      fc.asyncProperty(header, header, async (inm, ims) => {
        const res = await call("/s.js", { headers: { "If-None-Match": inm, "If-Modified-Since": ims, Range: inm } });
        await expectSafe(res, { api: false, label: `GET /s.js If-None-Match ${inm.slice(0, 80)}` });
        expect([200, 206, 304, 412, 416]).toContain(res.status);
      }),
      RUNS,
    );
  });

  const loginField = fc.oneof(hostileString, fc.constantFrom("admin@team.example", "a@b.c"));

  it("answers hostile JSON sign-ins with a 4xx envelope and never a session", async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.oneof(
          fc.record({ email: loginField, password: loginField }, { requiredKeys: [] }).map((r) => JSON.stringify(r)),
          hostileValue.map(serialize),
          hostileString,
        ),
        async (body) => {
          const res = await call("/api/auth/login", {
            method: "POST",
            headers: { "Content-Type": "application/json", Origin: BASE },
            body,
          });
          await expectSafe(res, { api: true, label: `POST /api/auth/login ${body.slice(0, 120)}` });
          expect(res.status).toBeGreaterThanOrEqual(400);
          expect(res.headers.get("set-cookie")).toBeNull();
        },
      ),
      RUNS,
    );
  });

  it("answers hostile form sign-ins with a redirect or a 4xx, never a session", async () => {
    const formValue = fc.oneof(
      loginField.map((s) => encodeURIComponent(s.replace(/[\ud800-\udfff]/g, "\ufffd"))),
      fc.constantFrom("%", "%zz", "%ED%A0%80", "%00", "+"),
    );
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.tuple(fc.constantFrom("email", "password", "__proto__", "email[]", "x"), formValue), {
          maxLength: 5,
        }),
        fc.constantFrom(BASE, "https://evil.example", "null"),
        async (pairs, origin) => {
          const body = pairs.map(([k, v]) => `${k}=${v}`).join("&");
          const res = await call("/api/auth/login", {
            method: "POST",
            headers: { "Content-Type": "application/x-www-form-urlencoded", Origin: origin },
            body,
          });
          await expectSafe(res, { api: res.status >= 400, label: `form login ${body.slice(0, 120)}` });
          expect(res.status === 303 || (res.status >= 400 && res.status < 500)).toBe(true);
          expect(res.headers.get("set-cookie")).toBeNull();
        },
      ),
      RUNS,
    );
  });

  const csvCell = fc.oneof(
    hostileString.filter((s) => s.length < 200),
    fc.constantFrom('"', '""', '"a""b', "a,b", "\r", "\r\n", "\n", "=1+1", "+1", "@SUM(A1)", "\t=1", "ＡＢ", "\ufeff"),
  );
  const csvRow = fc.array(csvCell, { maxLength: 6 }).map((cells) => cells.join(","));
  // Header cells include names of Object.prototype properties (they once answered 500).
  const csvHeader = fc
    .array(fc.oneof(csvCell, fc.constantFrom("constructor", "__proto__", "toString", "hasOwnProperty")), {
      maxLength: 6,
    })
    .map((cells) => cells.join(","));

  it("previews hostile CSV with a 200 or a 4xx envelope", async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.oneof(
          fc.constantFrom("email,name", "\ufeffemail,name", "email,email", "toString,valueOf", "", ","),
          csvHeader,
        ),
        fc.array(csvRow, { maxLength: 8 }),
        fc.constantFrom("\n", "\r\n", "\r"),
        fc.option(hostileValue, { nil: undefined }),
        async (header, rows, eol, mapping) => {
          const csv = [header, ...rows].join(eol);
          const body =
            mapping === undefined
              ? JSON.stringify({ csv })
              : `{"csv":${JSON.stringify(csv)},"mapping":${serialize(mapping)}}`;
          const res = await call("/api/imports/preview", { method: "POST", headers: adminHeaders(), body });
          await expectSafe(res, { api: true, label: `POST /api/imports/preview ${body.slice(0, 200)}` });
        },
      ),
      RUNS,
    );
  });

  it("answers non-JSON and mistyped import previews with a 4xx envelope", async () => {
    for (const body of [
      "",
      "{",
      "null",
      "[]",
      '{"csv":1}',
      '{"csv":["a"]}',
      '{"csv":null}',
      '{"csv":"a","mapping":"x"}',
    ]) {
      const res = await call("/api/imports/preview", { method: "POST", headers: adminHeaders(), body });
      await expectSafe(res, { api: true, label: `POST /api/imports/preview ${body}` });
      expect(res.status, body).toBeGreaterThanOrEqual(400);
    }
  });
});

describe("after the campaign", () => {
  it("leaves Object.prototype, Array.prototype and Function.prototype without new keys", () => {
    expect(prototypeKeys()).toEqual(before);
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
  });
});
