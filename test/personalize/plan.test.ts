import { env } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { SITE_AND_VISITOR_SQL, VISITOR_SQL } from "../../worker/personalize/decide";
import { PROXY_HOST_SQL } from "../../worker/personalize/hosts";
import { STATS_SQL } from "../../worker/personalize/stats";

const TABLES = /^SCAN (sites|identities|profiles|memberships|segments|events|slots)\b/;

async function plan(sql: string, args: unknown[]): Promise<string[]> {
  const { results } = await env.DB.prepare(`EXPLAIN QUERY PLAN ${sql}`)
    .bind(...args)
    .all<{ detail: string }>();
  return results.map((r) => r.detail);
}

// At 100k profiles a table scan on the decision path would blow the latency budget: every table
// must be reached through an index.
describe("query plans", () => {
  it("authenticates and resolves the visitor with index lookups only", async () => {
    const steps = await plan(SITE_AND_VISITOR_SQL, ["wk", "user", "anon"]);
    expect(steps.filter((s) => TABLES.test(s))).toEqual([]);
    expect(steps.join("\n")).toContain("sites_write_key_uq");
    expect(steps.join("\n")).toContain("memberships_profile_idx");
  });

  it("resolves a proxied visitor with index lookups only", async () => {
    const steps = await plan(VISITOR_SQL, ["user", "anon"]);
    expect(steps.filter((s) => TABLES.test(s))).toEqual([]);
  });

  it("classifies a request's hostname through the unique proxy-host index", async () => {
    const steps = await plan(PROXY_HOST_SQL, ["www.shop.example"]);
    expect(steps.filter((s) => TABLES.test(s))).toEqual([]);
    expect(steps.join("\n")).toContain("sites_proxy_host_uq");
  });

  it("reads a slot's exposures through the partial exposure index", async () => {
    const steps = await plan(STATS_SQL, ["hero", 0, 1, "Signed Up"]);
    expect(steps.filter((s) => TABLES.test(s))).toEqual([]);
    expect(steps.join("\n")).toContain("events_exposure_idx");
    expect(steps.join("\n")).toContain("events_profile_time_idx");
  });
});
