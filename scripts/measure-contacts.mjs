#!/usr/bin/env node
/**
 * Measures the contacts list (worker/crm/list-sql.ts, the exact SQL the Worker runs) against a
 * local D1 (Miniflare) seeded with N profiles — default 100,000. Not a test: it prints, per query,
 * the best of 3 SQL durations as D1 reports them and SQLite's query plan.
 *
 *   node scripts/measure-contacts.mjs [N]
 *   EXTRA_SQL="CREATE INDEX …;CREATE INDEX …" node scripts/measure-contacts.mjs   # try an index
 */
import { readdirSync, readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { build } from "esbuild";
import { Miniflare } from "miniflare";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const N = Number(process.argv[2] ?? 100_000);

const bundled = await build({
  entryPoints: [join(root, "worker/crm/list-sql.ts")],
  bundle: true,
  format: "esm",
  write: false,
});
const { contactListSql } = await import(
  `data:text/javascript;base64,${Buffer.from(bundled.outputFiles[0].text).toString("base64")}`
);

const mf = new Miniflare({ modules: true, script: "export default {}", d1Databases: ["DB"] });
const db = await mf.getD1Database("DB");
for (const file of readdirSync(join(root, "migrations"))
  .filter((f) => f.endsWith(".sql"))
  .sort()) {
  for (const stmt of readFileSync(join(root, "migrations", file), "utf8").split("--> statement-breakpoint")) {
    if (stmt.trim()) await db.prepare(stmt).run();
  }
}

// 5% merged away, 60% with an email, 40% named, stages and owners spread, a common tag on half
// the profiles and a rare one (`vip`) on 0.1% (profile_tags follows through its triggers), a
// segment holding a third.
const t0 = Date.now();
await db
  .prepare(
    `WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < ?)
INSERT INTO profiles (id, merged_into, email, name, identified, lifecycle_stage, owner_id, tags, first_seen_at, last_seen_at, created_at, updated_at)
SELECT printf('prf_%08d', i), CASE WHEN i % 20 = 0 THEN printf('prf_%08d', i - 1) END,
  CASE WHEN i % 5 < 3 THEN printf('user%d@example%d.com', i, i % 50) END,
  CASE WHEN i % 5 < 2 THEN (CASE i % 4 WHEN 0 THEN 'Alice ' WHEN 1 THEN 'Bob ' WHEN 2 THEN 'carol ' ELSE 'Dave ' END) || i END,
  i % 5 < 3,
  CASE i % 8 WHEN 0 THEN 'subscriber' WHEN 1 THEN 'lead' WHEN 2 THEN 'mql' WHEN 3 THEN 'customer' END,
  CASE WHEN i % 3 = 0 THEN 'usr_' || (i % 5) END,
  CASE WHEN i % 1000 = 7 THEN '["vip","newsletter"]' WHEN i % 4 = 0 THEN '["newsletter"]' WHEN i % 4 = 1 THEN '["newsletter","webinar"]' ELSE '[]' END,
  1700000000000 + i * 1000, CASE WHEN i % 97 = 0 THEN NULL ELSE 1700000000000 + ((i * 7919) % ?) * 1000 END,
  1700000000000 + i * 1000, 1700000000000 + i * 1000
FROM n`,
  )
  .bind(N, N)
  .run();
await db.batch([
  db.prepare(
    "INSERT INTO identities (type, value, profile_id, created_at) SELECT 'anonymous_id', 'anon-' || id, id, created_at FROM profiles",
  ),
  db.prepare(
    "INSERT INTO identities (type, value, profile_id, created_at) SELECT 'email', email, id, created_at FROM profiles WHERE email IS NOT NULL",
  ),
  db.prepare(
    "INSERT INTO memberships (segment_key, profile_id, entered_at) SELECT 'active', id, 0 FROM profiles WHERE rowid % 3 = 0 AND merged_into IS NULL",
  ),
]);
for (const stmt of (process.env.EXTRA_SQL ?? "").split(";")) if (stmt.trim()) await db.prepare(stmt).run();
console.log(`seeded ${N} profiles in ${Date.now() - t0} ms\n`);

async function measure(label, filters) {
  const { sql, params } = contactListSql({ sort: "last_seen", order: "desc", limit: 50, ...filters });
  const plan = await db
    .prepare(`EXPLAIN QUERY PLAN ${sql}`)
    .bind(...params)
    .all();
  let best = Number.POSITIVE_INFINITY;
  let rows = [];
  for (let k = 0; k < 3; k++) {
    const r = await db
      .prepare(sql)
      .bind(...params)
      .all();
    best = Math.min(best, r.meta.duration);
    rows = r.results;
  }
  const steps = plan.results.map((p) => p.detail).join(" / ");
  console.log(
    `${label.padEnd(34)} ${best.toFixed(1).padStart(7)} ms  ${String(rows.length).padStart(3)} rows  ${steps}`,
  );
  return rows;
}

const deep = (rows, n) =>
  Object.keys(rows[rows.length - 1])
    .filter((k) => /^k\d$/.test(k))
    .sort()
    .map((k) => rows[n][k]);
const mid = { after: [1700000000000 + (N / 2) * 1000, "prf_00050000"] };

await measure("first page, last_seen desc", {});
await measure("deep page, last_seen desc", mid);
await measure("first page, last_seen asc", { order: "asc" });
await measure("first page, created desc", { sort: "created" });
await measure("deep page, created desc", { sort: "created", after: [1700000000000 + (N / 2) * 1000, "x"] });
const byName = await measure("first page, name asc", { sort: "name", order: "asc" });
await measure("next page, name asc", { sort: "name", order: "asc", after: deep(byName, byName.length - 1) });
await measure("deep page, name asc", { sort: "name", order: "asc", after: [0, "carol 5", "x"] });
await measure("stage (common)", { stage: "lead" });
await measure("stage (absent)", { stage: "evangelist" });
await measure("owner (common)", { owner: "usr_1" });
await measure("owner none", { owner: "none" });
await measure("tag (common)", { tag: "newsletter" });
await measure("tag (rare)", { tag: "vip" });
await measure("tag (absent)", { tag: "nope" });
await measure("segment (a third)", { segment: "active" });
await measure("segment + stage", { segment: "active", stage: "lead" });
await measure("tag + segment", { tag: "vip", segment: "active" });
for (const q of ["a", "alice 1", "user123", "anon-prf_0000012", "zzz"]) await measure(`q=${q}`, { q });
await measure("q=a sorted by name", { q: "a", sort: "name", order: "asc" });
await mf.dispose();
