import { createMessageBatch, env } from "cloudflare:test";
import { Webhook } from "standardwebhooks";
import { describe, expect, it } from "vitest";
import { backoffSeconds, handleDeadDeliveries } from "../../worker/activation/consumer";
import { newWebhookSecret, signWebhook } from "../../worker/activation/signing";
import { api } from "../helpers/api";
import { deliveryRows, makeDestination, publicDns, receiver, runDeliveries } from "./helpers";

/** An outbox row for a destination, as the segment writers leave it. */
async function pending(
  destinationId: string,
  payload: unknown = { type: "event", timestamp: new Date().toISOString(), data: { event: { name: "Signed Up" } } },
) {
  const id = `msg_${Math.random().toString(36).slice(2)}`;
  const now = Date.now();
  await env.DB.prepare(
    "INSERT INTO deliveries (id, destination_id, type, payload, status, attempts, next_attempt_at, created_at, updated_at) VALUES (?, ?, 'event', ?, 'pending', 0, ?, ?, ?)",
  )
    .bind(id, destinationId, JSON.stringify(payload), now, now, now)
    .run();
  return { v: 1 as const, deliveryId: id };
}

const row = async (destinationId: string) => (await deliveryRows(destinationId))[0];

/** The retry delay the consumer chose, as recorded on the row (the queue keeps its own copy). */
async function recordedDelaySeconds(deliveryId: string): Promise<number> {
  const r = await env.DB.prepare("SELECT next_attempt_at - updated_at AS d FROM deliveries WHERE id = ?")
    .bind(deliveryId)
    .first<{ d: number }>();
  return (r?.d ?? 0) / 1000;
}

describe("webhook signing", () => {
  it("produces signatures the official Standard Webhooks library verifies", async () => {
    const secret = newWebhookSecret();
    expect(secret).toMatch(/^whsec_[A-Za-z0-9+/]{32}$/);
    const body = JSON.stringify({ type: "segment.entered", data: { n: "é ✓" } });
    const ts = Math.floor(Date.now() / 1000);
    const headers = {
      "webhook-id": "msg_1",
      "webhook-timestamp": String(ts),
      "webhook-signature": await signWebhook(secret, "msg_1", ts, body),
    };
    expect(new Webhook(secret).verify(body, headers)).toEqual(JSON.parse(body));
  });

  it("produces signatures that fail verification with another secret or a changed body", async () => {
    const secret = newWebhookSecret();
    const ts = Math.floor(Date.now() / 1000);
    const sig = await signWebhook(secret, "msg_1", ts, "{}");
    const headers = { "webhook-id": "msg_1", "webhook-timestamp": String(ts), "webhook-signature": sig };
    expect(() => new Webhook(newWebhookSecret()).verify("{}", headers)).toThrow();
    expect(() => new Webhook(secret).verify('{"x":1}', headers)).toThrow();
  });
});

describe("delivery consumer", () => {
  it("posts the signed payload with the delivery id as webhook-id and records the delivery", async () => {
    const dest = await makeDestination({ events: ["Signed Up"] });
    const msg = await pending(dest.id);
    const hook = receiver();
    const result = await runDeliveries([msg], { fetch: hook.fetch, resolve: publicDns });
    expect(result.explicitAcks).toHaveLength(1);
    expect(hook.calls).toHaveLength(1);
    expect(hook.calls[0].url).toBe(dest.url);
    expect(hook.calls[0].headers["webhook-id"]).toBe(msg.deliveryId);
    expect(hook.calls[0].redirect).toBe("manual");
    expect(new Webhook(dest.secret).verify(hook.calls[0].body, hook.calls[0].headers)).toMatchObject({ type: "event" });
    expect(await row(dest.id)).toMatchObject({ status: "delivered", attempts: 1, last_status: 200, last_error: null });
  });

  it("retries a 5xx with exponential backoff and keeps the same webhook-id", async () => {
    const dest = await makeDestination({});
    const msg = await pending(dest.id);
    const hook = receiver(() => new Response("busy", { status: 503 }));
    const first = await runDeliveries([msg], { fetch: hook.fetch, resolve: publicDns }, 1);
    expect(first.retryMessages).toHaveLength(1);
    expect(await recordedDelaySeconds(msg.deliveryId)).toBe(30);
    const third = await runDeliveries([msg], { fetch: hook.fetch, resolve: publicDns }, 3);
    expect(third.retryMessages).toHaveLength(1);
    expect(await recordedDelaySeconds(msg.deliveryId)).toBe(120);
    expect(new Set(hook.calls.map((c) => c.headers["webhook-id"]))).toEqual(new Set([msg.deliveryId]));
    expect(await row(dest.id)).toMatchObject({ status: "retrying", attempts: 2, last_status: 503 });
  });

  it("honours Retry-After on a 429, within an hour", async () => {
    const dest = await makeDestination({});
    const msg = await pending(dest.id);
    const soon = await runDeliveries([msg], {
      fetch: receiver(() => new Response("", { status: 429, headers: { "Retry-After": "7" } })).fetch,
      resolve: publicDns,
    });
    expect(soon.retryMessages).toHaveLength(1);
    expect(await recordedDelaySeconds(msg.deliveryId)).toBe(7);
    expect(backoffSeconds(1, "86400", Date.now())).toBe(3600);
  });

  it("retries a timeout or a network error", async () => {
    const dest = await makeDestination({});
    const msg = await pending(dest.id);
    const timeout = (async () => {
      throw new DOMException("The operation timed out", "TimeoutError");
    }) as typeof fetch;
    const result = await runDeliveries([msg], { fetch: timeout, resolve: publicDns });
    expect(result.retryMessages).toHaveLength(1);
    expect(await row(dest.id)).toMatchObject({ status: "retrying", last_error: "Timed out after 10 s" });
  });

  it("fails at once on a 4xx other than 429", async () => {
    const dest = await makeDestination({});
    const msg = await pending(dest.id);
    const result = await runDeliveries([msg], {
      fetch: receiver(() => new Response("no", { status: 410 })).fetch,
      resolve: publicDns,
    });
    expect(result.explicitAcks).toHaveLength(1);
    expect(await row(dest.id)).toMatchObject({ status: "failed", last_status: 410 });
  });

  it("does not follow a redirect and fails the delivery", async () => {
    const dest = await makeDestination({});
    const msg = await pending(dest.id);
    const hook = receiver(() => new Response(null, { status: 302, headers: { Location: "http://169.254.169.254/" } }));
    await runDeliveries([msg], { fetch: hook.fetch, resolve: publicDns });
    expect(hook.calls).toHaveLength(1);
    expect(await row(dest.id)).toMatchObject({ status: "failed", last_status: 302 });
    expect((await row(dest.id)).last_error).toContain("redirects are not followed");
  });

  it("refuses to send when the host name resolves to a private address", async () => {
    const dest = await makeDestination({ url: "https://rebind.example.com/hook" });
    const msg = await pending(dest.id);
    const hook = receiver();
    await runDeliveries([msg], { fetch: hook.fetch, resolve: async () => ["93.184.216.34", "10.0.0.7"] });
    expect(hook.calls).toHaveLength(0);
    expect(await row(dest.id)).toMatchObject({ status: "failed" });
    expect((await row(dest.id)).last_error).toContain("private address");
  });

  it("re-checks the stored URL at send time", async () => {
    const dest = await makeDestination({});
    await env.DB.prepare("UPDATE destinations SET url = 'https://[::1]/hook' WHERE id = ?").bind(dest.id).run();
    const msg = await pending(dest.id);
    const hook = receiver();
    await runDeliveries([msg], { fetch: hook.fetch, resolve: publicDns });
    expect(hook.calls).toHaveLength(0);
    expect((await row(dest.id)).last_error).toContain("Refused URL");
  });

  it("skips a delivery that was already delivered (a duplicate relay)", async () => {
    const dest = await makeDestination({});
    const msg = await pending(dest.id);
    const hook = receiver();
    await runDeliveries([msg], { fetch: hook.fetch, resolve: publicDns });
    await runDeliveries([msg], { fetch: hook.fetch, resolve: publicDns });
    expect(hook.calls).toHaveLength(1);
  });

  it("marks the delivery failed when the queue gives up (dead-letter queue)", async () => {
    const dest = await makeDestination({});
    const msg = await pending(dest.id);
    await runDeliveries(
      [msg],
      { fetch: receiver(() => new Response("", { status: 500 })).fetch, resolve: publicDns },
      9,
    );
    const batch = createMessageBatch("tessera-deliveries-dlq", [
      { id: "d1", timestamp: new Date(), attempts: 1, body: msg },
    ]);
    await handleDeadDeliveries(batch, env);
    const failed = await row(dest.id);
    expect(failed.status).toBe("failed");
    expect(failed.last_error).toBe("Gave up after retries: HTTP 500");
  });

  it("lists attempts in the destination's delivery log", async () => {
    const dest = await makeDestination({});
    const msg = await pending(dest.id);
    await runDeliveries([msg], { fetch: receiver(() => new Response("", { status: 502 })).fetch, resolve: publicDns });
    const res = await api(`/api/destinations/${dest.id}/deliveries`);
    expect(res.status).toBe(200);
    const log = (await res.json()) as { items: { id: string; status: string; attempts: number; lastStatus: number }[] };
    expect(log.items).toEqual([
      expect.objectContaining({ id: msg.deliveryId, status: "retrying", attempts: 1, lastStatus: 502 }),
    ]);
  });
});
