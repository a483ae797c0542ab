import { env } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { api } from "../helpers/api";
import { basic, type ErrorBody, failingQueue, ingest, makeEvent, makeIngestSite, recordingQueue } from "./helpers";

const codeOf = async (res: Response) => ((await res.json()) as ErrorBody).error.code;

/** A body stream that never ends: reading it without a cap would never finish. */
function endlessStream(chunk = new Uint8Array(16 * 1024).fill(0x20)) {
  let pulls = 0;
  const stream = new ReadableStream<Uint8Array>({
    pull(controller) {
      pulls++;
      controller.enqueue(chunk);
    },
  });
  return { stream, pulls: () => pulls };
}

async function gzip(text: string): Promise<Uint8Array> {
  const compressed = new Blob([text]).stream().pipeThrough(new CompressionStream("gzip"));
  return new Uint8Array(await new Response(compressed).arrayBuffer());
}

describe("whole-request errors", () => {
  it("answers 400 invalid_json to a body that is not JSON", async () => {
    const site = await makeIngestSite();
    const res = await ingest("/v1/batch", { body: '{"batch": [', headers: basic(site.writeKey) });
    expect(res.status).toBe(400);
    expect(await codeOf(res)).toBe("invalid_json");
  });

  it("answers 400 to an empty body", async () => {
    const site = await makeIngestSite();
    const res = await ingest("/v1/track", { body: "", headers: basic(site.writeKey) });
    expect(res.status).toBe(400);
    expect(await codeOf(res)).toBe("invalid_json");
  });

  it("answers 400 to a batch without messages", async () => {
    const site = await makeIngestSite();
    const q = recordingQueue();
    const res = await ingest("/v1/batch", {
      body: { batch: [] },
      headers: basic(site.writeKey),
      env: { EVENTS: q.queue },
    });
    expect(res.status).toBe(400);
    expect(await codeOf(res)).toBe("bad_request");
    expect(q.sent).toHaveLength(0);
  });

  it("answers 400 to a batch body whose batch is not a list", async () => {
    const site = await makeIngestSite();
    const res = await ingest("/v1/batch", { body: { batch: { type: "track" } }, headers: basic(site.writeKey) });
    expect(res.status).toBe(400);
  });

  it("answers 400 to a batch-level sentAt that is not a date", async () => {
    const site = await makeIngestSite();
    const res = await ingest("/v1/batch", {
      body: { batch: [makeEvent()], sentAt: "yesterday" },
      headers: basic(site.writeKey),
    });
    expect(res.status).toBe(400);
    expect(await codeOf(res)).toBe("validation_failed");
  });

  it("answers 401 without a write key", async () => {
    const res = await ingest("/v1/batch", { body: { batch: [makeEvent()] } });
    expect(res.status).toBe(401);
    expect(await codeOf(res)).toBe("unauthorized");
  });

  it("answers 401 to an unknown write key", async () => {
    const res = await ingest("/v1/batch", { body: { batch: [makeEvent()] }, headers: basic("wk_nobody") });
    expect(res.status).toBe(401);
  });

  it("stops accepting a write key once it was rotated", async () => {
    const site = await makeIngestSite();
    await api(`/api/sites/${site.id}/rotate-key`, { method: "POST" });
    const res = await ingest("/v1/t", {
      body: makeEvent(),
      headers: basic(site.writeKey),
      env: { EVENTS: recordingQueue().queue },
    });
    expect(res.status).toBe(401);
  });

  it("answers 401 when the Basic password is present but not the site's verification secret", async () => {
    const site = await makeIngestSite();
    const q = recordingQueue();
    const res = await ingest("/v1/t", {
      body: makeEvent(),
      headers: basic(site.writeKey, "guess"),
      env: { EVENTS: q.queue },
    });
    expect(res.status).toBe(401);
    expect(q.sent).toHaveLength(0);
  });

  it("answers 413 from Content-Length alone, without reading the body", async () => {
    const site = await makeIngestSite();
    const body = endlessStream();
    const res = await ingest("/v1/batch", {
      body: body.stream,
      headers: { ...basic(site.writeKey), "Content-Length": String(600 * 1024) },
    });
    expect(res.status).toBe(413);
    expect(await codeOf(res)).toBe("payload_too_large");
    expect(body.pulls()).toBeLessThanOrEqual(1);
  });

  it("answers 413 to a body without Content-Length once the bytes read pass 500 KB", async () => {
    const site = await makeIngestSite();
    const body = endlessStream();
    const res = await ingest("/v1/batch", { body: body.stream, headers: basic(site.writeKey) });
    expect(res.status).toBe(413);
    // 500 KB in 16 KB chunks: the reader stopped right after the cap, not at the end of the stream.
    expect(body.pulls()).toBeLessThan(40);
  });

  it("answers 413 to a single message over 32 KB", async () => {
    const site = await makeIngestSite();
    const res = await ingest("/v1/track", {
      body: makeEvent({ properties: { blob: "x".repeat(33 * 1024) } }),
      headers: basic(site.writeKey),
    });
    expect(res.status).toBe(413);
  });

  it("answers 413 to a batch of more than 2,500 messages", async () => {
    const site = await makeIngestSite();
    const res = await ingest("/v1/batch", {
      body: { batch: Array.from({ length: 2501 }, () => ({})) },
      headers: basic(site.writeKey),
    });
    expect(res.status).toBe(413);
  });

  it("accepts a gzip-encoded batch", async () => {
    const site = await makeIngestSite();
    const q = recordingQueue();
    const res = await ingest("/v1/batch", {
      body: await gzip(JSON.stringify({ batch: [makeEvent(), makeEvent()] })),
      headers: { ...basic(site.writeKey), "Content-Encoding": "gzip" },
      env: { EVENTS: q.queue },
    });
    expect(res.status).toBe(200);
    expect(q.events()).toHaveLength(2);
  });

  it("answers 413 to a gzip body that inflates past 500 KB (a zip bomb)", async () => {
    const site = await makeIngestSite();
    const bomb = await gzip(`{"batch":[${" ".repeat(4 * 1024 * 1024)}]}`);
    expect(bomb.byteLength).toBeLessThan(50 * 1024);
    const res = await ingest("/v1/batch", {
      body: bomb,
      headers: { ...basic(site.writeKey), "Content-Encoding": "gzip" },
    });
    expect(res.status).toBe(413);
  });

  it("answers 415 to a content encoding it cannot read", async () => {
    const site = await makeIngestSite();
    const res = await ingest("/v1/batch", {
      body: "{}",
      headers: { ...basic(site.writeKey), "Content-Encoding": "br" },
    });
    expect(res.status).toBe(415);
  });

  it("answers 429 with Retry-After when the write key is over its rate limit", async () => {
    const site = await makeIngestSite();
    const keys: string[] = [];
    const limiter: RateLimit = {
      async limit({ key }) {
        keys.push(key);
        return { success: false };
      },
    };
    const q = recordingQueue();
    const res = await ingest("/v1/batch", {
      body: { batch: [makeEvent()] },
      headers: basic(site.writeKey),
      env: { INGEST_RATE_LIMIT: limiter, EVENTS: q.queue },
    });
    expect(res.status).toBe(429);
    expect(await codeOf(res)).toBe("rate_limited");
    expect(Number(res.headers.get("retry-after"))).toBeGreaterThan(0);
    expect(keys).toEqual([site.writeKey]);
    expect(q.sent).toHaveLength(0);
  });

  it("rate limits a write key sent in the body too", async () => {
    const site = await makeIngestSite();
    const limiter: RateLimit = { limit: async () => ({ success: false }) };
    const res = await ingest("/v1/batch", {
      body: { batch: [makeEvent()], writeKey: site.writeKey },
      env: { INGEST_RATE_LIMIT: limiter },
    });
    expect(res.status).toBe(429);
  });

  it("answers 503 with Retry-After, never 2xx, when the queue send fails", async () => {
    const site = await makeIngestSite();
    const res = await ingest("/v1/batch", {
      body: { batch: [makeEvent()] },
      headers: basic(site.writeKey),
      env: { EVENTS: failingQueue },
    });
    expect(res.status).toBe(503);
    expect(await codeOf(res)).toBe("unavailable");
    expect(res.headers.get("retry-after")).toBeTruthy();
  });

  it("answers 503 with Retry-After when the rejected messages cannot be recorded", async () => {
    const site = await makeIngestSite();
    // D1 answers reads (the write-key lookup) but fails the batch write of the rejected rows.
    const brokenWrites = {
      prepare: (sql: string) => env.DB.prepare(sql),
      batch: async () => {
        throw new Error("D1 unavailable");
      },
    } as unknown as D1Database;
    const res = await ingest("/v1/batch", {
      body: { batch: [makeEvent(), { type: "track", anonymousId: "a" }] },
      headers: basic(site.writeKey),
      env: { DB: brokenWrites, EVENTS: recordingQueue().queue },
    });
    // The valid event may already be queued: the client's retry queues it again under the same
    // messageId, and the consumer stores it once.
    expect(res.status).toBe(503);
    expect(res.headers.get("retry-after")).toBeTruthy();
  });

  it("records no rejected message when the queue send fails, so the client's retry records it once", async () => {
    const site = await makeIngestSite();
    const count = async () =>
      (
        await env.DB.prepare("SELECT count(*) AS n FROM rejected_events WHERE site_id = ?")
          .bind(site.id)
          .first<{ n: number }>()
      )?.n;
    const body = { batch: [makeEvent(), { type: "track", event: "No ids" }] };
    const refused = await ingest("/v1/batch", { body, headers: basic(site.writeKey), env: { EVENTS: failingQueue } });
    expect(refused.status).toBe(503);
    expect(await count()).toBe(0);
    const retried = await ingest("/v1/batch", {
      body,
      headers: basic(site.writeKey),
      env: { EVENTS: recordingQueue().queue },
    });
    expect(retried.status).toBe(200);
    expect(await count()).toBe(1);
  });

  it("answers 503 with Retry-After when D1 cannot look the write key up", async () => {
    const site = await makeIngestSite();
    const down = {
      prepare: () => {
        throw new Error("D1 unavailable");
      },
    } as unknown as D1Database;
    const res = await ingest("/v1/t", { body: makeEvent(), headers: basic(site.writeKey), env: { DB: down } });
    expect(res.status).toBe(503);
    expect(res.headers.get("retry-after")).toBeTruthy();
  });

  it("answers 405 to a GET on an ingest route", async () => {
    const res = await ingest("/v1/track", { method: "GET" });
    expect(res.status).toBe(405);
  });
});

describe("CORS", () => {
  it("answers a preflight with 204, any origin and no credentials", async () => {
    const res = await ingest("/v1/batch", {
      method: "OPTIONS",
      headers: {
        Origin: "https://shop.example",
        "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "content-type",
      },
    });
    expect(res.status).toBe(204);
    expect(res.headers.get("access-control-allow-origin")).toBe("*");
    expect(res.headers.get("access-control-allow-methods")).toContain("POST");
    expect(res.headers.get("access-control-allow-credentials")).toBeNull();
  });

  it("accepts a browser request from an allowed origin", async () => {
    const site = await makeIngestSite({ allowedOrigins: ["https://shop.example"] });
    const q = recordingQueue();
    const res = await ingest("/v1/batch", {
      body: { batch: [makeEvent()], writeKey: site.writeKey },
      headers: { Origin: "https://shop.example" },
      env: { EVENTS: q.queue },
    });
    expect(res.status).toBe(200);
    expect(res.headers.get("access-control-allow-origin")).toBe("*");
    expect(q.events()).toHaveLength(1);
  });

  it("refuses a browser request from an origin the site does not allow, readably for the page", async () => {
    const site = await makeIngestSite({ allowedOrigins: ["https://shop.example"] });
    const q = recordingQueue();
    const res = await ingest("/v1/batch", {
      body: { batch: [makeEvent()], writeKey: site.writeKey },
      headers: { Origin: "https://evil.example" },
      env: { EVENTS: q.queue },
    });
    expect(res.status).toBe(403);
    expect(await codeOf(res)).toBe("forbidden");
    expect(res.headers.get("access-control-allow-origin")).toBe("*");
    expect(q.sent).toHaveLength(0);
  });

  it("refuses every browser request for a site without allowed origins but accepts servers", async () => {
    const site = await makeIngestSite({ allowedOrigins: [] });
    const q = recordingQueue();
    const browser = await ingest("/v1/t", {
      body: makeEvent(),
      headers: { ...basic(site.writeKey), Origin: "https://shop.example" },
      env: { EVENTS: q.queue },
    });
    expect(browser.status).toBe(403);
    const server = await ingest("/v1/t", {
      body: makeEvent(),
      headers: basic(site.writeKey),
      env: { EVENTS: q.queue },
    });
    expect(server.status).toBe(200);
  });

  it("accepts any origin for a site that allows *", async () => {
    const site = await makeIngestSite({ allowedOrigins: ["*"] });
    const res = await ingest("/v1/t", {
      body: makeEvent(),
      headers: { ...basic(site.writeKey), Origin: "https://anywhere.example" },
      env: { EVENTS: recordingQueue().queue },
    });
    expect(res.status).toBe(200);
  });
});
