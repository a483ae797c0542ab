#!/usr/bin/env node
/**
 * CPU profiles of the ingest hot paths, in Node, on the bench's own payloads (bench/load.mjs).
 *   node bench/profile.mjs ingest   [--requests 3000] [--browser] [--top 25] [--out file.cpuprofile]
 *   node bench/profile.mjs consumer [--requests 500] [--per-batch 50] [--profiles 10000] [--top 25] [--out …]
 *
 * `ingest` sends 20-event `/v1/batch` requests through the Worker's Hono app (bundled by esbuild)
 * with a fake queue that serialises what it is sent, as the runtime does for `contentType: "json"`,
 * a no-op rate limiter and a local D1 (Miniflare) holding the site; it prints CPU µs per request
 * and the top self-time functions. `--browser` adds `Origin` and a browser `User-Agent`, so
 * enrichment classifies a user agent (the bench's load sends neither).
 *
 * `consumer` seeds a local D1 like the bench (bench/inproc.ts), turns requests into queue messages
 * through the same app, then runs the pipeline's `processBatch` over them `--per-batch` messages
 * at a time through bench/inproc.ts's metering D1 wrapper; it prints the consumer's JavaScript ms
 * per event (wall time minus time with a D1 call in flight), D1 round trips and statements per
 * batch, rows per event, and the top self-time functions of that JavaScript.
 *
 * The profile is taken with node:inspector around the measured loop only. Node runs web streams,
 * Request and the D1 proxy in JavaScript where workerd runs them natively, so frames are grouped
 * by origin (worker/, hono, zod, node internals, miniflare) and only the Worker's own lines are
 * comparable with production.
 */
import { execFileSync, spawn } from "node:child_process";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { Session } from "node:inspector/promises";
import { tmpdir } from "node:os";
import { join, relative } from "node:path";
import { parseArgs } from "node:util";
import { build } from "esbuild";
import { z } from "zod";
import { freePort, root } from "../scripts/lib/worker-process.mjs";
import { databaseId, migrationFiles, openD1 } from "./inproc.mjs";
import { makeEvent } from "./load.mjs";

const { positionals, values } = parseArgs({
  allowPositionals: true,
  options: {
    requests: { type: "string" },
    events: { type: "string", default: "10000" },
    "per-batch": { type: "string", default: "50" },
    profiles: { type: "string", default: "10000" },
    browser: { type: "boolean", default: false },
    /** `live` only: no sampling profiler, so the CPU figures carry none of its signal overhead. */
    "no-sample": { type: "boolean", default: false },
    top: { type: "string", default: "25" },
    out: { type: "string" },
    /** Summarise a .cpuprofile written earlier with --out, instead of profiling. */
    summarise: { type: "string" },
  },
});
const mode = positionals[0];
if (!values.summarise && mode !== "ingest" && mode !== "consumer" && mode !== "live") {
  console.error("usage: node bench/profile.mjs ingest|consumer|live [options] (see the header of this file)");
  process.exit(2);
}

const WRITE_KEY = "wk_profile_0123456789abcdefghij";
const SITE_ID = "site_profile";
const BATCH = 20;
const CLIENTS = 16;
const UA =
  "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36";

/** The Worker's app and the bench helpers, bundled for Node like bench/inproc.mjs does. */
async function loadCode() {
  // Workers forbid `new Function`, so zod validates without its compiled fast path there: do the
  // same here (the bundle shares this zod, packages being external).
  z.config({ jitless: true });
  const out = await build({
    stdin: {
      contents: `export { app } from "../worker/index";
        export { processBatch } from "../worker/pipeline";
        export { Meter, metered, migrate, seedTessera, SEGMENTS } from "./inproc";
        export { saveSegment } from "../worker/segments/service";
        export { ruleInput } from "../worker/segments/rule";`,
      resolveDir: join(root, "bench"),
      sourcefile: "profile-entry.ts",
      loader: "ts",
    },
    bundle: true,
    format: "esm",
    platform: "node",
    target: "node20",
    // Packages stay in node_modules, so their frames are told apart from the Worker's own.
    packages: "external",
    write: false,
    logLevel: "error",
    tsconfig: join(root, "tsconfig.json"),
  });
  const file = join(root, "dist/profile-bundle.mjs");
  mkdirSync(join(root, "dist"), { recursive: true });
  writeFileSync(file, out.outputFiles[0].text);
  return import(file);
}

/** Fake queue: serialises bodies (the runtime's cost for contentType "json") and keeps them. */
function fakeQueue() {
  const sent = [];
  return {
    sent,
    async send(body) {
      sent.push(JSON.stringify(body));
    },
    async sendBatch(messages) {
      for (const m of messages) sent.push(JSON.stringify(m.body));
    },
  };
}

/** Request bodies shaped exactly like bench/load.mjs's ingest load. */
function requestBodies(n, seeded) {
  const bodies = [];
  const perClient = Math.ceil(n / CLIENTS);
  for (let client = 0; client < CLIENTS; client++) {
    for (let r = 0; r < perClient && bodies.length < n; r++) {
      const batch = [];
      for (let j = r * BATCH; j < (r + 1) * BATCH; j++) batch.push(makeEvent(client, j, 50, seeded, "profile"));
      bodies.push(JSON.stringify({ batch, sentAt: new Date().toISOString() }));
    }
  }
  return bodies;
}

async function sendAll(code, env, bodies) {
  const headers = {
    Authorization: `Basic ${Buffer.from(`${WRITE_KEY}:`).toString("base64")}`,
    "Content-Type": "application/json",
    ...(values.browser ? { Origin: "https://shop.example", "User-Agent": UA } : {}),
  };
  const ctx = { waitUntil() {}, passThroughOnException() {}, props: {} };
  for (let i = 0; i < bodies.length; i += CLIENTS) {
    const responses = await Promise.all(
      bodies
        .slice(i, i + CLIENTS)
        .map((body) =>
          code.app.fetch(new Request("http://localhost/v1/batch", { method: "POST", headers, body }), env, ctx),
        ),
    );
    for (const res of responses) {
      if (res.status !== 200) throw new Error(`ingest answered ${res.status}: ${await res.text()}`);
    }
  }
}

async function profiled(run) {
  const session = new Session();
  session.connect();
  await session.post("Profiler.enable");
  await session.post("Profiler.setSamplingInterval", { interval: 100 });
  await session.post("Profiler.start");
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  const result = await run();
  const wallMs = performance.now() - t0;
  const cpu = process.cpuUsage(cpu0);
  const { profile } = await session.post("Profiler.stop");
  session.disconnect();
  if (values.out) writeFileSync(values.out, JSON.stringify(profile));
  return { result, profile, wallMs, cpuMs: (cpu.user + cpu.system) / 1000 };
}

const origin = (url) => {
  if (!url) return "(native)";
  if (url.includes("node_modules/")) return url.replace(/.*node_modules\/((?:@[^/]+\/)?[^/]+).*/, "$1");
  if (url.startsWith("node:")) return "node";
  return "worker";
};

/** Self time per function and per origin; worker frames are mapped back to their source file. */
function summarise(profile, top) {
  const { nodes, samples, timeDeltas } = profile;
  const byId = new Map(nodes.map((n) => [n.id, n]));
  const self = new Map();
  for (const [i, id] of samples.entries()) self.set(id, (self.get(id) ?? 0) + (timeDeltas[i] ?? 0));
  const byFunction = new Map();
  const byOrigin = new Map();
  let total = 0;
  for (const [id, us] of self) {
    const { callFrame } = byId.get(id);
    if (callFrame.functionName === "(idle)" || callFrame.functionName === "(program)") continue;
    total += us;
    const key = `${callFrame.functionName || "(anonymous)"} ${callFrame.url ? `${relative(root, callFrame.url.replace("file://", ""))}:${callFrame.lineNumber + 1}` : ""}`;
    byFunction.set(key, (byFunction.get(key) ?? 0) + us);
    const o = callFrame.functionName === "(garbage collector)" ? "gc" : origin(callFrame.url);
    byOrigin.set(o, (byOrigin.get(o) ?? 0) + us);
  }
  // Inclusive time: each sample counts once for every distinct function on its stack.
  const parent = new Map();
  for (const n of nodes) for (const child of n.children ?? []) parent.set(child, n.id);
  const inclusive = new Map();
  for (const [id, us] of self) {
    const seen = new Set();
    for (let at = id; at !== undefined; at = parent.get(at)) {
      const { callFrame } = byId.get(at);
      if (!callFrame.functionName || callFrame.functionName.startsWith("(")) continue;
      const key = `${callFrame.functionName} ${callFrame.url ? `${relative(root, callFrame.url.replace("file://", ""))}:${callFrame.lineNumber + 1}` : ""}`;
      if (seen.has(key)) continue;
      seen.add(key);
      inclusive.set(key, (inclusive.get(key) ?? 0) + us);
    }
  }
  const pct = (us) => `${((100 * us) / total).toFixed(1).padStart(5)}%`;
  console.log(`\nself time by origin (bundle lines are dist/profile-bundle.mjs; see its sourcemap):`);
  for (const [o, us] of [...byOrigin].sort((a, b) => b[1] - a[1]).slice(0, 12))
    console.log(`  ${pct(us)}  ${(us / 1000).toFixed(0).padStart(6)} ms  ${o}`);
  console.log(`\ntop ${top} functions by self time:`);
  for (const [name, us] of [...byFunction].sort((a, b) => b[1] - a[1]).slice(0, top))
    console.log(`  ${pct(us)}  ${(us / 1000).toFixed(0).padStart(6)} ms  ${name}`);
  console.log(`\ntop ${top} functions by inclusive time (self + callees):`);
  for (const [name, us] of [...inclusive].sort((a, b) => b[1] - a[1]).slice(0, top))
    console.log(`  ${pct(us)}  ${(us / 1000).toFixed(0).padStart(6)} ms  ${name}`);
}

/**
 * D1 for the accept path, whose only reads (write key → site, proxy host) never change here: each
 * distinct statement reaches Miniflare once, so its proxy's cost stays out of the profile.
 */
function readOnce(db) {
  const memo = new Map();
  const statement = (sql, args) => {
    const once = (method) => () => {
      const key = `${method}\u0000${sql}\u0000${JSON.stringify(args)}`;
      if (!memo.has(key))
        memo.set(
          key,
          db
            .prepare(sql)
            .bind(...args)
            [method](),
        );
      return memo.get(key);
    };
    return {
      bind: (...next) => statement(sql, next),
      raw: once("raw"),
      all: once("all"),
      first: once("first"),
      run: once("run"),
    };
  };
  return { prepare: (sql) => statement(sql, []), batch: (list) => db.batch(list) };
}

async function setUpDb(code, name) {
  const { dbs, dispose } = await openD1({ DB: name });
  await code.migrate(dbs.DB, migrationFiles("migrations"));
  // Miniflare's first queries are slow; the proxy-host lookup gives D1 one second.
  for (let i = 0; i < 20; i++)
    await dbs.DB.prepare("SELECT id FROM sites WHERE proxy_host = ?").bind("localhost").all();
  return { db: dbs.DB, dispose };
}

const top = Number(values.top);
if (values.summarise) {
  summarise(JSON.parse(readFileSync(values.summarise, "utf8")), top);
  process.exit(0);
}
const code = await loadCode();

if (mode === "ingest") {
  const n = Number(values.requests ?? 3000);
  const { db, dispose } = await setUpDb(code, "profile-ingest");
  const now = Date.now();
  await db
    .prepare(
      `INSERT INTO sites (id, name, write_key, allowed_origins, identity_verification, verification_secret,
         identity_policy, created_at, updated_at) VALUES (?1, 'profile', ?2, '["*"]', 0, 'ivs_profile', '{}', ?3, ?3)`,
    )
    .bind(SITE_ID, WRITE_KEY, now)
    .run();
  const queue = fakeQueue();
  const env = {
    DB: readOnce(db),
    EVENTS: queue,
    DELIVERIES: fakeQueue(),
    INGEST_RATE_LIMIT: { limit: async () => ({ success: true }) },
  };
  await sendAll(code, env, requestBodies(200, 10_000)); // warm-up: JIT, caches
  const bodies = requestBodies(n, 10_000);
  const { wallMs, cpuMs, profile } = await profiled(() => sendAll(code, env, bodies));
  console.log(
    `ingest: ${n} requests × ${BATCH} events${values.browser ? " (browser: Origin + User-Agent)" : ""}: ` +
      `${((1000 * cpuMs) / n).toFixed(0)} µs CPU per request (${((1000 * cpuMs) / n / BATCH).toFixed(1)} µs per event), ` +
      `wall ${(wallMs / 1000).toFixed(2)} s; queue messages sent: ${queue.sent.length - 200}`,
  );
  summarise(profile, top);
  await dispose();
} else if (mode === "live") {
  await live();
} else {
  const n = Number(values.requests ?? 500);
  const perBatch = Number(values["per-batch"]);
  const profiles = Number(values.profiles);
  const { db, dispose } = await setUpDb(code, "profile-consumer");
  const now = Date.now();
  const t0 = performance.now();
  await code.seedTessera(db, { profiles, eventsPerProfile: 10, siteId: SITE_ID, writeKey: WRITE_KEY, now });
  for (const s of code.SEGMENTS)
    await code.saveSegment(db, { key: s.key, name: s.name, rule: code.ruleInput.parse(s.rule) }, now, "create");
  console.log(
    `seeded ${profiles} profiles and the bench's segments in ${((performance.now() - t0) / 1000).toFixed(1)} s`,
  );

  // Queue messages made by the ingest route itself, from the bench's payloads.
  const queue = fakeQueue();
  const env = {
    DB: db,
    EVENTS: queue,
    DELIVERIES: fakeQueue(),
    INGEST_RATE_LIMIT: { limit: async () => ({ success: true }) },
  };
  await sendAll(code, env, requestBodies(n, profiles));
  const messages = queue.sent.map((text) => JSON.parse(text));
  const groups = [];
  for (let i = 0; i < messages.length; i += perBatch) groups.push(messages.slice(i, i + perBatch));
  const events = messages.reduce((sum, m) => sum + m.events.length, 0);

  const meter = new code.Meter();
  const metered = { DB: code.metered(db, meter) };
  // Warm-up on the first group (JIT), then the measured groups.
  await code.processBatch(metered, groups[0], now);
  meter.reset();
  const measured = groups.slice(1);
  const measuredEvents = events - groups[0].reduce((sum, m) => sum + m.events.length, 0);
  let stored = 0;
  const { wallMs, profile } = await profiled(async () => {
    for (const group of measured) stored += (await code.processBatch(metered, group, now)).stored;
  });
  const jsMs = wallMs - meter.busyMs;
  console.log(
    `consumer: ${measured.length} batches of ${perBatch} messages (${measuredEvents} events, ${stored} stored) on ${profiles} profiles:\n` +
      `  JavaScript ${((1000 * jsMs) / measuredEvents).toFixed(0)} µs per event (wall ${((1000 * wallMs) / measuredEvents).toFixed(0)} µs, D1 in flight ${((1000 * meter.busyMs) / measuredEvents).toFixed(0)} µs)\n` +
      `  per batch: ${(meter.roundTrips / measured.length).toFixed(1)} D1 round trips, ${(meter.statements / measured.length).toFixed(1)} statements\n` +
      `  per event: ${(meter.rowsRead / measuredEvents).toFixed(1)} rows read, ${(meter.rowsWritten / measuredEvents).toFixed(2)} rows written`,
  );
  const statements = [...meter.bySql.values()].sort((a, b) => b.sqlMs - a.sqlMs).slice(0, 15);
  console.log("\nstatements by time inside D1 (ms, calls, rows read, rows written):");
  for (const s of statements)
    console.log(
      `  ${String(Math.round(s.sqlMs)).padStart(6)} ${String(s.calls).padStart(5)} ${String(s.rowsRead).padStart(8)} ${String(s.rowsWritten).padStart(7)}  ${s.sql}`,
    );
  summarise(profile, top);
  await dispose();
}

/** CPU ms (user + system) used so far by the workerd processes under `pid` (Linux /proc). */
function runtimeCpuMs(pid) {
  const children = (p) => {
    try {
      return readFileSync(`/proc/${p}/task/${p}/children`, "utf8").trim().split(/\s+/).filter(Boolean).map(Number);
    } catch {
      return [];
    }
  };
  const tick = 1000 / 100; // USER_HZ
  let ms = 0;
  const visit = (p) => {
    try {
      const stat = readFileSync(`/proc/${p}/stat`, "utf8");
      const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
      if (stat.includes("(workerd)")) ms += (Number(fields[11]) + Number(fields[12])) * tick;
    } catch {}
    for (const c of children(p)) visit(c);
  };
  visit(pid);
  return ms;
}

/**
 * The real thing: the built Worker under `wrangler dev` on a seeded local D1, the bench's ingest
 * load from a separate process, and a CPU profile of the Worker's isolate taken through the
 * DevTools inspector while the events are accepted and stored. The fetch handler and the queue
 * consumer share that isolate (one thread), so this shows what competes with accepting events.
 */
async function live() {
  if (typeof WebSocket === "undefined") throw new Error("run with node --experimental-websocket (Node 20)");
  const profiles = Number(values.profiles);
  const events = Number(values.events);
  const adminAuth = "Bearer profile-admin-token-0123456789";
  const outdir = join(root, "dist/profile-worker");
  execFileSync(
    join(root, "node_modules/.bin/wrangler"),
    ["deploy", "--dry-run", "--minify=false", "--outdir", outdir],
    {
      cwd: root,
      stdio: "ignore",
      env: { ...process.env, WRANGLER_SEND_METRICS: "false" },
    },
  );
  const config = join(outdir, "wrangler.toml");
  writeFileSync(
    config,
    readFileSync(join(root, "wrangler.toml"), "utf8").replace(/^main = .*$/m, 'main = "index.js"\nno_bundle = true'),
  );
  const persistDir = mkdtempSync(join(tmpdir(), "tessera-profile-"));
  let child;
  try {
    const { dbs, dispose } = await openD1({ DB: databaseId("wrangler.toml") }, persistDir);
    await code.migrate(dbs.DB, migrationFiles("migrations"));
    await code.seedTessera(dbs.DB, {
      profiles,
      eventsPerProfile: 10,
      siteId: SITE_ID,
      writeKey: WRITE_KEY,
      now: Date.now(),
    });
    await dispose();
    const [port, inspectorPort] = [await freePort(), await freePort()];
    child = spawn(
      join(root, "node_modules/.bin/wrangler"),
      [
        "dev",
        "--config",
        config,
        "--port",
        String(port),
        "--ip",
        "127.0.0.1",
        "--persist-to",
        persistDir,
        "--inspector-port",
        String(inspectorPort),
        "--log-level",
        "warn",
        "--var",
        `ADMIN_TOKEN:${adminAuth.slice(7)}`,
        "--var",
        "DEMO_WRITE_KEY:",
      ],
      { cwd: root, env: { ...process.env, WRANGLER_SEND_METRICS: "false" }, stdio: ["ignore", "ignore", "inherit"] },
    );
    const base = `http://127.0.0.1:${port}`;
    for (let i = 0; ; i++) {
      try {
        if ((await fetch(`${base}/healthz`)).ok) break;
      } catch {}
      if (i > 300) throw new Error("wrangler dev did not start");
      await new Promise((r) => setTimeout(r, 200));
    }
    for (const segment of code.SEGMENTS) {
      const res = await fetch(`${base}/api/segments`, {
        method: "POST",
        headers: { Authorization: adminAuth, "Content-Type": "application/json" },
        body: JSON.stringify(segment),
      });
      if (!res.ok) throw new Error(`segment ${segment.key}: ${res.status}`);
    }
    const targets = await (await fetch(`http://127.0.0.1:${inspectorPort}/json`)).json();
    const target = targets.find((t) => t.webSocketDebuggerUrl) ?? targets[0];
    // The inspector accepts local DevTools only: say so with the Origin header.
    const ws = new WebSocket(target.webSocketDebuggerUrl, { headers: { Origin: "http://localhost" } });
    await new Promise((resolve, reject) => {
      ws.onopen = resolve;
      ws.onerror = reject;
    });
    let seq = 0;
    const waiting = new Map();
    ws.onmessage = (m) => {
      const msg = JSON.parse(m.data);
      if (msg.id && waiting.has(msg.id)) waiting.get(msg.id)(msg);
    };
    const call = (method, params = {}) =>
      new Promise((resolve) => {
        const id = ++seq;
        waiting.set(id, resolve);
        ws.send(JSON.stringify({ id, method, params }));
      });
    const sample = !values["no-sample"];
    const cpu0 = runtimeCpuMs(child.pid);
    if (sample) {
      await call("Profiler.enable");
      await call("Profiler.setSamplingInterval", { interval: 200 });
      await call("Profiler.start");
    }
    const load = JSON.parse(
      execFileSync(
        process.execPath,
        [
          join(root, "bench/load.mjs"),
          "ingest",
          JSON.stringify({
            events,
            clients: CLIENTS,
            batch: BATCH,
            seeded: profiles,
            runId: `live-${Date.now()}`,
            url: `${base}/v1/batch`,
            writeKey: WRITE_KEY,
            statsUrl: `${base}/api/stats`,
            statsAuth: adminAuth,
          }),
        ],
        { encoding: "utf8" },
      )
        .trim()
        .split("\n")
        .pop(),
    );
    const cpuMs = runtimeCpuMs(child.pid) - cpu0;
    const profile = sample ? (await call("Profiler.stop")).result.profile : null;
    ws.close();
    if (profile && values.out) writeFileSync(values.out, JSON.stringify(profile));
    console.log(
      `live: ${load.stored}/${load.events} events stored; accepted ${load.acceptedPerSecond.toFixed(0)} ev/s, ` +
        `stored end to end ${load.eventsPerSecond.toFixed(0)} ev/s (${load.endToEndSeconds.toFixed(2)} s); ` +
        `workerd CPU ${((1000 * cpuMs) / load.stored).toFixed(0)} µs per event stored (all its threads: Worker, D1, queue)`,
    );
    if (profile) summarise(profile, top);
  } finally {
    child?.kill("SIGTERM");
    await new Promise((r) => setTimeout(r, 500));
    if (child && child.exitCode === null) child.kill("SIGKILL");
    rmSync(persistDir, { recursive: true, force: true });
  }
}
