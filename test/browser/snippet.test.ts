/**
 * The tracking snippet in a real browser (Debian Chromium) against the real Worker (`wrangler dev`:
 * ingest, queue, pipeline, D1), with the customer's page on another origin: what a site owner who
 * pastes the tag relies on.
 */
import { readFileSync } from "node:fs";
import type { Browser, BrowserContext, Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { adminApi, eventually, launchBrowser, publishPage, tessera, watchErrors } from "./harness";

const run = Date.now().toString(36);

type Profile = { id: string; segments: string[]; identities: { type: string; value: string }[] };
type StoredEvent = {
  messageId: string;
  type: string;
  event: string | null;
  userId: string | null;
  anonymousId: string | null;
  properties: Record<string, unknown>;
  context: Record<string, unknown>;
};

/** What the page sees of the snippet (its own types live in snippet/, outside this program). */
declare global {
  interface Window {
    tessera?: {
      track(event: string, properties?: Record<string, unknown>): void;
      identify(userId?: string, traits?: Record<string, unknown>): void;
      consent(choice: { analytics: boolean }): void;
    };
  }
}

let browser: Browser;
let writeKey: string;
const open: BrowserContext[] = [];

// The optional inline stub, as a site owner pastes it (stub.js without its comment lines).
const stub = readFileSync(new URL("../../snippet/stub.js", import.meta.url), "utf8")
  .split("\n")
  .filter((line) => !line.startsWith("//"))
  .join("\n");

/** A customer page loading the snippet from the Worker; `head` goes before the tag. */
function html({ title, head = "", body = "" }: { title: string; head?: string; body?: string }) {
  return `<!doctype html><html><head><title>${title}</title>${head}
<script async src="${tessera().baseUrl}/s.js" data-key="${writeKey}"></script></head>
<body>${body}<a id="away" href="/plain">away</a></body></html>`;
}

/** A fresh browser profile (no cookies, no storage) with its page, page errors and /v1 requests. */
async function visitor(init?: () => void) {
  const context = await browser.newContext();
  open.push(context);
  if (init) await context.addInitScript(init);
  const page = await context.newPage();
  const errors = watchErrors(page);
  return { context, page, errors };
}

async function api<T>(path: string): Promise<T | null> {
  const res = await fetch(`${tessera().baseUrl}${path}`, {
    headers: { Authorization: `Bearer ${tessera().adminToken}` },
  });
  return res.ok ? ((await res.json()) as T) : null;
}

/** The profile holding an identifier, once the pipeline has stored it. */
const profileOf = (type: "anonymous_id" | "user_id", value: string) =>
  eventually(() => api<Profile>(`/api/profiles/lookup?type=${type}&value=${encodeURIComponent(value)}`), 20_000);

async function eventsOf(profileId: string): Promise<StoredEvent[]> {
  return (await api<{ items: StoredEvent[] }>(`/api/profiles/${profileId}/events?limit=200`))?.items ?? [];
}

/** Waits until the profile of anonymous id `aid` has an event matching `match`; returns them all. */
async function eventually_(aid: string, match: (e: StoredEvent) => boolean): Promise<StoredEvent[]> {
  return eventually(async () => {
    const profile = await api<Profile>(`/api/profiles/lookup?type=anonymous_id&value=${encodeURIComponent(aid)}`);
    if (!profile) return null;
    const events = await eventsOf(profile.id);
    return events.some(match) ? events : null;
  }, 20_000);
}

/** The anonymous id the snippet keeps, once it has started. */
const anonymousIdOf = (page: Page) =>
  eventually(() => page.evaluate(() => localStorage.getItem("tsr_aid")), 5_000) as Promise<string>;

const pageViews = (events: StoredEvent[]) => events.filter((e) => e.type === "page");

beforeAll(async () => {
  browser = await launchBrowser();
  const { siteOrigin } = tessera();
  ({ writeKey } = await adminApi<{ writeKey: string }>("/api/sites", {
    body: { name: `Snippet shop ${run}`, allowedOrigins: [siteOrigin] },
  }));
  await publishPage("/plain", "<!doctype html><title>Plain</title><p>no snippet here</p>");
});

afterAll(async () => {
  await Promise.all(open.map((c) => c.close()));
  await browser?.close();
});

describe("page views", () => {
  it("records the landing page with its path, title and UTM campaign", async () => {
    const url = await publishPage(`/landing-${run}`, html({ title: "Spring landing" }));
    const { page, errors } = await visitor();
    await page.goto(`${url}?utm_source=newsletter&utm_campaign=spring-${run}`);
    const aid = await anonymousIdOf(page);

    const events = await eventually_(aid, (e) => e.type === "page");
    const [view] = pageViews(events);
    expect(view.properties).toMatchObject({ path: `/landing-${run}`, title: "Spring landing" });
    expect(view.context.campaign).toEqual({ source: "newsletter", name: `spring-${run}` });
    expect(view.context).toMatchObject({ library: { name: "tessera.js" }, locale: expect.any(String) });
    expect(errors).toEqual([]);
  });

  it("counts a router's pushState and replaceState of one URL as one more page view", async () => {
    const url = await publishPage(`/app-${run}`, html({ title: "App" }));
    const { page, errors } = await visitor();
    await page.goto(url);
    const aid = await anonymousIdOf(page);
    await eventually_(aid, (e) => e.type === "page");

    await page.evaluate(() => {
      history.pushState({}, "", "/app/cart");
      document.title = "Cart";
      history.replaceState({ restored: true }, "", "/app/cart");
    });
    await eventually_(aid, (e) => e.type === "page" && e.properties.path === "/app/cart");
    // A marker tracked after the view was stored: anything the navigation queued came before it.
    await page.evaluate(() => window.tessera?.track("After navigation"));
    const events = await eventually_(aid, (e) => e.event === "After navigation");

    const views = pageViews(events);
    expect(views.map((v) => v.properties.path).sort()).toEqual([`/app-${run}`, "/app/cart"]);
    expect(views.find((v) => v.properties.path === "/app/cart")?.properties.title).toBe("Cart");
    expect(errors).toEqual([]);
  });
});

describe("identity", () => {
  it("joins the visitor to the user id given to identify", async () => {
    const url = await publishPage(`/signup-${run}`, html({ title: "Sign up" }));
    const { page, errors } = await visitor();
    await page.goto(url);
    const aid = await anonymousIdOf(page);
    await page.evaluate((id) => window.tessera?.identify(id, { plan: "pro" }), `ada-${run}`);

    const byUser = await profileOf("user_id", `ada-${run}`);
    const byAnonymousId = await profileOf("anonymous_id", aid);
    expect(byUser.id).toBe(byAnonymousId.id);
    expect(errors).toEqual([]);
  });

  it("keeps the anonymous id across reloads in a first-party cookie, which wins over localStorage", async () => {
    const url = await publishPage(`/return-${run}`, html({ title: "Return" }));
    const { context, page, errors } = await visitor();
    await page.goto(url);
    const aid = await anonymousIdOf(page);
    const cookie = (await context.cookies()).find((c) => c.name === "tsr_aid");
    expect(cookie?.value).toBe(aid);
    expect(cookie?.sameSite).toBe("Lax");
    expect(cookie?.expires).toBeGreaterThan(Date.now() / 1000 + 360 * 86_400);

    await page.evaluate(() => localStorage.setItem("tsr_aid", "tampered"));
    await page.reload();
    await eventually(() => page.evaluate((a) => localStorage.getItem("tsr_aid") === a, aid), 5_000);

    const profile = await profileOf("anonymous_id", aid);
    const events = await eventually(async () => {
      const list = await eventsOf(profile.id);
      return pageViews(list).length === 2 ? list : null;
    }, 20_000);
    expect(events.map((e) => e.anonymousId)).toEqual([aid, aid]);
    expect(errors).toEqual([]);
  });

  it("replays calls queued by the inline stub before the script loaded", async () => {
    const early = `<script>${stub}</script><script>
      tessera.identify("grace-${run}", { plan: "team" });
      tessera.track("Clicked before load", { early: true });
    </script>`;
    const url = await publishPage(`/stub-${run}`, html({ title: "Stub", head: early }));
    const { page, errors } = await visitor();
    await page.goto(url);

    const profile = await profileOf("user_id", `grace-${run}`);
    const events = await eventually(async () => {
      const list = await eventsOf(profile.id);
      return list.some((e) => e.event === "Clicked before load") && pageViews(list).length ? list : null;
    }, 20_000);
    expect(events.find((e) => e.event === "Clicked before load")?.properties).toEqual({ early: true });
    // Replayed before the first page view, which therefore already carries the user id.
    expect(pageViews(events)[0].userId).toBe(`grace-${run}`);
    expect(errors).toEqual([]);
  });
});

describe("delivery", () => {
  it("delivers an event tracked right before the visitor navigates away", async () => {
    const url = await publishPage(`/leave-${run}`, html({ title: "Leave" }));
    const { page, errors } = await visitor();
    await page.goto(url);
    const aid = await anonymousIdOf(page);
    // /plain has no snippet: the event can only arrive by the beacon sent while leaving.
    await page.evaluate(() => {
      window.tessera?.track("Left the page");
      document.getElementById("away")?.click();
    });
    await page.waitForURL(/\/plain$/);

    const events = await eventually_(aid, (e) => e.event === "Left the page");
    expect(events.filter((e) => e.event === "Left the page")).toHaveLength(1);
    expect(errors).toEqual([]);
  });

  it("sends what was tracked offline once back online, keeping its messageId, stored once", async () => {
    const url = await publishPage(`/offline-${run}`, html({ title: "Offline" }));
    const { context, page, errors } = await visitor();
    await page.goto(url);
    const aid = await anonymousIdOf(page);
    await eventually_(aid, (e) => e.type === "page");

    await context.setOffline(true);
    await page.evaluate(() => window.tessera?.track("Tracked offline"));
    // Kept in localStorage until the server has answered.
    const messageId = await eventually(
      () =>
        page.evaluate(() => {
          const queued = JSON.parse(localStorage.getItem("tsr_q") || "[]") as { event?: string; messageId: string }[];
          return queued.find((m) => m.event === "Tracked offline")?.messageId;
        }),
      5_000,
    );
    await context.setOffline(false);
    await page.reload();

    const events = await eventually_(aid, (e) => e.messageId === messageId);
    expect(events.filter((e) => e.event === "Tracked offline")).toHaveLength(1);
    expect(errors).toEqual([]);
  });
});

describe("privacy", () => {
  it("sends nothing and stores nothing while Global Privacy Control is on", async () => {
    const url = await publishPage(`/gpc-${run}`, html({ title: "GPC" }));
    const { context, page, errors } = await visitor(() => {
      Object.defineProperty(Navigator.prototype, "globalPrivacyControl", { get: () => true });
      // Every request the page makes by fetch or beacon, to see that none goes to Tessera.
      const sent: string[] = [];
      Object.assign(window, { sent });
      const { fetch, sendBeacon } = window;
      window.fetch = (input, init) => {
        sent.push(String(input instanceof Request ? input.url : input));
        return fetch(input, init);
      };
      navigator.sendBeacon = (target, data) => {
        sent.push(String(target));
        return sendBeacon.call(navigator, target, data);
      };
    });
    const v1 = new Set<string>();
    context.on("request", (r) => {
      if (r.url().startsWith(`${tessera().baseUrl}/v1/`)) v1.add(r.url());
    });
    await page.goto(url);
    await page.waitForFunction(() => window.tessera && !("q" in window.tessera));
    await page.evaluate(() => {
      window.tessera?.consent({ analytics: true });
      window.tessera?.identify("gpc-user", { email: "gpc@example.com" });
      window.tessera?.track("Should not leave the browser");
      // What the page does when left: flush anything queued, by beacon. There must be nothing.
      dispatchEvent(new PageTransitionEvent("pagehide"));
    });

    expect(await page.evaluate(() => (window as unknown as { sent: string[] }).sent)).toEqual([]);
    expect([...v1]).toEqual([]);
    expect(await page.evaluate(() => Object.keys(localStorage))).toEqual([]);
    expect(await context.cookies()).toEqual([]);
    expect(errors).toEqual([]);
  });
});

describe("personalization", () => {
  it("fills a slot with the content of the visitor's segment and lifts the anti-flicker class", async () => {
    const plan = `vip-${run}`;
    await adminApi("/api/segments", {
      body: { key: `vip-${run}`, name: `VIP ${run}`, rule: { trait: "plan", op: "eq", value: plan } },
    });
    await adminApi(`/api/slots/hero-${run}`, {
      method: "PUT",
      body: { default: "Welcome", rules: [{ segment: `vip-${run}`, content: "<b>Welcome back, VIP</b>" }] },
    });
    const url = await publishPage(
      `/hero-${run}`,
      html({
        title: "Hero",
        head: "<style>.tessera-loading [data-tessera-slot]{visibility:hidden}</style>",
        body: `<div id="hero" data-tessera-slot="hero-${run}">Default hero</div>`,
      }).replace("<html>", '<html class="tessera-loading">'),
    );
    const { page, errors } = await visitor();
    await page.goto(url);
    // Not in the segment yet: the slot's default, and the page shown.
    await eventually(() => page.evaluate(() => document.getElementById("hero")?.innerHTML === "Welcome"), 5_000);
    expect(await page.evaluate(() => document.querySelectorAll(".tessera-loading").length)).toBe(0);

    await page.evaluate((p) => window.tessera?.identify(`vip-user-${p}`, { plan: p }), plan);
    const profile = await profileOf("user_id", `vip-user-${plan}`);
    await eventually(async () => (await api<Profile>(`/api/profiles/${profile.id}`))?.segments.includes(`vip-${run}`));
    await page.reload();

    await eventually(
      () => page.evaluate(() => document.getElementById("hero")?.innerHTML === "<b>Welcome back, VIP</b>"),
      5_000,
    );
    expect(await page.evaluate(() => document.documentElement.className)).toBe("");
    expect(errors).toEqual([]);
  });

  it("serves /s.js and /s/slots.js as cacheable scripts with an ETag", async () => {
    for (const path of ["/s.js", "/s/slots.js"]) {
      const res = await fetch(`${tessera().baseUrl}${path}`);
      expect(res.status).toBe(200);
      expect(res.headers.get("content-type")).toMatch(/^text\/javascript/);
      const etag = res.headers.get("etag") as string;
      expect(etag).toMatch(/^".+"$/);
      const again = await fetch(`${tessera().baseUrl}${path}`, { headers: { "If-None-Match": etag } });
      expect(again.status).toBe(304);
    }
  });
});
