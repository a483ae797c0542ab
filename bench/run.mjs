#!/usr/bin/env node
/**
 * `npm run bench` — Tessera's figures, each next to a baseline measured in the same run on the
 * same machine. Starts Tessera and the raw-insert baseline Worker with `wrangler dev`, drives them
 * from a separate load process (bench/load.mjs), prints a table and writes bench/results.json.
 *   --quick   smaller loads (under 2 minutes)
 * Method and figures: bench/README.md.
 */
import { execFileSync, spawnSync } from "node:child_process";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { brotliCompressSync, constants, gzipSync } from "node:zlib";
import { root, startWorker } from "../scripts/lib/worker-process.mjs";

const quick = process.argv.includes("--quick");
const ADMIN_TOKEN = "bench-admin-token-0123456789abcdef";
const adminAuth = `Bearer ${ADMIN_TOKEN}`;
const rows = [];
const gzip = (buf) => gzipSync(buf, { level: 9 }).length;
const brotli = (buf) => brotliCompressSync(buf, { params: { [constants.BROTLI_PARAM_QUALITY]: 11 } }).length;

function record(figure, value, unit, baseline, baselineLabel, goal) {
  const ratio = typeof value === "number" && typeof baseline === "number" && baseline !== 0 ? value / baseline : null;
  rows.push({ figure, value, unit, baseline, baselineLabel, ratio, goal });
}

function load(kind, options) {
  const out = execFileSync(process.execPath, [join(root, "bench/load.mjs"), kind, JSON.stringify(options)], {
    encoding: "utf8",
    maxBuffer: 10 * 1024 * 1024,
  });
  return JSON.parse(out.trim().split("\n").pop());
}

async function adminApi(base, path, body) {
  const res = await fetch(`${base}${path}`, {
    method: body === undefined ? "GET" : "POST",
    headers: { Authorization: adminAuth, "Content-Type": "application/json" },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  if (!res.ok) throw new Error(`${path}: ${res.status} ${await res.text()}`);
  return res.json();
}

// Sizes: the built bundles (npm run build first).
spawnSync(process.execPath, [join(root, "scripts/build.mjs")], { stdio: "ignore" });
const snippet = readFileSync(join(root, "dist/s.js"));
record("snippet /s.js gzip", gzip(snippet), "B", 2048, "budget", "≤ 2048 B");
record("snippet /s.js brotli", brotli(snippet), "B", 31294, "Segment analytics.js gzip (ANCHORS.md)", "much smaller");
record("snippet /s.js raw", snippet.length, "B", null, "", "");
const dashboard = readFileSync(join(root, "dist/dashboard.js"));
record("dashboard client gzip", gzip(dashboard), "B", null, "", "small");
execFileSync(join(root, "node_modules/.bin/wrangler"), ["deploy", "--dry-run", "--outdir", join(root, "dist/worker")], {
  cwd: root,
  stdio: "ignore",
  env: { ...process.env, WRANGLER_SEND_METRICS: "false" },
});
const workerBundle = readFileSync(join(root, "dist/worker/index.js"));
record(
  "worker bundle gzip",
  gzip(workerBundle),
  "B",
  3 * 1024 * 1024,
  "Workers free-plan limit (3 MB gzip)",
  "well under",
);

// Ingest: Tessera end to end (stored, visible in /api/stats) versus the raw-insert baseline.
const tessera = await startWorker({ vars: { ADMIN_TOKEN, ALLOW_PRIVATE_DESTINATIONS: "true", DEMO_WRITE_KEY: "" } });
const baseline = await startWorker({ config: "bench/baseline/wrangler.toml" });
try {
  const site = await adminApi(tessera.baseUrl, "/api/sites", { name: "bench", allowedOrigins: ["*"] });
  const events = quick ? 2_000 : 10_000;
  const common = { events, clients: 16, batch: 20 };
  const raw = load("ingest", {
    ...common,
    runId: "baseline",
    url: `${baseline.baseUrl}/v1/batch`,
    statsUrl: `${baseline.baseUrl}/count`,
  });
  let ours = null;
  try {
    ours = load("ingest", {
      ...common,
      runId: "tessera",
      url: `${tessera.baseUrl}/v1/batch`,
      writeKey: site.writeKey,
      statsUrl: `${tessera.baseUrl}/api/stats`,
      statsAuth: adminAuth,
    });
  } catch (error) {
    console.error(`ingest against Tessera failed: ${error.message.split("\n")[0]}`);
  }
  record(
    "ingest events/s stored end to end (16 clients × 20-event batches)",
    ours ? Math.round(ours.eventsPerSecond) : "n/a",
    "ev/s",
    Math.round(raw.eventsPerSecond),
    "raw D1 insert Worker",
    "≥ 0.5× baseline",
  );

  // Latency of the cheapest routes, interleaved: the floor every other route is compared with.
  const lat = load("latency", {
    targets: { tessera: `${tessera.baseUrl}/v1/ping`, baseline: `${baseline.baseUrl}/noop` },
    requests: quick ? 300 : 1500,
  });
  record("constant route p50", lat.tessera.p50, "ms", lat.baseline.p50, "baseline Worker no-op p50", "≈ 1×");
  record("constant route p99", lat.tessera.p99, "ms", lat.baseline.p99, "baseline Worker no-op p99", "≈ 1×");
} finally {
  await tessera.stop();
  await baseline.stop();
}

const fmt = (v) => (typeof v === "number" ? (Number.isInteger(v) ? String(v) : v.toFixed(2)) : String(v ?? ""));
const table = rows.map((r) => [
  r.figure,
  `${fmt(r.value)} ${r.unit}`,
  r.baseline == null ? "" : `${fmt(r.baseline)} (${r.baselineLabel})`,
  r.ratio == null ? "" : `${r.ratio.toFixed(2)}×`,
  r.goal ?? "",
]);
const header = ["figure", "value", "baseline (same run)", "ratio", "goal"];
const widths = header.map((h, i) => Math.max(h.length, ...table.map((r) => r[i].length)));
const line = (cells) => cells.map((c, i) => c.padEnd(widths[i])).join("  ");
console.log(`\n${line(header)}\n${widths.map((w) => "-".repeat(w)).join("  ")}`);
for (const r of table) console.log(line(r));
writeFileSync(
  join(root, "bench/results.json"),
  `${JSON.stringify({ at: new Date().toISOString(), quick, rows }, null, 2)}\n`,
);
console.log("\nwritten to bench/results.json");
