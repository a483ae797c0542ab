import { env } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { ingestResponse, type Message } from "../../worker/wire/events";
import { basic, type ErrorBody, ingest, makeEvent, makeIngestSite, recordingQueue } from "./helpers";

type RejectedRow = { reason: string; payload: string; site_id: string };

async function rejectedRowsOf(siteId: string): Promise<RejectedRow[]> {
  const { results } = await env.DB.prepare(
    "SELECT reason, payload, site_id FROM rejected_events WHERE site_id = ? ORDER BY rowid",
  )
    .bind(siteId)
    .all<RejectedRow>();
  return results;
}

/** Sends a batch for a fresh site and returns the response, the queued events and the site. */
async function sendBatch(batch: unknown[], extra: Record<string, unknown> = {}) {
  const site = await makeIngestSite();
  const q = recordingQueue();
  const res = await ingest("/v1/batch", {
    body: { batch, ...extra },
    headers: basic(site.writeKey),
    env: { EVENTS: q.queue },
  });
  return { res, events: q.events(), site };
}

const iso = (ms: number) => new Date(ms).toISOString();

describe("per-message rejections", () => {
  it("accepts the valid messages of a batch and lists the invalid ones by index", async () => {
    const { res, events } = await sendBatch([makeEvent(), { type: "track", anonymousId: "a-1" }, makeEvent()]);
    expect(res.status).toBe(200);
    const body = ingestResponse.parse(await res.json());
    expect(body.rejected).toHaveLength(1);
    expect(body.rejected?.[0].index).toBe(1);
    expect(body.rejected?.[0].reason).toMatch(/event/);
    expect(events).toHaveLength(2);
  });

  it("stores each rejected message with its site, reason and payload", async () => {
    const { site } = await sendBatch([
      makeEvent(),
      { type: "track", anonymousId: "a-1", properties: { why: "no name" } },
    ]);
    const rows = await rejectedRowsOf(site.id);
    expect(rows).toHaveLength(1);
    expect(rows[0].reason).toMatch(/event/);
    expect(JSON.parse(rows[0].payload)).toEqual({ type: "track", anonymousId: "a-1", properties: { why: "no name" } });
  });

  it("answers 400 with every reason when no message is valid, and still stores them", async () => {
    const { res, events, site } = await sendBatch([{ type: "launch" }, { type: "track", event: "x" }]);
    expect(res.status).toBe(400);
    const body = (await res.json()) as ErrorBody;
    expect(body.error.code).toBe("validation_failed");
    const { rejected } = body.error.details as { rejected: { index: number; reason: string }[] };
    expect(rejected.map((r) => r.index)).toEqual([0, 1]);
    expect(rejected[0].reason).toMatch(/type must be one of/);
    expect(rejected[1].reason).toBe("neither userId nor anonymousId is a usable id");
    expect(events).toHaveLength(0);
    expect(await rejectedRowsOf(site.id)).toHaveLength(2);
  });

  it("answers 400 to a single-message route whose message is invalid", async () => {
    const site = await makeIngestSite();
    const res = await ingest("/v1/group", { body: { userId: "u-1" }, headers: basic(site.writeKey) });
    expect(res.status).toBe(400);
    expect(await rejectedRowsOf(site.id)).toHaveLength(1);
  });

  it("cuts the stored payload of a huge rejected message", async () => {
    const { site } = await sendBatch([
      makeEvent(),
      makeEvent({ properties: { a: "x".repeat(12_000), b: "y".repeat(12_000), c: "z".repeat(12_000) } }),
    ]);
    const [row] = await rejectedRowsOf(site.id);
    expect(row.reason).toMatch(/larger than 32 KB/);
    expect(row.payload.length).toBeLessThan(4_200);
    expect(row.payload.endsWith("…[truncated]")).toBe(true);
  });

  it("rejects a message nested deeper than 10 levels and accepts one at the limit", async () => {
    const nest = (levels: number): unknown => (levels === 0 ? "leaf" : { n: nest(levels - 1) });
    // The message is level 1 and its properties object level 2, so nest(9) ends at level 10.
    const { res, events } = await sendBatch([
      makeEvent({ properties: nest(9) as Record<string, unknown> }),
      makeEvent({ properties: nest(10) as Record<string, unknown> }),
    ]);
    const body = ingestResponse.parse(await res.json());
    expect(events).toHaveLength(1);
    expect(body.rejected).toEqual([{ index: 1, reason: "nested deeper than 10 levels" }]);
  });

  it("survives a message nested 100,000 levels deep", async () => {
    const deep = `${"[".repeat(100_000)}${"]".repeat(100_000)}`;
    const site = await makeIngestSite();
    const q = recordingQueue();
    const res = await ingest("/v1/batch", {
      body: `{"batch":[{"type":"track","event":"x","anonymousId":"a","properties":{"d":${deep}}}]}`,
      headers: basic(site.writeKey),
      env: { EVENTS: q.queue },
    });
    expect(res.status).toBe(400);
    expect(q.sent).toHaveLength(0);
  });

  it("rejects a message with a messageId of more than 100 characters", async () => {
    const { res } = await sendBatch([makeEvent(), makeEvent({ messageId: "m".repeat(101) })]);
    expect(ingestResponse.parse(await res.json()).rejected?.[0].index).toBe(1);
  });

  it("generates a messageId when the message has none and flags it", async () => {
    const { events } = await sendBatch([makeEvent({ messageId: undefined })]);
    expect(events[0].messageId).toMatch(/^[0-9a-f-]{36}$/);
    expect(events[0].flags).toContain("generated_message_id");
  });
});

describe("illegal ids", () => {
  const illegal = [
    "null",
    "undefined",
    "0",
    "-1",
    "[object Object]",
    "NaN",
    "anonymous",
    "Guest",
    "",
    "   ",
    "00000000-0000-0000-0000-000000000000",
    "u".repeat(101),
  ];

  for (const value of illegal) {
    it(`drops the userId ${JSON.stringify(value.slice(0, 20))} and keeps the anonymousId`, async () => {
      const { events } = await sendBatch([makeEvent({ userId: value, anonymousId: "a-real" })]);
      expect(events[0].userId).toBeNull();
      expect(events[0].anonymousId).toBe("a-real");
      expect(events[0].flags).toContain("illegal_id_dropped");
    });
  }

  it("rejects a message whose only ids are illegal", async () => {
    const { res, events } = await sendBatch([makeEvent({ userId: "null", anonymousId: "undefined" })]);
    expect(res.status).toBe(400);
    expect(events).toHaveLength(0);
  });

  it("turns numeric ids into strings", async () => {
    const { events } = await sendBatch([makeEvent({ userId: 42, anonymousId: undefined })]);
    expect(events[0].userId).toBe("42");
  });

  it("rejects an alias whose previousId is illegal", async () => {
    const { res } = await sendBatch([{ type: "alias", userId: "u-1", previousId: "null" }]);
    expect(res.status).toBe(400);
  });
});

describe("prototype-polluting keys", () => {
  const hostile = `{"batch":[{"type":"identify","userId":"u-1","messageId":"proto-1",
    "traits":{"__proto__":{"polluted":"yes"},"constructor":{"prototype":{"polluted":"yes"}},"plan":"pro",
      "nested":{"__proto__":{"polluted":"yes"},"ok":1}},
    "context":{"prototype":{"x":1},"page":{"__proto__":{"polluted":"yes"},"path":"/"}}}]}`;

  it("strips __proto__, constructor and prototype at any depth before queueing", async () => {
    const site = await makeIngestSite();
    const q = recordingQueue();
    const res = await ingest("/v1/batch", { body: hostile, headers: basic(site.writeKey), env: { EVENTS: q.queue } });
    expect(res.status).toBe(200);
    const [event] = q.events();
    expect(event.traits).toEqual({ plan: "pro", nested: { ok: 1 } });
    expect(Object.hasOwn(event.traits, "__proto__")).toBe(false);
    expect(Object.hasOwn(event.traits, "constructor")).toBe(false);
    expect(Object.hasOwn(event.context, "prototype")).toBe(false);
    expect(event.context.page).toEqual({ path: "/" });
    expect(JSON.stringify(q.sent)).not.toMatch(/__proto__|polluted/);
  });

  it("leaves Object.prototype untouched", async () => {
    const site = await makeIngestSite();
    await ingest("/v1/batch", {
      body: hostile,
      headers: basic(site.writeKey),
      env: { EVENTS: recordingQueue().queue },
    });
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
    expect(Object.prototype).not.toHaveProperty("polluted");
  });
});

describe("event time", () => {
  it("corrects client clock skew with receivedAt − (sentAt − timestamp), exactly", async () => {
    const { events } = await sendBatch([
      makeEvent({ timestamp: "2024-05-01T10:00:00.000Z", sentAt: "2024-05-01T10:00:30.250Z" }),
    ]);
    expect(events[0].timestamp).toBe(events[0].receivedAt - 30_250);
  });

  it("uses the batch-level sentAt when the message has none", async () => {
    const { events } = await sendBatch([makeEvent({ timestamp: "2030-01-01T00:00:00Z" })], {
      sentAt: "2030-01-01T00:00:02.000Z",
    });
    expect(events[0].timestamp).toBe(events[0].receivedAt - 2_000);
  });

  it("prefers the message's own sentAt over the batch's", async () => {
    const { events } = await sendBatch(
      [makeEvent({ timestamp: "2024-01-01T00:00:00+02:00", sentAt: "2024-01-01T00:00:05+02:00" })],
      { sentAt: "2024-01-01T00:10:00Z" },
    );
    expect(events[0].timestamp).toBe(events[0].receivedAt - 5_000);
  });

  it("repairs a device clock stuck in 1970 when sentAt comes from the same clock", async () => {
    const { events } = await sendBatch([
      makeEvent({ timestamp: "1970-01-01T00:01:00Z", sentAt: "1970-01-01T00:01:09Z" }),
    ]);
    expect(events[0].timestamp).toBe(events[0].receivedAt - 9_000);
  });

  it("keeps a timestamp as sent when there is no sentAt", async () => {
    const at = Date.now() - 86_400_000;
    const { events } = await sendBatch([makeEvent({ timestamp: iso(at) })]);
    expect(events[0].timestamp).toBe(at);
  });

  it("dates a message without timestamp at its arrival", async () => {
    const { events } = await sendBatch([makeEvent({ timestamp: undefined })]);
    expect(events[0].timestamp).toBe(events[0].receivedAt);
  });

  it("clamps a timestamp more than an hour ahead to receivedAt and flags it", async () => {
    const { events } = await sendBatch([makeEvent({ timestamp: iso(Date.now() + 2 * 3_600_000) })]);
    expect(events[0].timestamp).toBe(events[0].receivedAt);
    expect(events[0].flags).toContain("future_clamped");
  });

  it("keeps a timestamp less than an hour ahead", async () => {
    const ahead = Date.now() + 30 * 60_000;
    const { events } = await sendBatch([makeEvent({ timestamp: iso(ahead) })]);
    expect(events[0].timestamp).toBe(ahead);
    expect(events[0].flags).not.toContain("future_clamped");
  });

  it("rejects an unparseable timestamp", async () => {
    const { res } = await sendBatch([makeEvent(), makeEvent({ timestamp: "next Tuesday" })]);
    expect(ingestResponse.parse(await res.json()).rejected).toEqual([
      { index: 1, reason: "timestamp is not an ISO-8601 date" },
    ]);
  });

  it("rejects a timestamp before 2000", async () => {
    const { res } = await sendBatch([makeEvent(), makeEvent({ timestamp: "1999-12-31T23:59:59Z" })]);
    expect(ingestResponse.parse(await res.json()).rejected?.[0].reason).toMatch(/before 2000/);
  });
});

describe("identify", () => {
  it("merges context.traits under the message's own traits", async () => {
    const message: Message = {
      type: "identify",
      userId: "u-1",
      traits: { plan: "pro" },
      context: { traits: { plan: "free", email: "ada@example.com" } },
    };
    const { events } = await sendBatch([message]);
    expect(events[0].traits).toEqual({ plan: "pro", email: "ada@example.com" });
  });
});

describe("packing for the queue", () => {
  it("queues a 450 KB batch in order, in messages under 100 KB and calls under 256 KB", async () => {
    const site = await makeIngestSite();
    const q = recordingQueue();
    const batch = Array.from({ length: 500 }, (_, i) =>
      makeEvent({ messageId: `pack-${i}`, properties: { i, pad: "p".repeat(700) } }),
    );
    const res = await ingest("/v1/batch", { body: { batch }, headers: basic(site.writeKey), env: { EVENTS: q.queue } });
    expect(res.status).toBe(200);
    expect(q.events().map((e) => e.messageId)).toEqual(batch.map((m) => m.messageId));
    const sizes = q.sent.map((b) => new TextEncoder().encode(JSON.stringify(b)).byteLength);
    expect(Math.max(...sizes)).toBeLessThanOrEqual(100_000);
    expect(q.calls.length).toBeGreaterThan(1);
    let offset = 0;
    for (const count of q.calls) {
      expect(sizes.slice(offset, offset + count).reduce((a, b) => a + b, 0)).toBeLessThanOrEqual(256_000);
      offset += count;
    }
  });
});
