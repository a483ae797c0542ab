import { SELF } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { BASE } from "../helpers/api";

// Every admin route, as method + path; each must refuse callers without valid credentials.
const adminRoutes: [string, string][] = [
  ["GET", "/api/sites"],
  ["POST", "/api/sites"],
  ["GET", "/api/sites/site_123"],
  ["PATCH", "/api/sites/site_123"],
  ["POST", "/api/sites/site_123/rotate-key"],
  ["GET", "/api/stats"],
  ["GET", "/api/no-such-route"],
];

const badCredentials: [string, Record<string, string>][] = [
  ["no credentials", {}],
  ["a wrong bearer token", { Authorization: "Bearer not-the-token-at-all" }],
  ["an empty bearer token", { Authorization: "Bearer " }],
  ["basic auth", { Authorization: `Basic ${btoa("admin:test-admin-token-0123456789")}` }],
  ["the token without the Bearer scheme", { Authorization: "test-admin-token-0123456789" }],
];

describe("admin API authentication", () => {
  for (const [method, path] of adminRoutes) {
    for (const [label, headers] of badCredentials) {
      it(`answers ${method} ${path} with 401 given ${label}`, async () => {
        const res = await SELF.fetch(`${BASE}${path}`, {
          method,
          headers: { ...headers, "Content-Type": "application/json" },
          body: method === "GET" ? undefined : JSON.stringify({ name: "x" }),
        });
        expect(res.status).toBe(401);
        expect(((await res.json()) as { error: { code: string } }).error.code).toBe("unauthorized");
      });
    }
  }

  it("does no work for an unauthenticated mutation", async () => {
    await SELF.fetch(`${BASE}/api/sites`, { method: "POST", body: JSON.stringify({ name: "intruder" }) });
    const list = await SELF.fetch(`${BASE}/api/sites`, {
      headers: { Authorization: "Bearer test-admin-token-0123456789" },
    });
    const { items } = (await list.json()) as { items: { name: string }[] };
    expect(items.map((s) => s.name)).not.toContain("intruder");
  });
});
