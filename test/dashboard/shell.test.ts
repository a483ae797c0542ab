import { SELF } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { BASE } from "../helpers/api";

const get = (path: string, headers: Record<string, string> = {}) => SELF.fetch(`${BASE}${path}`, { headers });

describe("the dashboard shell", () => {
  it("serves a sign-in form that posts to /api/auth/login without any script", async () => {
    const html = await (await get("/dashboard")).text();
    expect(html).toMatch(/<form method="post" action="\/api\/auth\/login">/);
    expect(html).toMatch(/<input[^>]*name="email"[^>]*type="email"/);
    expect(html).toMatch(/<input[^>]*name="password"[^>]*type="password"/);
    // A submit button is what makes Enter submit the form.
    expect(html).toMatch(/<button type="submit">/);
  });

  it("answers every deep link with the same shell so the client can route it", async () => {
    for (const path of [
      "/dashboard/contacts/prf_123",
      "/dashboard/segments/cart",
      "/dashboard/slots/hero",
      "/dashboard/debugger",
    ]) {
      const res = await get(path);
      expect(res.status).toBe(200);
      expect(res.headers.get("content-type")).toMatch(/^text\/html/);
      expect(await res.text()).toMatch(/<script defer(="")? src="\/dashboard\/app.js"><\/script>/);
    }
  });

  it("sends a strict Content-Security-Policy without unsafe-inline or unsafe-eval", async () => {
    const csp = (await get("/dashboard/contacts")).headers.get("content-security-policy") ?? "";
    expect(csp).toContain("script-src 'self'");
    expect(csp).toContain("style-src 'self'");
    expect(csp).toContain("frame-ancestors 'none'");
    expect(csp).toContain("object-src 'none'");
    expect(csp).not.toMatch(/unsafe-inline|unsafe-eval/);
  });

  it("sends the usual security headers", async () => {
    const res = await get("/dashboard");
    expect(res.headers.get("x-frame-options")).toBe("DENY");
    expect(res.headers.get("x-content-type-options")).toBe("nosniff");
    expect(res.headers.get("referrer-policy")).toBe("same-origin");
    expect(res.headers.get("cache-control")).toBe("no-store");
  });

  it("contains no inline script, style element or style attribute the CSP would block", async () => {
    const html = await (await get("/dashboard")).text();
    expect(html).not.toMatch(/<script(?![^>]*\ssrc=)[^>]*>/);
    expect(html).not.toMatch(/<style/);
    expect(html).not.toMatch(/\sstyle=/);
    expect(html).not.toMatch(/\son[a-z]+=/i);
  });

  it("explains a failed no-JavaScript sign-in", async () => {
    expect(await (await get("/dashboard/login?error=1")).text()).toContain("Wrong email or password.");
    expect(await (await get("/dashboard/login?error=locked")).text()).toContain("Too many failed sign-ins");
  });

  it("never reflects the error parameter into the page", async () => {
    const html = await (await get("/dashboard/login?error=%3Cimg%20src%3Dx%20onerror%3Dalert(1)%3E")).text();
    expect(html).not.toContain("<img");
    expect(html).toContain("Wrong email or password.");
  });

  it("keeps the form for browsers without JavaScript when a session cookie is present", async () => {
    const html = await (await get("/dashboard", { Cookie: "tessera_session=abc" })).text();
    expect(html).toContain("Loading…");
    expect(html).toMatch(/<noscript>.*action="\/api\/auth\/login".*<\/noscript>/s);
  });

  it("serves the client bundle as JavaScript with an ETag, and 304 when it is unchanged", async () => {
    const res = await get("/dashboard/app.js");
    expect(res.headers.get("content-type")).toMatch(/^text\/javascript/);
    const etag = res.headers.get("etag") ?? "";
    expect(etag).not.toBe("");
    expect((await get("/dashboard/app.js", { "If-None-Match": etag })).status).toBe(304);
  });

  it("serves the stylesheet as CSS", async () => {
    const res = await get("/dashboard/app.css");
    expect(res.headers.get("content-type")).toMatch(/^text\/css/);
    expect(await res.text()).toContain(".topbar");
  });
});
