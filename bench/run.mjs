#!/usr/bin/env node
/**
 * `npm run bench` — Tessera's figures, each next to a baseline measured in the same run on the
 * same machine. Seeds local D1 in bulk (bench/inproc.ts), starts Tessera and the raw-insert
 * baseline Worker with `wrangler dev` on that state, drives them from a separate load process
 * (bench/load.mjs), prints a table and writes bench/results.json.
 *   --quick   smaller loads, the 10k-profile scale only (under 2 minutes)
 * Method and figures: bench/README.md.
 */
import { execFileSync, spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { cpus, loadavg, tmpdir } from "node:os";
import { join } from "node:path";
import { brotliCompressSync, constants, gzipSync } from "node:zlib";
import { root, startWorker } from "../scripts/lib/worker-process.mjs";
import { databaseId, inproc, migrationFiles, openD1 } from "./inproc.mjs";

const quick = process.argv.includes("--quick");
const started = Date.now();
const ADMIN_TOKEN = "bench-admin-token-0123456789abcdef";
const adminAuth = `Bearer ${ADMIN_TOKEN}`;
const WRITE_KEY = "wk_bench_0123456789abcdefghij";
const SITE_ID = "site_bench";
const EVENTS_PER_PROFILE = 10;
const SCALES = quick ? [10_000] : [10_000, 200_000];
const PERSONALIZE_SLOTS = "hero,banner,pricing-cta";

const rows = [];
const details = { machine: { cpus: cpus().length, loadAverageAtStart: loadavg()[0] } };
const gzip = (buf) => gzipSync(buf, { level: 9 }).length;
const brotli = (buf) => brotliCompressSync(buf, { params: { [constants.BROTLI_PARAM_QUALITY]: 11 } }).length;
const round = (v, digits = 2) => (typeof v === "number" ? Number(v.toFixed(digits)) : v);
const k = (n) => `${n / 1000}k`;
const log = (message) => console.error(`[bench ${((Date.now() - started) / 1000).toFixed(0)} s] ${message}`);

function record(figure, value, unit, baseline, baselineLabel, goal, lowerIsBetter = true) {
  const ratio = typeof value === "number" && typeof baseline === "number" && baseline !== 0 ? value / baseline : null;
  let met = null;
  if (goal?.max !== undefined && typeof value === "number") met = value <= goal.max;
  if (goal?.maxRatio !== undefined && ratio !== null) met = ratio <= goal.maxRatio;
  if (goal?.minRatio !== undefined && ratio !== null) met = ratio >= goal.minRatio;
  rows.push({
    figure,
    value: round(value),
    unit,
    baseline: round(baseline),
    baselineLabel,
    ratio: round(ratio, 3),
    goal: goal?.text ?? "",
    met,
    lowerIsBetter,
  });
}

function load(kind, options) {
  const out = execFileSync(process.execPath, [join(root, "bench/load.mjs"), kind, JSON.stringify(options)], {
    encoding: "utf8",
    maxBuffer: 10 * 1024 * 1024,
  });
  return JSON.parse(out.trim().split("\n").pop());
}

async function api(base, method, path, body) {
  const res = await fetch(`${base}${path}`, {
    method,
    headers: { Authorization: adminAuth, "Content-Type": "application/json" },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  if (!res.ok) throw new Error(`${method} ${path}: ${res.status} ${await res.text()}`);
  return res.json();
}

// 1 and 7. Sizes of the built bundles.
log("building");
spawnSync(process.execPath, [join(root, "scripts/build.mjs")], { stdio: "ignore" });
const snippet = readFileSync(join(root, "dist/s.js"));
record("snippet /s.js gzip", gzip(snippet), "B", 2048, "budget", { text: "≤ 2048 B", max: 2048 });
record("snippet /s.js brotli", brotli(snippet), "B", 31294, "Segment analytics.js gzip (ANCHORS.md)", {
  text: "much smaller",
});
const dashboard = readFileSync(join(root, "dist/dashboard.js"));
record("dashboard client gzip", gzip(dashboard), "B", null, "", { text: "small" });
execFileSync(join(root, "node_modules/.bin/wrangler"), ["deploy", "--dry-run", "--outdir", join(root, "dist/worker")], {
  cwd: root,
  stdio: "ignore",
  env: { ...process.env, WRANGLER_SEND_METRICS: "false" },
});
const workerBundle = readFileSync(join(root, "dist/worker/index.js"));

// `wrangler dev` reloads when a source file changes, and other work may be editing worker/ while
// the bench runs: serve a snapshot of the bundle just built instead, with the same bindings.
const snapshotDir = mkdtempSync(join(tmpdir(), "tessera-bench-worker-"));
writeFileSync(join(snapshotDir, "index.js"), workerBundle);
const tesseraConfig = join(snapshotDir, "wrangler.toml");
writeFileSync(
  tesseraConfig,
  readFileSync(join(root, "wrangler.toml"), "utf8").replace(/^main = .*$/m, 'main = "index.js"\nno_bundle = true'),
);
record("worker bundle gzip", gzip(workerBundle), "B", 3 * 1024 * 1024, "Workers free-plan limit (3 MB gzip)", {
  text: "well under",
  maxRatio: 0.5,
});

const tools = await inproc();

// 3. D1 rows per event by kind, through the pipeline's own processBatch, in process.
log("rows per event");
{
  const { dbs, dispose } = await openD1({ DB: "bench-rows", BASE: "bench-rows-baseline" });
  try {
    await tools.migrate(dbs.DB, migrationFiles("migrations"));
    await tools.migrate(dbs.BASE, migrationFiles("bench/baseline/migrations"));
    const figures = await tools.measureRows(dbs.DB, dbs.BASE);
    details.rowsPerEvent = figures;
    const base = figures.find((f) => f.kind.startsWith("baseline"));
    const label = `raw insert (${base.rowsWrittenPerEvent} written, ${base.rowsReadPerEvent} read)`;
    for (const f of figures) {
      if (f === base) continue;
      const pageGoal = f.kind.startsWith("page view, existing profile") ? { text: "≤ 4", max: 4 } : { text: "" };
      record(
        `D1 rows written per event: ${f.kind} (reads ${round(f.rowsReadPerEvent, 1)})`,
        f.rowsWrittenPerEvent,
        "rows",
        base.rowsWrittenPerEvent,
        label,
        pageGoal,
      );
    }
  } finally {
    await dispose();
  }
}

/** Migrates and bulk-seeds Tessera's and the baseline's local D1 before `wrangler dev` opens them. */
async function seed(persistDir, config, profiles) {
  const { dbs, dispose } = await openD1({ DB: databaseId(config) }, persistDir);
  try {
    if (config === "wrangler.toml") {
      await tools.migrate(dbs.DB, migrationFiles("migrations"));
      return await tools.seedTessera(dbs.DB, {
        profiles,
        eventsPerProfile: EVENTS_PER_PROFILE,
        siteId: SITE_ID,
        writeKey: WRITE_KEY,
        now: Date.now(),
      });
    }
    await tools.migrate(dbs.DB, migrationFiles("bench/baseline/migrations"));
    await tools.seedBaseline(dbs.DB, profiles * EVENTS_PER_PROFILE);
    return null;
  } finally {
    await dispose();
  }
}

const scaleResults = {};

async function runScale(profiles) {
  const dirs = [mkdtempSync(join(tmpdir(), "tessera-bench-")), mkdtempSync(join(tmpdir(), "tessera-bench-base-"))];
  const out = { profiles, events: profiles * EVENTS_PER_PROFILE };
  let tessera;
  let baseline;
  try {
    log(`seeding ${k(profiles)} profiles, ${k(profiles * EVENTS_PER_PROFILE)} events`);
    const t0 = Date.now();
    out.seed = await seed(dirs[0], "wrangler.toml", profiles);
    await seed(dirs[1], "bench/baseline/wrangler.toml", profiles);
    out.seedSeconds = (Date.now() - t0) / 1000;
    log(`seeded in ${out.seedSeconds} s; starting Workers`);
    tessera = await startWorker({
      config: tesseraConfig,
      persistDir: dirs[0],
      migrate: false,
      vars: { ADMIN_TOKEN, ALLOW_PRIVATE_DESTINATIONS: "true", DEMO_WRITE_KEY: "" },
    });
    baseline = await startWorker({ config: "bench/baseline/wrangler.toml", persistDir: dirs[1], migrate: false });
    const T = tessera.baseUrl;

    // Segments through the API: the back-fill builds counters and memberships from the seeded events.
    log("segments (back-fill) and slots");
    out.segmentSave = {};
    for (const s of tools.SEGMENTS) {
      const t = performance.now();
      await api(T, "POST", "/api/segments", s);
      out.segmentSave[s.key] = round(performance.now() - t, 0);
    }
    for (const [key, slot] of Object.entries(tools.SLOTS)) await api(T, "PUT", `/api/slots/${key}`, slot);
    const members = {};
    for (const s of tools.SEGMENTS) members[s.key] = (await api(T, "GET", `/api/segments/${s.key}`)).memberCount;
    out.members = members;

    // 2. Ingest, stored end to end, against the raw-insert baseline. A sustained rate: the run is
    // long enough (~20 s) that the queue's fixed tail (max_batch_timeout, then the last batch;
    // figure 5 measures that latency) is a few percent of it, not a tenth (bench/README.md).
    log("ingest");
    const common = { events: quick ? 2_000 : 60_000, clients: 16, batch: 20, seeded: profiles };
    out.ingestBaseline = load("ingest", {
      ...common,
      runId: `baseline-${profiles}`,
      url: `${baseline.baseUrl}/v1/batch`,
      statsUrl: `${baseline.baseUrl}/count`,
    });
    out.ingest = load("ingest", {
      ...common,
      runId: `tessera-${profiles}`,
      url: `${T}/v1/batch`,
      writeKey: WRITE_KEY,
      statsUrl: `${T}/api/stats`,
      statsAuth: adminAuth,
    });

    // 4. Decisions against the constant route of the same Worker, interleaved.
    log("personalization latency");
    out.latency = load("latency", {
      targets: {
        personalize: { url: `${T}/v1/personalize?slots=${PERSONALIZE_SLOTS}&writeKey=${WRITE_KEY}`, seeded: profiles },
        ping: `${T}/v1/ping`,
      },
      requests: quick ? 200 : 1000,
    });

    // 5. Freshness: identify → the decision changes. Profiles nobody else touches in this run.
    log("freshness");
    const trials = quick ? 20 : 40;
    out.freshness = load("freshness", {
      identifyUrl: `${T}/v1/identify`,
      personalizeUrl: `${T}/v1/personalize?slots=hero&writeKey=${WRITE_KEY}`,
      writeKey: WRITE_KEY,
      profiles: Array.from({ length: trials }, (_, i) => Math.max(1, profiles - 7 * i)),
    });

    // 6. Reads that scan or search the whole population.
    log("previews, contacts, search");
    const previews = {
      "segment preview: trait rule": { trait: "plan", op: "eq", value: "pro" },
      "segment preview: counted event rule": {
        event: "Order Completed",
        count: { op: "gte", value: 1 },
        within: "30d",
      },
      "segment preview: uncounted event rule (reads events)": {
        event: "Product Added",
        count: { op: "gte", value: 2 },
        within: "30d",
      },
      "segment preview: trait and counted event": {
        all: [
          { trait: "plan", op: "in", value: ["pro", "team"] },
          { page: true, count: { op: "gte", value: 5 }, within: "7d" },
        ],
      },
    };
    out.queries = load("timing", {
      repeat: quick ? 2 : 3,
      requests: [
        ...Object.entries(previews).map(([name, rule]) => ({
          name,
          url: `${T}/api/segments/preview`,
          method: "POST",
          body: { rule },
          auth: adminAuth,
        })),
        { name: "contacts list, first page", url: `${T}/api/contacts`, auth: adminAuth },
        { name: "contacts search by email prefix", url: `${T}/api/contacts?q=u1234`, auth: adminAuth },
        { name: "contacts search by name", url: `${T}/api/contacts?q=Grace%2012`, auth: adminAuth },
        { name: "profiles search", url: `${T}/api/profiles?q=u1234`, auth: adminAuth },
        { name: "stats (overview totals)", url: `${T}/api/stats`, auth: adminAuth },
        { name: "constant route /v1/ping", url: `${T}/v1/ping` },
      ],
    });
    return out;
  } catch (error) {
    out.error = error.message;
    console.error(`scale ${k(profiles)} failed: ${error.message}`);
    if (tessera) console.error(tessera.log().slice(-3000));
    return out;
  } finally {
    await tessera?.stop();
    await baseline?.stop();
    for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
    scaleResults[profiles] = out;
  }
}

for (const profiles of SCALES) await runScale(profiles);

// The table: each scale's figures against the same run's baselines, then the scale ratios.
for (const profiles of SCALES) {
  const s = scaleResults[profiles];
  const at = `@${k(profiles)}`;
  if (s.ingest && s.ingestBaseline) {
    record(
      `ingest events/s stored end to end ${at} (16 clients × 20-event batches)`,
      s.ingest.eventsPerSecond,
      "ev/s",
      s.ingestBaseline.eventsPerSecond,
      "raw D1 insert Worker, same load",
      { text: "≥ 0.5× baseline", minRatio: 0.5 },
      false,
    );
    record(
      `ingest events/s accepted (200 from /v1/batch) ${at}`,
      s.ingest.acceptedPerSecond,
      "ev/s",
      s.ingestBaseline.acceptedPerSecond,
      "raw D1 insert Worker (its accept = stored)",
      { text: "" },
      false,
    );
  }
  if (s.latency) {
    record(
      `personalize p50 ${at} (3 slots)`,
      s.latency.personalize.p50,
      "ms",
      s.latency.ping.p50,
      "/v1/ping p50, interleaved",
      {
        text: "",
      },
    );
    record(
      `personalize p99 ${at} (3 slots)`,
      s.latency.personalize.p99,
      "ms",
      s.latency.ping.p99,
      "/v1/ping p99, interleaved",
      {
        text: "≤ 2× ping",
        maxRatio: 2,
      },
    );
  }
  if (s.freshness) {
    record(`freshness p50 ${at}: identify accepted → decision changed`, s.freshness.p50, "ms", null, "", { text: "" });
    record(
      `freshness p99 ${at} (${s.freshness.n}/${s.freshness.trials} trials, ${s.freshness.timeouts} timeouts)`,
      s.freshness.p99,
      "ms",
      null,
      "",
      { text: "< 2000 ms", max: 2000 },
    );
  }
  if (s.segmentSave && Object.keys(s.segmentSave).length > 0) {
    const worst = Math.max(...Object.values(s.segmentSave));
    record(
      `segment save with back-fill ${at} (slowest of ${Object.keys(s.segmentSave).length})`,
      worst,
      "ms",
      null,
      "",
      {
        text: "",
      },
    );
  }
  if (s.queries) {
    const ping = s.queries["constant route /v1/ping"].p50;
    for (const [name, q] of Object.entries(s.queries)) {
      if (name.startsWith("constant")) continue;
      const goal =
        name.startsWith("segment preview") && profiles >= 200_000 ? { text: "< 1000 ms", max: 1000 } : { text: "" };
      record(`${name} ${at} (median)`, q.p50, "ms", ping, "/v1/ping median", goal);
    }
  }
}
if (SCALES.length > 1) {
  const [small, large] = SCALES.map((p) => scaleResults[p]);
  const pair = `@${k(SCALES[1])} vs @${k(SCALES[0])}`;
  if (small.ingest && large.ingest)
    record(
      `scale: ingest stored ev/s ${pair}`,
      large.ingest.eventsPerSecond,
      "ev/s",
      small.ingest.eventsPerSecond,
      `@${k(SCALES[0])}`,
      {
        text: "≈ 1× (flat)",
      },
      false,
    );
  if (small.latency && large.latency)
    record(
      `scale: personalize p99 ${pair}`,
      large.latency.personalize.p99,
      "ms",
      small.latency.personalize.p99,
      `@${k(SCALES[0])}`,
      {
        text: "≈ 1× (flat)",
      },
    );
  if (small.queries && large.queries)
    for (const name of [
      "contacts list, first page",
      "contacts search by email prefix",
      "segment preview: counted event rule",
    ])
      record(`scale: ${name} ${pair}`, large.queries[name].p50, "ms", small.queries[name].p50, `@${k(SCALES[0])}`, {
        text: "",
      });
}
details.scales = scaleResults;
details.machine.loadAverageAtEnd = loadavg()[0];
details.seconds = (Date.now() - started) / 1000;
rmSync(snapshotDir, { recursive: true, force: true });

const fmt = (v) => (typeof v === "number" ? (Number.isInteger(v) ? String(v) : v.toFixed(2)) : String(v ?? ""));
const table = rows.map((r) => [
  r.figure,
  `${fmt(r.value)} ${r.unit}`,
  r.baseline == null ? "" : `${fmt(r.baseline)} (${r.baselineLabel})`,
  r.ratio == null ? "" : `${r.ratio.toFixed(2)}×`,
  `${r.goal}${r.met === null ? "" : r.met ? " ✓" : " ✗"}`,
]);
const header = ["figure", "value", "baseline (same run)", "ratio", "goal"];
const widths = header.map((h, i) => Math.max(h.length, ...table.map((r) => r[i].length)));
const line = (cells) => cells.map((c, i) => c.padEnd(widths[i])).join("  ");
console.log(`\n${line(header)}\n${widths.map((w) => "-".repeat(w)).join("  ")}`);
for (const r of table) console.log(line(r));
console.log(
  `\n${quick ? "quick" : "full"} run in ${details.seconds.toFixed(0)} s on ${details.machine.cpus} cores (load average ${details.machine.loadAverageAtStart.toFixed(1)} → ${details.machine.loadAverageAtEnd.toFixed(1)})`,
);
writeFileSync(
  join(root, "bench/results.json"),
  `${JSON.stringify({ at: new Date().toISOString(), quick, rows, details }, null, 2)}\n`,
);
console.log("written to bench/results.json");
