import { createExecutionContext, env, SELF, waitOnExecutionContext } from "cloudflare:test";
import { beforeAll, describe, expect, it } from "vitest";
import { proxyApp } from "../../worker/personalize";
import type { QueuedBatch } from "../../worker/wire/queue";
import { BASE, makeSite } from "../helpers/api";
import { brokenDb, putSlot, recordingQueue, seedProfile, seedSegment, unique } from "./seed";

const vip = unique("vip");
const hero = unique("hero");
const promo = unique("promo");
let siteId: string;

beforeAll(async () => {
  await seedSegment(vip);
  await putSlot(hero, {
    default: "<b>Welcome</b>",
    rules: [{ id: "vip-hero", segment: vip, content: "<b>Hello VIP</b>" }],
  });
  await putSlot(promo, { default: { offer: 'Save "10%" <now>', code: "A&B" } });
  siteId = (await makeSite({ name: "Proxied", originUrl: "https://origin.example/shop" })).id;
});

interface OriginCall {
  url: string;
  init: RequestInit | undefined;
}

/** A proxy whose origin is `respond`, recording each origin request. */
function proxyTo(respond: (url: string, init?: RequestInit) => Response | Promise<Response>) {
  const calls: OriginCall[] = [];
  const app = proxyApp({
    fetchOrigin: async (input, init) => {
      calls.push({ url: String(input), init });
      return respond(String(input), init);
    },
  });
  const { queue, sent } = recordingQueue();
  const request = async (path: string, init: RequestInit = {}) => {
    const ctx = createExecutionContext();
    const res = await app.request(`https://tessera.test/${siteId}${path}`, init, { ...env, EVENTS: queue }, ctx);
    // Read the body before waiting: exposures are sent when the document has streamed through.
    const body = new Uint8Array(await res.arrayBuffer());
    await waitOnExecutionContext(ctx);
    return { res, body, text: new TextDecoder().decode(body) };
  };
  return { request, calls, sent };
}

const html = (body: string, headers: Record<string, string> = {}) =>
  new Response(`<!doctype html><html><body>${body}</body></html>`, {
    headers: { "Content-Type": "text/html; charset=utf-8", ...headers },
  });

describe("the rewriting proxy", () => {
  it("fills a slot element with the visitor's variant", async () => {
    const aid = unique("aid");
    await seedProfile({ anonymousId: aid, segments: [vip] });
    const { request } = proxyTo(() => html(`<div data-tessera-slot="${hero}">static</div>`));
    const { text } = await request("/", { headers: { Cookie: `tsr_aid=${aid}` } });
    expect(text).toContain(`<div data-tessera-slot="${hero}" data-tessera-variant="vip-hero"><b>Hello VIP</b></div>`);
    expect(text).not.toContain("static");
  });

  it("fills a new visitor's slots with the default", async () => {
    const { request } = proxyTo(() => html(`<p data-tessera-slot="${hero}">static</p>`));
    const { text } = await request("/");
    expect(text).toContain("<b>Welcome</b>");
  });

  it("puts JSON content, escaped, in a data-tessera-content attribute", async () => {
    const { request } = proxyTo(() => html(`<div data-tessera-slot="${promo}">keep</div>`));
    const { text } = await request("/");
    const match = text.match(/data-tessera-content="([^"]*)"/);
    expect(match).not.toBeNull();
    const decoded = match![1].replace(/&quot;/g, '"').replace(/&amp;/g, "&");
    expect(JSON.parse(decoded)).toEqual({ offer: 'Save "10%" <now>', code: "A&B" });
    expect(text).toContain(">keep</div>");
  });

  it("leaves elements naming unknown slots as the origin sent them", async () => {
    const { request } = proxyTo(() => html(`<div data-tessera-slot="no-such-slot">origin copy</div>`));
    const { text } = await request("/");
    expect(text).toContain(`<div data-tessera-slot="no-such-slot">origin copy</div>`);
  });

  it("sets the anonymous-id cookie for a new visitor", async () => {
    const { request } = proxyTo(() => html("<p>hi</p>"));
    const { res } = await request("/");
    expect(res.headers.get("set-cookie")).toMatch(
      /^tsr_aid=[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}; Path=\/; Max-Age=31536000; SameSite=Lax; Secure$/,
    );
  });

  it("reuses a returning visitor's cookie instead of setting a new one", async () => {
    const { request, sent } = proxyTo(() => html(`<div data-tessera-slot="${hero}"></div>`));
    const { res } = await request("/", { headers: { Cookie: "other=1; tsr_aid=returning-visitor-1" } });
    expect(res.headers.get("set-cookie")).toBeNull();
    expect((sent[0] as QueuedBatch).events[0].anonymousId).toBe("returning-visitor-1");
  });

  it("records an exposure for each slot it filled", async () => {
    const aid = unique("aid");
    await seedProfile({ anonymousId: aid, segments: [vip] });
    const { request, sent } = proxyTo(() =>
      html(`<div data-tessera-slot="${hero}"></div><div data-tessera-slot="${hero}"></div>`),
    );
    await request("/", { headers: { Cookie: `tsr_aid=${aid}` } });
    expect(sent).toHaveLength(1);
    const batch = sent[0] as QueuedBatch;
    expect(batch.siteId).toBe(siteId);
    expect(batch.events.map((e) => e.properties)).toEqual([{ slot: hero, variant: "vip-hero", holdout: false }]);
  });

  it("marks the rewritten page private and drops validators that no longer match", async () => {
    const { request } = proxyTo(() =>
      html(`<div data-tessera-slot="${hero}"></div>`, {
        "Cache-Control": "public, max-age=3600",
        ETag: '"abc"',
        "Content-Length": "80",
      }),
    );
    const { res } = await request("/");
    expect(res.headers.get("cache-control")).toBe("private, no-store");
    expect(res.headers.get("etag")).toBeNull();
  });

  it("streams a large HTML body through intact, in many chunks", async () => {
    const filler = "<p>".concat("x".repeat(1_000), "</p>\n");
    const before = filler.repeat(1_000);
    const after = filler.repeat(1_000);
    const page = `<!doctype html><html><body>${before}<div data-tessera-slot="${hero}">old</div>${after}</body></html>`;
    const bytes = new TextEncoder().encode(page);
    const { request } = proxyTo(
      () =>
        new Response(
          new ReadableStream({
            start(controller) {
              for (let i = 0; i < bytes.length; i += 4_096) controller.enqueue(bytes.slice(i, i + 4_096));
              controller.close();
            },
          }),
          { headers: { "Content-Type": "text/html" } },
        ),
    );
    const { text } = await request("/");
    expect(text).toBe(
      page.replace(
        `data-tessera-slot="${hero}">old`,
        `data-tessera-slot="${hero}" data-tessera-variant="default"><b>Welcome</b>`,
      ),
    );
  });

  it("sends the first bytes before the origin has finished", async () => {
    let finish!: () => void;
    const app = proxyApp({
      fetchOrigin: async () =>
        new Response(
          new ReadableStream({
            async start(controller) {
              controller.enqueue(new TextEncoder().encode(`<html><body><h1>${"head ".repeat(2_000)}</h1>`));
              await new Promise<void>((resolve) => {
                finish = resolve;
              });
              controller.enqueue(new TextEncoder().encode("<p>tail</p></body></html>"));
              controller.close();
            },
          }),
          { headers: { "Content-Type": "text/html" } },
        ),
    });
    const ctx = createExecutionContext();
    const res = await app.request(`https://tessera.test/${siteId}/`, {}, env, ctx);
    const reader = res.body!.getReader();
    const first = await reader.read();
    expect(new TextDecoder().decode(first.value)).toContain("<h1>head");
    finish();
    let rest = "";
    for (let r = await reader.read(); !r.done; r = await reader.read()) rest += new TextDecoder().decode(r.value);
    expect(rest).toContain("<p>tail</p>");
    await waitOnExecutionContext(ctx);
  });

  it("passes non-HTML responses through byte for byte, headers included", async () => {
    const png = new Uint8Array(4_096).map((_, i) => (i * 7 + 3) % 256);
    const { request } = proxyTo(
      () =>
        new Response(png, {
          headers: {
            "Content-Type": "image/png",
            "Cache-Control": "public, max-age=60",
            ETag: '"img"',
            "X-Origin": "1",
          },
        }),
    );
    const { res, body } = await request("/logo.png");
    expect(body).toEqual(png);
    expect(res.headers.get("content-type")).toBe("image/png");
    expect(res.headers.get("cache-control")).toBe("public, max-age=60");
    expect(res.headers.get("etag")).toBe('"img"');
    expect(res.headers.get("x-origin")).toBe("1");
    expect(res.headers.get("set-cookie")).toBeNull();
  });

  it("strips hop-by-hop headers from the origin's response", async () => {
    const { request } = proxyTo(
      () =>
        new Response("{}", {
          headers: {
            "Content-Type": "application/json",
            Connection: "x-private",
            "Keep-Alive": "timeout=5",
            "X-Private": "1",
          },
        }),
    );
    const { res } = await request("/api");
    expect(res.headers.get("keep-alive")).toBeNull();
    expect(res.headers.get("x-private")).toBeNull();
    expect(res.headers.get("content-type")).toBe("application/json");
  });

  it("asks the origin for the same path and query under its base path", async () => {
    const { request, calls } = proxyTo(() => html(""));
    await request("/products/42?color=red");
    expect(calls[0].url).toBe("https://origin.example/shop/products/42?color=red");
  });

  it("cannot be pointed at another host through the path", async () => {
    const { request, calls } = proxyTo(() => html(""));
    await request("//evil.example/x");
    expect(new URL(calls[0].url).host).toBe("origin.example");
  });

  it("never forwards the dashboard session cookie to the origin", async () => {
    const { request, calls } = proxyTo(() => html(""));
    await request("/", { headers: { Cookie: "tessera_session=secret-session; tsr_aid=v1; pref=dark" } });
    const forwarded = new Headers(calls[0].init?.headers).get("cookie");
    expect(forwarded).toBe("tsr_aid=v1; pref=dark");
  });

  it("passes redirects through without following them, mapping the origin's own under the proxy", async () => {
    const { request, calls } = proxyTo(
      (url) =>
        new Response(null, {
          status: 302,
          headers: { Location: url.endsWith("/away") ? "https://elsewhere.example/x" : "/shop/cart?x=1" },
        }),
    );
    const own = await request("/checkout");
    expect(calls[0].init?.redirect).toBe("manual");
    expect(own.res.status).toBe(302);
    expect(own.res.headers.get("location")).toBe(`/${siteId}/cart?x=1`);
    const away = await request("/away");
    expect(away.res.headers.get("location")).toBe("https://elsewhere.example/x");
  });

  it("passes other methods through with their body, unpersonalized", async () => {
    const { request, calls } = proxyTo(
      async (_url, init) => new Response(`got ${await new Response(init?.body).text()}`),
    );
    const { text } = await request("/form", { method: "POST", body: "a=1" });
    expect(calls[0].init?.method).toBe("POST");
    expect(text).toBe("got a=1");
  });

  it("fills the defaults and records no exposure when the visitor lookup fails", async () => {
    const aid = unique("aid");
    await seedProfile({ anonymousId: aid, segments: [vip] });
    // Only the visitor's query fails; the site and slot definitions still load.
    const db = new Proxy(env.DB, {
      get(target, prop) {
        if (prop === "prepare") {
          return (sql: string) => (sql.includes("WITH visitor") ? brokenDb().prepare(sql) : target.prepare(sql));
        }
        return Reflect.get(target, prop, target);
      },
    });
    const app = proxyApp({ fetchOrigin: async () => html(`<div data-tessera-slot="${hero}">static</div>`) });
    const { queue, sent } = recordingQueue();
    const ctx = createExecutionContext();
    const res = await app.request(
      `https://tessera.test/${siteId}/`,
      { headers: { Cookie: `tsr_aid=${aid}` } },
      { ...env, DB: db, EVENTS: queue },
      ctx,
    );
    const text = await res.text();
    await waitOnExecutionContext(ctx);
    expect(res.status).toBe(200);
    expect(text).toContain("<b>Welcome</b>");
    expect(sent).toEqual([]);
  });

  it("answers 503 when the origin cannot be reached", async () => {
    const { request } = proxyTo(() => {
      throw new TypeError("connection refused");
    });
    const { res } = await request("/");
    expect(res.status).toBe(503);
  });
});

describe("/p/:siteId on the Worker", () => {
  it("answers 404 for a site without an originUrl", async () => {
    const site = await makeSite({ name: "No origin" });
    const res = await SELF.fetch(`${BASE}/p/${site.id}/`);
    expect(res.status).toBe(404);
    expect(((await res.json()) as { error: { code: string } }).error.code).toBe("not_found");
  });

  it("answers 404 for an unknown site", async () => {
    expect((await SELF.fetch(`${BASE}/p/site_unknown/index.html`)).status).toBe(404);
  });
});
