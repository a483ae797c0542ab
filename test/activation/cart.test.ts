/**
 * The benchmark: abandoned carts reach the marketing automation platform in seconds.
 * Real-time path (pipeline hook) → outbox → relay → delivery consumer → signed webhook, with time
 * passed explicitly instead of waited for.
 */
import { env } from "cloudflare:test";
import { Webhook } from "standardwebhooks";
import { describe, expect, it } from "vitest";
import { relayDeliveries } from "../../worker/activation/outbox";
import type { Env } from "../../worker/env";
import { runScheduled } from "../../worker/segments/scheduled";
import { api } from "../helpers/api";
import { commit, delta, MIN, makeEvent, seedProfiles } from "../segments/factories";
import { capturingEnv, makeDestination, publicDns, receiver, runDeliveries } from "./helpers";

const cartRule = {
  all: [
    { event: "Product Added", within: "2h" },
    { not: { event: "Product Added", within: "30m" } },
    { not: { event: "Order Completed", within: "2h" } },
  ],
};

async function setup(key: string) {
  const res = await api("/api/segments", { body: { key, name: "Abandoned cart", rule: cartRule } });
  expect(res.status).toBe(201);
  const destination = await makeDestination({ segments: [key], url: `https://hooks.example.com/${key}` });
  const [profileId] = await seedProfiles([{ traits: { email: "ann@shop.example" } }]);
  await env.DB.prepare("INSERT INTO identities (type, value, profile_id, created_at) VALUES ('email', ?, ?, ?)")
    .bind(`ann+${profileId}@shop.example`, profileId, Date.now())
    .run();
  return { destination, profileId };
}

/** Runs `step` with a capturing queue, then the consumer on what it relayed; returns the requests made. */
async function deliverAfter(step: (env: Env) => Promise<unknown>) {
  const { env: relayEnv, sent } = capturingEnv();
  await step(relayEnv);
  const hook = receiver();
  if (sent.length) await runDeliveries(sent, { fetch: hook.fetch, resolve: publicDns });
  return hook.calls;
}

/** What the pipeline does after its batch committed: relay the outbox. */
const flush = (now: number) => deliverAfter((e) => relayDeliveries(e, now));

describe("abandoned cart, end to end", () => {
  it("enters as the 30-minute mark passes, sends one signed segment.entered, and exits on an order", async () => {
    const { destination, profileId } = await setup("cart-lapse");
    const now = Date.now();
    const added = now - 45 * MIN;
    // The add-to-cart was processed when it happened: too recent to count as abandoned then.
    await commit([delta(profileId, { events: [makeEvent({ timestamp: added })] })], added + 1000);
    expect(await flush(added + 2000)).toHaveLength(0);

    // No event since; the cron runs (every minute) and the window has lapsed.
    const entered = (await deliverAfter((e) => runScheduled(e, now))).filter((c) => c.url === destination.url);
    expect(entered).toHaveLength(1);
    const verified = new Webhook(destination.secret).verify(entered[0].body, entered[0].headers) as {
      type: string;
      data: { segment: { key: string }; profile: { id: string; identities: { type: string; value: string }[] } };
    };
    expect(verified.type).toBe("segment.entered");
    expect(verified.data.segment.key).toBe("cart-lapse");
    expect(verified.data.profile.id).toBe(profileId);
    expect(verified.data.profile.identities).toContainEqual({ type: "email", value: `ann+${profileId}@shop.example` });

    // Nothing more to send on the next cron run.
    expect(await deliverAfter((e) => runScheduled(e, now + MIN))).toHaveLength(0);

    await commit(
      [delta(profileId, { events: [makeEvent({ event: "Order Completed", timestamp: now + 2 * MIN })] })],
      now + 2 * MIN,
    );
    const exited = (await flush(now + 2 * MIN)).filter((c) => c.url === destination.url);
    expect(exited).toHaveLength(1);
    const exit = new Webhook(destination.secret).verify(exited[0].body, exited[0].headers) as { type: string };
    expect(exit.type).toBe("segment.exited");
    expect(exited[0].headers["webhook-id"]).not.toBe(entered[0].headers["webhook-id"]);
  });

  it("enters in the same pipeline batch when the add-to-cart arrives 45 minutes late", async () => {
    const { destination, profileId } = await setup("cart-late");
    const now = Date.now();
    await commit([delta(profileId, { events: [makeEvent({ timestamp: now - 45 * MIN })] })], now);
    // Other tests' segments see this profile too; only this destination's calls matter here.
    const calls = (await flush(now)).filter((c) => c.url === destination.url);
    expect(calls).toHaveLength(1);
    const payload = new Webhook(destination.secret).verify(calls[0].body, calls[0].headers) as { type: string };
    expect(payload.type).toBe("segment.entered");
  });
});
