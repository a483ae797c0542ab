import { createExecutionContext, env, SELF } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { app } from "../../worker";
import { api, BASE } from "../helpers/api";

type ErrorBody = { error: { code: string; message: string; details?: unknown } };

describe("the worker skeleton", () => {
  it("answers /healthz when the worker and D1 are up", async () => {
    const res = await SELF.fetch(`${BASE}/healthz`);
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ ok: true });
  });

  it("answers unknown routes with 404 in the error envelope", async () => {
    const res = await SELF.fetch(`${BASE}/no/such/thing`);
    expect(res.status).toBe(404);
    const body = (await res.json()) as ErrorBody;
    expect(body.error.code).toBe("not_found");
    expect(typeof body.error.message).toBe("string");
  });

  it("answers /v1 requests on its own small router exactly as the whole app does", async () => {
    // The Worker's fetch sends /v1/* to an app holding only those routes (worker/index.ts).
    const cases: [string, RequestInit][] = [
      ["/v1/ping", {}],
      ["/v1/batch", { method: "GET" }],
      ["/v1/no-such-route", { method: "POST", body: "{}" }],
      ["/v1/batch", { method: "POST", body: "{not json" }],
      [
        "/v1/batch",
        { method: "OPTIONS", headers: { Origin: "https://shop.example", "Access-Control-Request-Method": "POST" } },
      ],
      ["/v1/personalize?slots=hero", {}],
    ];
    for (const [path, init] of cases) {
      const edge = await SELF.fetch(`${BASE}${path}`, init);
      const whole = await app.fetch(new Request(`${BASE}${path}`, init), env, createExecutionContext());
      expect({ path, status: edge.status, allow: edge.headers.get("allow"), body: await edge.text() }).toEqual({
        path,
        status: whole.status,
        allow: whole.headers.get("allow"),
        body: await whole.text(),
      });
    }
  });

  it("answers a known path with the wrong method with 405 and Allow", async () => {
    const res = await SELF.fetch(`${BASE}/healthz`, { method: "DELETE" });
    expect(res.status).toBe(405);
    expect(res.headers.get("allow")).toContain("GET");
    expect(((await res.json()) as ErrorBody).error.code).toBe("method_not_allowed");
  });

  it("answers 405 for a parameterised admin route with an unsupported method", async () => {
    const res = await api("/api/sites/site_x", { method: "PUT", body: {} });
    expect(res.status).toBe(405);
  });

  it("rejects malformed JSON with 400 invalid_json", async () => {
    const res = await api("/api/sites", { body: '{"name": "x",' });
    expect(res.status).toBe(400);
    expect(((await res.json()) as ErrorBody).error.code).toBe("invalid_json");
  });

  it("rejects schema violations with 400 and lists the offending fields", async () => {
    const res = await api("/api/sites", { body: { name: "", allowedOrigins: ["not a url"] } });
    expect(res.status).toBe(400);
    const body = (await res.json()) as ErrorBody;
    expect(body.error.code).toBe("validation_failed");
    const paths = (body.error.details as { path: string }[]).map((d) => d.path);
    expect(paths).toEqual(expect.arrayContaining(["name", "allowedOrigins.0"]));
  });

  it("serves an OpenAPI document describing the routes", async () => {
    const res = await SELF.fetch(`${BASE}/api/openapi.json`);
    expect(res.status).toBe(200);
    const doc = (await res.json()) as { openapi: string; paths: Record<string, Record<string, unknown>> };
    expect(doc.openapi).toBe("3.1.0");
    expect(Object.keys(doc.paths["/api/sites"])).toEqual(expect.arrayContaining(["get", "post"]));
    expect(doc.paths["/api/sites/{id}/rotate-key"].post).toBeDefined();
  });

  it("serves a dashboard page with a strict content security policy", async () => {
    const res = await SELF.fetch(`${BASE}/dashboard`);
    expect(res.status).toBe(200);
    const csp = res.headers.get("content-security-policy") ?? "";
    expect(csp).toContain("frame-ancestors 'none'");
    expect(csp).toContain("script-src 'self'");
    const html = await res.text();
    expect(html).toContain('type="email"');
    expect(html).toContain('type="password"');
  });
});
