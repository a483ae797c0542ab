import { createExecutionContext, env, SELF, waitOnExecutionContext } from "cloudflare:test";
import { beforeAll, describe, expect, it } from "vitest";
import { personalizeApi } from "../../worker/personalize";
import { personalizeResponseSchema } from "../../worker/personalize/edge";
import { siteSchema } from "../../worker/sites";
import type { QueuedBatch } from "../../worker/wire/queue";
import { BASE, makeSite } from "../helpers/api";
import {
  addMembership,
  brokenDb,
  decide,
  decideUrl,
  putSlot,
  recordingQueue,
  seedProfile,
  seedSegment,
  unique,
} from "./seed";

let site: { id: string; writeKey: string };
const vip = unique("vip");
const trial = unique("trial");
const pub = unique("pub");
const hero = unique("hero");

beforeAll(async () => {
  site = await makeSite({ name: "Personalized shop" });
  await seedSegment(vip);
  await seedSegment(trial);
  await seedSegment(pub, { public: true });
  await putSlot(hero, {
    default: "<h1>Welcome</h1>",
    rules: [
      { id: "vip-hero", segment: vip, content: "<h1>Hello VIP</h1>" },
      { id: "trial-hero", segment: trial, content: { headline: "Upgrade now" } },
    ],
  });
});

describe("GET /v1/personalize", () => {
  it("answers 401 without a write key", async () => {
    const res = await SELF.fetch(decideUrl({ slots: [hero], anonymousId: "a1" }));
    expect(res.status).toBe(401);
    expect(((await res.json()) as { error: { code: string } }).error.code).toBe("unauthorized");
    // Readable cross-origin, so a page's script can tell a bad key from a network error.
    expect(res.headers.get("access-control-allow-origin")).toBe("*");
  });

  it("answers 401 for an unknown write key", async () => {
    const res = await SELF.fetch(decideUrl({ writeKey: "wk_nope", slots: [hero], anonymousId: "a1" }));
    expect(res.status).toBe(401);
  });

  it("accepts the write key as Basic auth username or X-Tessera-Key header", async () => {
    const url = decideUrl({ slots: [hero], anonymousId: unique("anon") });
    const ways: Record<string, string>[] = [
      { Authorization: `Basic ${btoa(`${site.writeKey}:`)}` },
      { "X-Tessera-Key": site.writeKey },
    ];
    for (const headers of ways) {
      const res = await SELF.fetch(url, { headers });
      expect(res.status).toBe(200);
    }
  });

  it("gives the first matching rule's content and names its id as the variant", async () => {
    const anonymousId = unique("anon");
    await seedProfile({ anonymousId, segments: [trial, vip] });
    const body = await decide({ writeKey: site.writeKey, slots: [hero], anonymousId });
    expect(body.slots[hero]).toEqual({ content: "<h1>Hello VIP</h1>", variant: "vip-hero" });
  });

  it("serves JSON object content to a visitor in the matching segment", async () => {
    const anonymousId = unique("anon");
    await seedProfile({ anonymousId, segments: [trial] });
    const body = await decide({ writeKey: site.writeKey, slots: [hero], anonymousId });
    expect(body.slots[hero]).toEqual({ content: { headline: "Upgrade now" }, variant: "trial-hero" });
  });

  it("gives an unknown visitor the default", async () => {
    const body = await decide({ writeKey: site.writeKey, slots: [hero], anonymousId: unique("stranger") });
    expect(body.slots[hero]).toEqual({ content: "<h1>Welcome</h1>", variant: "default" });
  });

  it("leaves unknown slots out of the answer", async () => {
    const body = await decide({ writeKey: site.writeKey, slots: [hero, "no-such-slot"], anonymousId: "x" });
    expect(Object.keys(body.slots)).toEqual([hero]);
  });

  it("answers with the route's schema, never cached, readable from any origin without credentials", async () => {
    const res = await SELF.fetch(decideUrl({ writeKey: site.writeKey, slots: [hero], anonymousId: "x" }), {
      headers: { Origin: "https://elsewhere.example" },
    });
    expect(personalizeResponseSchema.safeParse(await res.json()).success).toBe(true);
    expect(res.headers.get("cache-control")).toBe("private, no-store");
    expect(res.headers.get("access-control-allow-origin")).toBe("*");
    expect(res.headers.get("access-control-allow-credentials")).toBeNull();
  });

  it("answers a CORS preflight for header-authenticated calls", async () => {
    const res = await SELF.fetch(`${BASE}/v1/personalize`, {
      method: "OPTIONS",
      headers: { Origin: "https://shop.example", "Access-Control-Request-Headers": "x-tessera-key" },
    });
    expect(res.status).toBe(204);
    expect(res.headers.get("access-control-allow-headers")).toMatch(/X-Tessera-Key/i);
  });

  it("rejects more than 20 slots and malformed slot keys with a 400", async () => {
    const many = Array.from({ length: 21 }, (_, i) => `s${i}`);
    const tooMany = await SELF.fetch(decideUrl({ writeKey: site.writeKey, slots: many, anonymousId: "x" }));
    expect(tooMany.status).toBe(400);
    const bad = await SELF.fetch(decideUrl({ writeKey: site.writeKey, slots: ["<script>"], anonymousId: "x" }));
    expect(bad.status).toBe(400);
  });

  it("rejects identifiers longer than 100 characters with a 400", async () => {
    const res = await SELF.fetch(decideUrl({ writeKey: site.writeKey, slots: [hero], anonymousId: "a".repeat(101) }));
    expect(res.status).toBe(400);
  });

  it("never returns traits, identifiers, emails or private segment names", async () => {
    const anonymousId = unique("anon-pii");
    const userId = unique("user-pii");
    await seedProfile({
      anonymousId,
      userId,
      email: "jane.secret@example.com",
      name: "Jane Secretname",
      traits: { plan: "enterprise-secret-plan", phone: "+15550001234" },
      segments: [vip],
    });
    const res = await SELF.fetch(decideUrl({ writeKey: site.writeKey, slots: [hero], anonymousId, userId }));
    const text = await res.text();
    expect(JSON.parse(text).slots[hero].variant).toBe("vip-hero");
    for (const secret of [
      anonymousId,
      userId,
      "jane.secret",
      "Secretname",
      "enterprise-secret-plan",
      "5550001234",
      vip,
    ]) {
      expect(text).not.toContain(secret);
    }
    expect(text).not.toContain("prf-");
  });

  it("names public segments the visitor is in, and only those", async () => {
    const anonymousId = unique("anon");
    await seedProfile({ anonymousId, segments: [vip, pub] });
    const body = await decide({ writeKey: site.writeKey, slots: [hero], anonymousId });
    expect(body.segments).toEqual([pub]);
  });

  it("ignores conditions sent by the client", async () => {
    const anonymousId = unique("anon");
    await seedProfile({ anonymousId });
    const url = `${decideUrl({ writeKey: site.writeKey, slots: [hero], anonymousId })}&segments=${vip}&segment=${vip}&variant=vip-hero`;
    const body = (await (await SELF.fetch(url)).json()) as { slots: Record<string, { variant: string }> };
    expect(body.slots[hero].variant).toBe("default");
  });

  it("prefers the userId's profile over the anonymous id's", async () => {
    const anonymousId = unique("anon");
    const userId = unique("user");
    await seedProfile({ anonymousId, segments: [trial] });
    await seedProfile({ userId, segments: [vip] });
    const body = await decide({ writeKey: site.writeKey, slots: [hero], anonymousId, userId });
    expect(body.slots[hero].variant).toBe("vip-hero");
  });

  it("follows a merged-away profile to the profile it was merged into", async () => {
    const survivor = await seedProfile({ segments: [vip] });
    const anonymousId = unique("anon");
    await seedProfile({ anonymousId, mergedInto: survivor });
    const body = await decide({ writeKey: site.writeKey, slots: [hero], anonymousId });
    expect(body.slots[hero].variant).toBe("vip-hero");
  });

  it("shows a new membership in the very next decision", async () => {
    const anonymousId = unique("anon");
    const profileId = await seedProfile({ anonymousId });
    expect((await decide({ writeKey: site.writeKey, slots: [hero], anonymousId })).slots[hero].variant).toBe("default");
    await addMembership(profileId, vip);
    expect((await decide({ writeKey: site.writeKey, slots: [hero], anonymousId })).slots[hero].variant).toBe(
      "vip-hero",
    );
  });

  it("shows a slot edit in the next decision", async () => {
    const key = unique("edited");
    await putSlot(key, { default: "before" });
    expect((await decide({ writeKey: site.writeKey, slots: [key], anonymousId: "x" })).slots[key].content).toBe(
      "before",
    );
    await putSlot(key, { default: "after" });
    expect((await decide({ writeKey: site.writeKey, slots: [key], anonymousId: "x" })).slots[key].content).toBe(
      "after",
    );
  });

  it("keeps a visitor in the same holdout group across calls", async () => {
    const key = unique("held");
    await putSlot(key, { default: "control", rules: [{ id: "treat", segment: vip, content: "treated" }], holdout: 50 });
    const seen = new Set<string>();
    for (let i = 0; i < 12; i++) {
      const anonymousId = unique("anon");
      await seedProfile({ anonymousId, segments: [vip] });
      const first = (await decide({ writeKey: site.writeKey, slots: [key], anonymousId })).slots[key].variant;
      const again = (await decide({ writeKey: site.writeKey, slots: [key], anonymousId })).slots[key].variant;
      expect(again).toBe(first);
      seen.add(first);
    }
    expect([...seen].every((v) => v === "treat" || v === "holdout")).toBe(true);
  });

  it("gives the default outside the slot's schedule", async () => {
    const key = unique("scheduled");
    await putSlot(key, {
      default: "regular",
      rules: [{ id: "sale", segment: vip, content: "sale" }],
      schedule: { start: new Date(Date.now() + 86_400_000).toISOString() },
    });
    const anonymousId = unique("anon");
    await seedProfile({ anonymousId, segments: [vip] });
    const body = await decide({ writeKey: site.writeKey, slots: [key], anonymousId });
    expect(body.slots[key]).toEqual({ content: "regular", variant: "default" });
  });
});

describe("GET /v1/personalize with identity verification", () => {
  async function hmac(secret: string, message: string) {
    const enc = new TextEncoder();
    const key = await crypto.subtle.importKey("raw", enc.encode(secret), { name: "HMAC", hash: "SHA-256" }, false, [
      "sign",
    ]);
    const mac = new Uint8Array(await crypto.subtle.sign("HMAC", key, enc.encode(message)));
    return [...mac].map((b) => b.toString(16).padStart(2, "0")).join("");
  }

  it("ignores a userId without a valid userHash, so nobody can look up a named user's variants", async () => {
    const verified = siteSchema.parse(await makeSite({ name: "Verified", identityVerification: true }));
    const userId = unique("user");
    await seedProfile({ userId, segments: [vip] });
    const forged = await decide({ writeKey: verified.writeKey, slots: [hero], userId });
    expect(forged.slots[hero].variant).toBe("default");
    const res = await SELF.fetch(
      `${decideUrl({ writeKey: verified.writeKey, slots: [hero], userId })}&userHash=${await hmac(verified.verificationSecret!, userId)}`,
    );
    expect(((await res.json()) as { slots: Record<string, { variant: string }> }).slots[hero].variant).toBe("vip-hero");
  });
});

describe("GET /v1/personalize when D1 fails", () => {
  async function callWith(db: D1Database, slots: string[]) {
    const { queue } = recordingQueue();
    const ctx = createExecutionContext();
    const res = await personalizeApi.request(
      decideUrl({ writeKey: site.writeKey, slots, anonymousId: "someone" }).replace(`${BASE}/v1/personalize`, "/"),
      {},
      { ...env, DB: db, EVENTS: queue },
      ctx,
    );
    await waitOnExecutionContext(ctx);
    return res;
  }

  it("answers 200 with the defaults when queries throw", async () => {
    await decide({ writeKey: site.writeKey, slots: [hero], anonymousId: "warm-the-cache" });
    const res = await callWith(brokenDb("throw"), [hero]);
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ slots: { [hero]: { content: "<h1>Welcome</h1>", variant: "default" } } });
  });

  it("answers with the defaults within the deadline when D1 hangs", async () => {
    await decide({ writeKey: site.writeKey, slots: [hero], anonymousId: "warm-the-cache" });
    const started = Date.now();
    const res = await callWith(brokenDb("hang"), [hero]);
    expect(Date.now() - started).toBeLessThan(1_000);
    expect(((await res.json()) as { slots: Record<string, { variant: string }> }).slots[hero].variant).toBe("default");
  });

  it("answers 200 with no slots when the slot definitions cannot be loaded", async () => {
    const res = await callWith(brokenDb("throw"), [unique("never-cached")]);
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ slots: {} });
  });
});

describe("exposures", () => {
  it("queues a Personalization Viewed event per slot served to an identified visitor", async () => {
    const anonymousId = unique("anon");
    await seedProfile({ anonymousId, segments: [vip] });
    const { queue, sent } = recordingQueue();
    const ctx = createExecutionContext();
    const res = await personalizeApi.request(
      `/?writeKey=${site.writeKey}&slots=${hero}&anonymousId=${anonymousId}`,
      {},
      { ...env, EVENTS: queue },
      ctx,
    );
    expect(res.status).toBe(200);
    await waitOnExecutionContext(ctx);
    expect(sent).toHaveLength(1);
    const batch = sent[0] as QueuedBatch;
    expect(batch).toMatchObject({ v: 1, siteId: site.id });
    expect(batch.events).toHaveLength(1);
    expect(batch.events[0]).toMatchObject({
      type: "track",
      event: "Personalization Viewed",
      anonymousId,
      userId: null,
      properties: { slot: hero, variant: "vip-hero", holdout: false },
    });
  });

  it("gives repeated views in the same hour the same messageId, so the pipeline stores one", async () => {
    const { queue, sent } = recordingQueue();
    for (let i = 0; i < 2; i++) {
      const ctx = createExecutionContext();
      await personalizeApi.request(
        `/?writeKey=${site.writeKey}&slots=${hero}&anonymousId=repeat-viewer`,
        {},
        { ...env, EVENTS: queue },
        ctx,
      );
      await waitOnExecutionContext(ctx);
    }
    const [a, b] = sent as QueuedBatch[];
    expect(a.events[0].messageId).toBe(b.events[0].messageId);
  });

  it("still answers when the queue refuses the exposure", async () => {
    const ctx = createExecutionContext();
    const failing = { send: () => Promise.reject(new Error("queue down")) } as unknown as Queue<unknown>;
    const res = await personalizeApi.request(
      `/?writeKey=${site.writeKey}&slots=${hero}&anonymousId=someone`,
      {},
      { ...env, EVENTS: failing },
      ctx,
    );
    await waitOnExecutionContext(ctx);
    expect(res.status).toBe(200);
  });
});
