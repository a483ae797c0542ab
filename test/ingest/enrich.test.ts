import { env } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { userHashOf } from "../../worker/ingest/verify";
import type { Message } from "../../worker/wire/events";
import { api } from "../helpers/api";
import { basic, ingest, makeEvent, makeIngestSite, recordingQueue } from "./helpers";

const IPHONE_SAFARI =
  "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4 Mobile/15E148 Safari/604.1";
const WINDOWS_CHROME =
  "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36";
const GOOGLEBOT =
  "Mozilla/5.0 (Linux; Android 6.0.1; Nexus 5X Build/MMB29P) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.6367.91 Mobile Safari/537.36 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)";

/** One message from a browser page on the site's allowed origin. */
async function fromBrowser(
  message: Message,
  opts: { ua?: string; cf?: Record<string, unknown>; headers?: Record<string, string> } = {},
) {
  const site = await makeIngestSite();
  const q = recordingQueue();
  const res = await ingest("/v1/batch", {
    body: { batch: [message], writeKey: site.writeKey },
    headers: { Origin: "https://shop.example", "User-Agent": opts.ua ?? WINDOWS_CHROME, ...opts.headers },
    cf: opts.cf,
    env: { EVENTS: q.queue },
  });
  expect(res.status).toBe(200);
  return q.events()[0];
}

describe("enrichment from the request", () => {
  it("adds country, region, city and timezone from request.cf, and nothing else of cf", async () => {
    const event = await fromBrowser(makeEvent(), {
      cf: {
        country: "FR",
        region: "Île-de-France",
        city: "Paris",
        timezone: "Europe/Paris",
        latitude: "48.8",
        asn: 3215,
      },
    });
    expect(event.context.geo).toEqual({
      country: "FR",
      region: "Île-de-France",
      city: "Paris",
      timezone: "Europe/Paris",
    });
  });

  it("replaces a geo claimed by the client with the server's, and drops it without cf", async () => {
    const claimed = makeEvent({ context: { geo: { country: "XX" } } });
    expect((await fromBrowser(claimed, { cf: { country: "DE" } })).context.geo).toEqual({ country: "DE" });
    expect((await fromBrowser(claimed)).context.geo).toBeUndefined();
  });

  it("classifies the browser's user agent", async () => {
    const event = await fromBrowser(makeEvent(), { ua: IPHONE_SAFARI });
    expect(event.context.device).toEqual({ browser: "Safari", browserVersion: "17", os: "iOS", deviceType: "mobile" });
    expect(event.context.bot).toBe(false);
    expect(event.flags).not.toContain("bot");
  });

  it("classifies context.userAgent when a message carries one", async () => {
    const event = await fromBrowser(makeEvent({ context: { userAgent: IPHONE_SAFARI } }), { ua: WINDOWS_CHROME });
    expect(event.context.device).toMatchObject({ os: "iOS", deviceType: "mobile" });
  });

  it("flags a bot by its user agent, whatever the client claims", async () => {
    const event = await fromBrowser(makeEvent({ context: { bot: false } }), { ua: GOOGLEBOT });
    expect(event.context.bot).toBe(true);
    expect(event.flags).toContain("bot");
  });

  it("does not call a server integration a bot because of its HTTP library's user agent", async () => {
    const site = await makeIngestSite();
    const q = recordingQueue();
    await ingest("/v1/track", {
      body: makeEvent(),
      headers: { ...basic(site.writeKey), "User-Agent": "analytics-node-next/latest" },
      env: { EVENTS: q.queue },
    });
    const [event] = q.events();
    expect(event.context.bot).toBe(false);
    expect(event.context.device).toEqual({ browser: null, browserVersion: null, os: null, deviceType: null });
  });

  it("never keeps the client IP", async () => {
    const event = await fromBrowser(makeEvent({ context: { ip: "203.0.113.7", locale: "fr-FR" } }), {
      headers: { "CF-Connecting-IP": "203.0.113.7" },
    });
    expect(event.context).not.toHaveProperty("ip");
    expect(JSON.stringify(event)).not.toContain("203.0.113.7");
    expect(event.context.locale).toBe("fr-FR");
  });

  it("drops a context.gpc claimed by the client", async () => {
    const event = await fromBrowser(makeEvent({ context: { gpc: true } }));
    expect(event.context).not.toHaveProperty("gpc");
  });
});

describe("Sec-GPC: 1 (Global Privacy Control)", () => {
  async function gpcDropped(): Promise<number> {
    const row = await env.DB.prepare("SELECT value FROM metrics WHERE name = 'gpc_dropped' AND day = 0").first<{
      value: number;
    }>();
    return row?.value ?? 0;
  }

  async function rejectedRows(siteId: string): Promise<number> {
    const row = await env.DB.prepare("SELECT count(*) AS n FROM rejected_events WHERE site_id = ?")
      .bind(siteId)
      .first<{ n: number }>();
    return row?.n ?? 0;
  }

  it("answers a browser's batch with success but queues none of its events", async () => {
    const site = await makeIngestSite();
    const q = recordingQueue();
    const res = await ingest("/v1/batch", {
      body: { batch: [makeEvent(), makeEvent({ type: "identify", userId: "u-gpc" } as Partial<Message>)] },
      headers: { ...basic(site.writeKey), Origin: "https://shop.example", "Sec-GPC": "1" },
      env: { EVENTS: q.queue },
    });
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ success: true });
    expect(q.sent).toHaveLength(0);
  });

  it("counts the dropped events in gpc_dropped and in /api/stats", async () => {
    const site = await makeIngestSite();
    const before = await gpcDropped();
    await ingest("/v1/batch", {
      body: { batch: [makeEvent(), makeEvent(), makeEvent()] },
      headers: { ...basic(site.writeKey), "Sec-GPC": "1" },
      env: { EVENTS: recordingQueue().queue },
    });
    await ingest("/v1/t", {
      body: makeEvent(),
      headers: { ...basic(site.writeKey), "Sec-GPC": "1" },
      env: { EVENTS: recordingQueue().queue },
    });
    expect(await gpcDropped()).toBe(before + 4);
    const stats = (await (await api("/api/stats")).json()) as { gpcDropped: number };
    expect(stats.gpcDropped).toBe(before + 4);
  });

  it("does not store the invalid messages of a GPC request as rejected either", async () => {
    const site = await makeIngestSite();
    const res = await ingest("/v1/batch", {
      body: { batch: [makeEvent(), { type: "track", event: "No ids" }] },
      headers: { ...basic(site.writeKey), "Sec-GPC": "1" },
      env: { EVENTS: recordingQueue().queue },
    });
    expect(res.status).toBe(200);
    expect(await rejectedRows(site.id)).toBe(0);
  });

  it("still refuses an unknown write key, so nobody can inflate the count without one", async () => {
    const before = await gpcDropped();
    const res = await ingest("/v1/t", { body: makeEvent(), headers: { ...basic("wk_nobody"), "Sec-GPC": "1" } });
    expect(res.status).toBe(401);
    expect(await gpcDropped()).toBe(before);
  });

  it("queues the events of a request whose Sec-GPC is not 1", async () => {
    const site = await makeIngestSite();
    const q = recordingQueue();
    await ingest("/v1/t", {
      body: makeEvent(),
      headers: { ...basic(site.writeKey), "Sec-GPC": "0" },
      env: { EVENTS: q.queue },
    });
    expect(q.events()).toHaveLength(1);
  });
});

describe("identity verification", () => {
  async function identify(userHash: (secret: string) => Promise<string | undefined>, userId = "u-42") {
    const site = await makeIngestSite();
    const q = recordingQueue();
    const hash = await userHash(site.verificationSecret!);
    const res = await ingest("/v1/identify", {
      body: { userId, traits: { plan: "pro" }, context: hash === undefined ? {} : { userHash: hash } },
      headers: basic(site.writeKey),
      env: { EVENTS: q.queue },
    });
    expect(res.status).toBe(200);
    return q.events()[0];
  }

  it("marks a message verified when its userHash is the HMAC of its userId", async () => {
    const event = await identify((secret) => userHashOf(secret, "u-42"));
    expect(event.verified).toBe(true);
  });

  it("accepts the userHash in upper-case hex", async () => {
    const event = await identify(async (secret) => (await userHashOf(secret, "u-42")).toUpperCase());
    expect(event.verified).toBe(true);
  });

  it("does not verify a userHash made for another user id", async () => {
    const event = await identify((secret) => userHashOf(secret, "u-43"));
    expect(event.verified).toBe(false);
  });

  it("does not verify a userHash made with another secret", async () => {
    const event = await identify(() => userHashOf("ivs_not_the_secret", "u-42"));
    expect(event.verified).toBe(false);
  });

  it("does not verify a message without userHash", async () => {
    const event = await identify(async () => undefined);
    expect(event.verified).toBe(false);
  });

  it("never stores the userHash with the event", async () => {
    const event = await identify((secret) => userHashOf(secret, "u-42"));
    expect(event.context).not.toHaveProperty("userHash");
  });

  it("verifies every message of a server that sends the verification secret as the Basic password", async () => {
    const site = await makeIngestSite();
    const q = recordingQueue();
    const res = await ingest("/v1/batch", {
      body: { batch: [makeEvent({ userId: "u-1" }), { type: "identify", userId: "u-2" }] },
      headers: basic(site.writeKey, site.verificationSecret),
      env: { EVENTS: q.queue },
    });
    expect(res.status).toBe(200);
    expect(q.events().map((e) => e.verified)).toEqual([true, true]);
  });
});
