import { env } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { parseCsv } from "../../worker/crm/csv-parse";
import { api, asSession, makeUser, seedProfile, sessionFor } from "../helpers/api";

let n = 0;
const uniqueTag = () => `x${Date.now().toString(36)}${++n}`;

async function exportRows(query: string) {
  const res = await api(`/api/contacts/export.csv?${query}`);
  expect(res.status).toBe(200);
  return { res, rows: parseCsv(await res.text(), { maxRows: 100_000, maxColumns: 20, maxCellChars: 10_000 }) };
}

describe("contacts CSV export", () => {
  it("downloads the filtered list as an attachment with a header row", async () => {
    const tag = uniqueTag();
    const { user } = await makeUser("marketer");
    const a = await seedProfile({
      tags: [tag, "b2b"],
      email: "a@x.example",
      name: "Ann",
      lifecycleStage: "lead",
      ownerId: user.id,
    });
    await seedProfile({ tags: ["elsewhere"] });
    const { res, rows } = await exportRows(`tag=${tag}`);
    expect(res.headers.get("content-type")).toBe("text/csv; charset=utf-8");
    expect(res.headers.get("content-disposition")).toMatch(/^attachment; filename="contacts-\d{4}-\d\d-\d\d\.csv"$/);
    expect(rows[0]).toEqual([
      "id",
      "email",
      "name",
      "lifecycle_stage",
      "owner",
      "tags",
      "first_seen_at",
      "last_seen_at",
      "created_at",
    ]);
    expect(rows.slice(1).map((r) => r.slice(0, 6))).toEqual([
      [a.id, "a@x.example", "Ann", "lead", user.email, `${tag}; b2b`],
    ]);
  });

  it("exports more rows than one internal page, each once", async () => {
    const tag = uniqueTag();
    await env.DB.prepare(
      `WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 1200)
       INSERT INTO profiles (id, tags, last_seen_at, created_at, updated_at) SELECT ?1 || '_' || i, json_array(?1), i, 0, 0 FROM n`,
    )
      .bind(tag)
      .run();
    const { rows } = await exportRows(`tag=${tag}`);
    expect(rows).toHaveLength(1201);
    expect(new Set(rows.slice(1).map((r) => r[0])).size).toBe(1200);
  });

  it("neutralises spreadsheet formulas, including the known bypasses", async () => {
    const tag = uniqueTag();
    const payloads = [
      '=HYPERLINK("http://evil.example","x")',
      "+1+1",
      "-2+3",
      "@SUM(A1)",
      "\t=1+1",
      "\r=1+1",
      "  =1+1",
      "\u00a0=1+1",
      "\uFF1D1+1",
      "\uFF0B1",
      "\uFF0D1",
      "\uFF20SUM(A1)",
    ];
    for (const name of payloads) await seedProfile({ tags: [tag], name });
    const { rows } = await exportRows(`tag=${tag}&sort=name`);
    const names = rows.slice(1).map((r) => r[2]);
    expect(names).toHaveLength(payloads.length);
    for (const name of names) expect(name.startsWith("'"), JSON.stringify(name)).toBe(true);
    expect(new Set(names.map((v) => v.slice(1)))).toEqual(new Set(payloads));
  });

  it("is not available to viewers", async () => {
    const viewer = await sessionFor("viewer");
    expect((await asSession(viewer, "/api/contacts/export.csv")).status).toBe(403);
  });
});
