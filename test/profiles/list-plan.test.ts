import { env } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { type ListQuery, listProfilesSql } from "../../worker/profiles/read";

async function plan(query: ListQuery): Promise<string> {
  const { sql, params } = listProfilesSql(query);
  const { results } = await env.DB.prepare(`EXPLAIN QUERY PLAN ${sql}`)
    .bind(...params)
    .all<{ detail: string }>();
  return results.map((r) => r.detail).join("\n");
}

// At 200k profiles, a plan that walks every live profile costs ~0.5 s; these hold it to index ranges.
describe("GET /api/profiles query plans", () => {
  it("walks contacts_last_seen_idx in order for the first page, with no sort step", async () => {
    const steps = await plan({ limit: 50 });
    expect(steps).toContain("contacts_last_seen_idx");
    expect(steps).not.toContain("TEMP B-TREE");
    expect(steps).not.toMatch(/SCAN p$/m);
  });

  it("keeps the same index walk for a later page", async () => {
    const steps = await plan({ limit: 50, cursor: [1_700_000_000_000, "prf_x"] });
    expect(steps).toContain("contacts_last_seen_idx");
    expect(steps).not.toContain("TEMP B-TREE");
  });

  it("drives a search from the candidates' prefix indexes and probes profiles by primary key", async () => {
    const steps = await plan({ q: "ada", limit: 50 });
    for (const index of ["profiles_email_idx", "profiles_name_lower_idx", "identities_value_idx"]) {
      expect(steps).toContain(index);
    }
    expect(steps).toContain("SEARCH p USING INDEX sqlite_autoindex_profiles_1 (id=?)");
    expect(steps).not.toContain("contacts_last_seen_idx");
  });
});
