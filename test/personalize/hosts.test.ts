/**
 * The proxy on a site's own hostname (production) and the isolation it exists for: nothing of
 * Tessera is served on a proxied host, and the path form `/p/:siteId/*` is off unless
 * ALLOW_PATH_PROXY is "true".
 */
import { createExecutionContext, env, SELF, waitOnExecutionContext } from "cloudflare:test";
import { afterEach, beforeAll, beforeEach, describe, expect, it, vi } from "vitest";
import { app } from "../../worker";
import { HostCache } from "../../worker/personalize";
import { siteSchema } from "../../worker/sites";
import { ADMIN_TOKEN, api, BASE } from "../helpers/api";
import { brokenDb, putSlot, seedProfile, seedSegment, unique } from "./seed";

const vip = unique("vip");
const hero = unique("hero");
const ORIGIN = "https://origin.shop.example";

/** A hostname no other test (nor an earlier run against the same database) has used. */
const newHost = () => `${unique("www").toLowerCase()}.shop.example`;

async function createSite(body: Record<string, unknown>) {
  return api("/api/sites", { body: { name: "Shop", ...body } });
}

async function proxiedSite(host = newHost()) {
  const res = await createSite({ originUrl: ORIGIN, proxyHost: host });
  expect(res.status).toBe(201);
  return { ...siteSchema.parse(await res.json()), host };
}

interface OriginCall {
  url: string;
  headers: Headers;
}

let originCalls: OriginCall[];
let respond: (url: string) => Response;

// The Worker's outbound fetch is the origin: every test here answers it in-process.
beforeEach(() => {
  originCalls = [];
  respond = () =>
    new Response(`<!doctype html><html><body><div data-tessera-slot="${hero}">static</div></body></html>`, {
      headers: { "Content-Type": "text/html; charset=utf-8" },
    });
  vi.spyOn(globalThis, "fetch").mockImplementation(async (input, init) => {
    const request = new Request(input, init);
    originCalls.push({ url: request.url, headers: request.headers });
    return respond(request.url);
  });
});

afterEach(() => {
  vi.restoreAllMocks();
});

beforeAll(async () => {
  await seedSegment(vip);
  await putSlot(hero, { default: "<b>Welcome</b>", rules: [{ id: "vip-hero", segment: vip, content: "<b>VIP</b>" }] });
});

describe("a site's proxy host", () => {
  it("fills the slots of a page requested on the site's proxy host", async () => {
    const { host } = await proxiedSite();
    const aid = unique("aid");
    await seedProfile({ anonymousId: aid, segments: [vip] });
    const res = await SELF.fetch(`https://${host}/products/42?color=red`, { headers: { Cookie: `tsr_aid=${aid}` } });
    expect(res.status).toBe(200);
    expect(await res.text()).toContain(`data-tessera-variant="vip-hero"><b>VIP</b></div>`);
    expect(originCalls.map((c) => c.url)).toEqual([`${ORIGIN}/products/42?color=red`]);
  });

  it("gives a new visitor the anonymous-id cookie on the proxy host itself", async () => {
    const { host } = await proxiedSite();
    const res = await SELF.fetch(`https://${host}/`);
    expect(res.headers.get("set-cookie")).toMatch(
      /^tsr_aid=[0-9a-f-]{36}; Path=\/; Max-Age=31536000; SameSite=Lax; Secure$/,
    );
  });

  it("proxies /api paths to the origin instead of answering them, even with the admin token", async () => {
    const { host } = await proxiedSite();
    respond = () => new Response('{"from":"origin"}', { headers: { "Content-Type": "application/json" } });
    const res = await SELF.fetch(`https://${host}/api/auth/me`, {
      headers: { Authorization: `Bearer ${ADMIN_TOKEN}` },
    });
    expect(await res.json()).toEqual({ from: "origin" });
    expect(originCalls.map((c) => c.url)).toEqual([`${ORIGIN}/api/auth/me`]);
  });

  it("proxies /dashboard to the origin rather than serving Tessera's dashboard", async () => {
    const { host } = await proxiedSite();
    const res = await SELF.fetch(`https://${host}/dashboard`);
    expect(originCalls.map((c) => c.url)).toEqual([`${ORIGIN}/dashboard`]);
    expect(res.headers.get("content-security-policy")).toBeNull();
    expect(await res.text()).not.toContain("Tessera");
  });

  it("proxies /s.js and /v1 paths to the origin too, so none of the origin's paths is shadowed", async () => {
    const { host } = await proxiedSite();
    respond = (url) => new Response(`origin ${new URL(url).pathname}`, { headers: { "Content-Type": "text/plain" } });
    expect(await (await SELF.fetch(`https://${host}/s.js`)).text()).toBe("origin /s.js");
    const post = await SELF.fetch(`https://${host}/v1/batch`, { method: "POST", body: "{}" });
    expect(await post.text()).toBe("origin /v1/batch");
  });

  it("recognises the proxy host whatever the case of the Host header", async () => {
    const { host } = await proxiedSite();
    await SELF.fetch(`https://${host.toUpperCase()}/about`);
    expect(originCalls.map((c) => c.url)).toEqual([`${ORIGIN}/about`]);
  });

  it("never forwards an Authorization header to the origin", async () => {
    const { host } = await proxiedSite();
    await SELF.fetch(`https://${host}/account`, {
      headers: { Authorization: "Basic dXNlcjpwYXNz", Accept: "text/html" },
    });
    expect(originCalls[0].headers.get("authorization")).toBeNull();
    expect(originCalls[0].headers.get("accept")).toBe("text/html");
  });

  it("drops a tessera_session cookie the origin tries to set, keeping its other cookies", async () => {
    const { host } = await proxiedSite();
    respond = () => {
      const headers = new Headers({ "Content-Type": "application/json" });
      headers.append("Set-Cookie", "tessera_session=planted; Path=/");
      headers.append("Set-Cookie", "cart=3; Path=/");
      return new Response("{}", { headers });
    };
    const res = await SELF.fetch(`https://${host}/cart.json`);
    expect(res.headers.getAll("set-cookie")).toEqual(["cart=3; Path=/"]);
  });

  it("keeps the origin's own redirects on the proxy host", async () => {
    const { host } = await proxiedSite();
    respond = () => new Response(null, { status: 302, headers: { Location: `${ORIGIN}/cart?step=2` } });
    const res = await SELF.fetch(`https://${host}/checkout`, { redirect: "manual" });
    expect(res.status).toBe(302);
    expect(res.headers.get("location")).toBe("/cart?step=2");
  });

  it("takes effect at once when an existing site gets a proxy host", async () => {
    const host = newHost();
    // Seen first as an ordinary hostname: Tessera answers, and the isolate remembers "not proxied".
    expect((await SELF.fetch(`https://${host}/healthz`)).status).toBe(200);
    const site = await proxiedSite(newHost());
    const res = await api(`/api/sites/${site.id}`, { method: "PATCH", body: { proxyHost: host } });
    expect(res.status).toBe(200);
    await SELF.fetch(`https://${host}/healthz`);
    expect(originCalls.map((c) => c.url)).toEqual([`${ORIGIN}/healthz`]);
  });

  it("leaves every other hostname to Tessera's own routes without calling any origin", async () => {
    await proxiedSite();
    const res = await api("/api/sites");
    expect(res.status).toBe(200);
    expect((await SELF.fetch(`${BASE}/healthz`)).status).toBe(200);
    expect(originCalls).toEqual([]);
  });

  it("answers 503 rather than Tessera's routes when an unseen hostname cannot be looked up", async () => {
    const ctx = createExecutionContext();
    const res = await app.fetch(
      new Request(`https://${newHost()}/api/sites`, { headers: { Authorization: `Bearer ${ADMIN_TOKEN}` } }),
      { ...env, DB: brokenDb() },
      ctx,
    );
    await waitOnExecutionContext(ctx);
    expect(res.status).toBe(503);
    expect(res.headers.get("retry-after")).toBe("5");
  });
});

describe("the path form /p/:siteId", () => {
  async function pathProxy(allow: string | undefined) {
    const site = await proxiedSite();
    const ctx = createExecutionContext();
    const res = await app.fetch(new Request(`${BASE}/p/${site.id}/`), { ...env, ALLOW_PATH_PROXY: allow }, ctx);
    await waitOnExecutionContext(ctx);
    return res;
  }

  it("answers 404 without calling the origin when ALLOW_PATH_PROXY is unset", async () => {
    const res = await pathProxy(undefined);
    expect(res.status).toBe(404);
    expect(((await res.json()) as { error: { code: string } }).error.code).toBe("not_found");
    expect(originCalls).toEqual([]);
  });

  it('answers 404 when ALLOW_PATH_PROXY is anything but "true"', async () => {
    expect((await pathProxy("false")).status).toBe(404);
    expect((await pathProxy("1")).status).toBe(404);
  });

  it('proxies when ALLOW_PATH_PROXY is "true"', async () => {
    const res = await pathProxy("true");
    expect(res.status).toBe(200);
    expect(originCalls.map((c) => c.url)).toEqual([`${ORIGIN}/`]);
  });
});

describe("proxyHost in the sites API", () => {
  it("stores a hostname lowercased and without its trailing dot", async () => {
    const host = newHost();
    const res = await createSite({ proxyHost: `${host.toUpperCase()}.` });
    expect(res.status).toBe(201);
    expect(siteSchema.parse(await res.json()).proxyHost).toBe(host);
  });

  it("lists a site without a proxy host as null", async () => {
    const res = await createSite({});
    expect(siteSchema.parse(await res.json()).proxyHost).toBeNull();
  });

  it.each([
    ["a scheme", "https://www.shop.example"],
    ["a port", "www.shop.example:8443"],
    ["a path", "www.shop.example/shop"],
    ["a single label", "localhost"],
    ["an IP address", "192.0.2.10"],
    ["a label starting with a hyphen", "-www.shop.example"],
    ["a label over 63 characters", `${"a".repeat(64)}.shop.example`],
    ["an underscore", "my_shop.example"],
    ["a wildcard", "*.shop.example"],
    ["over 253 characters", `${"abcdefghi.".repeat(26)}example`],
  ])("refuses a proxyHost with %s", async (_what, proxyHost) => {
    const res = await createSite({ proxyHost });
    expect(res.status).toBe(400);
    const body = (await res.json()) as { error: { code: string; details: { path: string }[] } };
    expect(body.error.code).toBe("validation_failed");
    expect(body.error.details.map((d) => d.path)).toContain("proxyHost");
  });

  it("refuses the hostname the API itself is served on", async () => {
    const res = await createSite({ proxyHost: new URL(BASE).hostname });
    expect(res.status).toBe(400);
  });

  it("answers 409 when another site already has the proxy host", async () => {
    const { host } = await proxiedSite();
    const res = await createSite({ proxyHost: host });
    expect(res.status).toBe(409);
    expect(((await res.json()) as { error: { code: string } }).error.code).toBe("conflict");
  });

  it("answers 409 when a site is updated to another site's proxy host", async () => {
    const { host } = await proxiedSite();
    const other = await proxiedSite();
    const res = await api(`/api/sites/${other.id}`, { method: "PATCH", body: { proxyHost: host } });
    expect(res.status).toBe(409);
  });

  it("lets a site keep its own proxy host when updated", async () => {
    const site = await proxiedSite();
    const res = await api(`/api/sites/${site.id}`, {
      method: "PATCH",
      body: { proxyHost: site.host, name: "Renamed" },
    });
    expect(res.status).toBe(200);
    expect(siteSchema.parse(await res.json()).proxyHost).toBe(site.host);
  });

  it("frees a proxy host for another site once its site clears it", async () => {
    const site = await proxiedSite();
    const cleared = await api(`/api/sites/${site.id}`, { method: "PATCH", body: { proxyHost: null } });
    expect(siteSchema.parse(await cleared.json()).proxyHost).toBeNull();
    expect((await createSite({ proxyHost: site.host })).status).toBe(201);
  });

  it("makes a cleared proxy host Tessera's again at once", async () => {
    const site = await proxiedSite();
    await SELF.fetch(`https://${site.host}/healthz`);
    await api(`/api/sites/${site.id}`, { method: "PATCH", body: { proxyHost: null } });
    const res = await SELF.fetch(`https://${site.host}/healthz`);
    expect(await res.json()).toEqual({ ok: true });
    expect(originCalls).toHaveLength(1);
  });
});

describe("HostCache", () => {
  const loader = (answers: Record<string, string | null>) => {
    const calls: string[] = [];
    const load = async (host: string) => {
      calls.push(host);
      return answers[host] ?? null;
    };
    return { calls, load };
  };

  it("reads a hostname once per TTL", async () => {
    const cache = new HostCache(30_000);
    const { calls, load } = loader({ "tessera.example": null });
    expect(await cache.get("tessera.example", 0, load)).toBeNull();
    expect(await cache.get("tessera.example", 29_999, load)).toBeNull();
    expect(calls).toEqual(["tessera.example"]);
  });

  it("reads the hostname again once the TTL has passed", async () => {
    const cache = new HostCache(30_000);
    const answers: Record<string, string | null> = { "www.shop.example": null };
    const { calls, load } = loader(answers);
    await cache.get("www.shop.example", 0, load);
    answers["www.shop.example"] = "site_1";
    expect(await cache.get("www.shop.example", 30_000, load)).toBe("site_1");
    expect(calls).toHaveLength(2);
  });

  it("answers from an expired entry when the lookup fails", async () => {
    const cache = new HostCache(30_000);
    await cache.get("www.shop.example", 0, async () => "site_1");
    const failing = async () => {
      throw new Error("D1 down");
    };
    expect(await cache.get("www.shop.example", 60_000, failing)).toBe("site_1");
  });

  it("fails when a hostname it never saw cannot be looked up", async () => {
    const cache = new HostCache(30_000);
    await expect(
      cache.get("new.example", 0, async () => {
        throw new Error("D1 down");
      }),
    ).rejects.toThrow("D1 down");
  });

  it("holds at most its bound, dropping the entry stored longest ago", async () => {
    const cache = new HostCache(30_000, 2);
    const { calls, load } = loader({});
    for (const host of ["a.example", "b.example", "c.example"]) await cache.get(host, 0, load);
    expect(cache.size).toBe(2);
    await cache.get("b.example", 1, load);
    await cache.get("c.example", 1, load);
    await cache.get("a.example", 1, load);
    expect(calls).toEqual(["a.example", "b.example", "c.example", "a.example"]);
  });

  it("reads a forgotten hostname again", async () => {
    const cache = new HostCache(30_000);
    const { calls, load } = loader({});
    await cache.get("www.shop.example", 0, load);
    cache.forget("www.shop.example", null);
    await cache.get("www.shop.example", 1, load);
    expect(calls).toHaveLength(2);
  });
});
