/**
 * End to end through the real queue and pipeline: an identify changes a trait, the segments
 * engine puts the profile in a segment, and the next decisions show it within two seconds.
 */
import { env, SELF } from "cloudflare:test";
import { expect, it } from "vitest";
import { api, BASE, makeSite } from "../helpers/api";
import { decide, putSlot, unique } from "./seed";

async function pollUntil<T>(read: () => Promise<T>, done: (value: T) => boolean, timeoutMs: number) {
  const started = Date.now();
  let value = await read();
  while (!done(value) && Date.now() - started < timeoutMs) {
    await new Promise((r) => setTimeout(r, 50));
    value = await read();
  }
  return { value, elapsed: Date.now() - started };
}

it("shows the variant for a segment entered through an identify within 2 seconds", async () => {
  const site = await makeSite({ name: "Fresh" });
  const segment = unique("pro");
  const slot = unique("fresh");
  const created = await api("/api/segments", {
    body: { key: segment, name: "Pro plan", rule: { trait: "plan", op: "eq", value: "pro" } },
  });
  expect(created.status).toBe(201);
  await putSlot(slot, { default: "Hi", rules: [{ id: "pro-offer", segment, content: "Pro offer" }] });
  const anonymousId = unique("anon");
  expect((await decide({ writeKey: site.writeKey, slots: [slot], anonymousId })).slots[slot].variant).toBe("default");

  const sent = await SELF.fetch(`${BASE}/v1/identify`, {
    method: "POST",
    headers: { Authorization: `Basic ${btoa(`${site.writeKey}:`)}`, "Content-Type": "application/json" },
    body: JSON.stringify({ anonymousId, traits: { plan: "pro" } }),
  });
  expect(sent.status).toBe(200);
  const { value, elapsed } = await pollUntil(
    () => decide({ writeKey: site.writeKey, slots: [slot], anonymousId }),
    (d) => d.slots[slot].variant === "pro-offer",
    3_000,
  );
  expect(value.slots[slot]).toEqual({ content: "Pro offer", variant: "pro-offer" });
  expect(elapsed).toBeLessThan(2_000);
});

it("stores exposures through the pipeline where slot stats count them", async () => {
  const site = await makeSite({ name: "Exposed" });
  const slot = unique("counted");
  await putSlot(slot, { default: "Hi" });
  const anonymousId = unique("anon");
  await decide({ writeKey: site.writeKey, slots: [slot], anonymousId });
  const { value } = await pollUntil(
    async () =>
      env.DB.prepare("SELECT properties FROM events WHERE anonymous_id = ? AND event = 'Personalization Viewed'")
        .bind(anonymousId)
        .first<{ properties: string }>(),
    (row) => row !== null,
    5_000,
  );
  expect(JSON.parse(value!.properties)).toEqual({ slot, variant: "default", holdout: false });
  const stats = (await (await api(`/api/slots/${slot}/stats`)).json()) as { variants: unknown[] };
  expect(stats.variants).toEqual([
    { variant: "default", exposures: 1, visitors: 1, conversions: null, conversionRate: null },
  ]);
});
