#!/usr/bin/env node
/**
 * The load process of `npm run bench` (a separate process from the Workers it measures).
 *   node bench/load.mjs ingest    '{"url":…, "writeKey":…, "statsUrl":…, "statsAuth":…, "events":N, "clients":16, "batch":20, "seeded":S}'
 *   node bench/load.mjs latency   '{"targets":{"name":url | {"url":…, "seeded":S}}, "requests":N, "concurrency":C}'
 *   node bench/load.mjs freshness '{"identifyUrl":…, "personalizeUrl":…, "writeKey":…, "profiles":[i,…], "stagger":ms}'
 *   node bench/load.mjs timing    '{"requests":[{"name":…, "url":…, "method":…, "body":…, "auth":…}], "repeat":N}'
 * Prints one JSON object on stdout. `seeded` is the number of profiles bench/inproc.ts seeded:
 * visitors are drawn from them (`anon-seed-<i>`, `user-seed-<i>`), as returning visitors are.
 */
import { pathToFileURL } from "node:url";

const main = import.meta.url === pathToFileURL(process.argv[1] ?? "").href;
const [kind, json] = main ? process.argv.slice(2) : [];
const opts = JSON.parse(json ?? "{}");

const percentile = (sorted, p) => sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const basic = (writeKey) => `Basic ${Buffer.from(`${writeKey ?? ""}:`).toString("base64")}`;

// A small deterministic generator, so two runs send the same visitors.
let state = 0x2545f491;
function random() {
  state ^= state << 13;
  state ^= state >>> 17;
  state ^= state << 5;
  return (state >>> 0) / 2 ** 32;
}
const pick = (n) => 1 + Math.floor(random() * n);

function summary(samples) {
  const sorted = [...samples].sort((a, b) => a - b);
  return { p50: percentile(sorted, 50), p99: percentile(sorted, 99), max: sorted[sorted.length - 1], n: sorted.length };
}

/**
 * A page-heavy mix like a shop's: 60% page views, 30% track (10% of them orders), 10% identify.
 * With `seeded`, 80% of events come from returning (seeded) visitors, who identify as themselves.
 * Exported for bench/profile.mjs, which profiles the Worker's code on the same payloads.
 */
export function makeEvent(client, i, profiles, seeded, runId = opts.runId) {
  const returning = seeded > 0 && random() < 0.8;
  const visitor = returning ? pick(seeded) : null;
  const anon = returning ? `anon-seed-${visitor}` : `anon-${runId}-${client}-${i % profiles}`;
  const n = i % 10;
  const base = { anonymousId: anon, messageId: `m-${runId}-${client}-${i}`, timestamp: new Date().toISOString() };
  if (n < 6)
    return { ...base, type: "page", properties: { path: `/p/${i % 50}`, url: `https://shop.example/p/${i % 50}` } };
  if (n < 9)
    return {
      ...base,
      type: "track",
      event: n === 8 ? "Order Completed" : "Product Added",
      properties: { revenue: 10, sku: `sku-${i % 30}` },
    };
  return returning
    ? { ...base, type: "identify", userId: `user-seed-${visitor}`, traits: { plan: "pro" } }
    : {
        ...base,
        type: "identify",
        userId: `user-${runId}-${client}-${i % profiles}`,
        traits: { email: `u-${runId}-${client}-${i % profiles}@example.com`, plan: "pro" },
      };
}

async function ingest() {
  const { url, writeKey, statsUrl, statsAuth, events, clients, batch, profilesPerClient = 50, seeded = 0 } = opts;
  const perClient = Math.ceil(events / clients);
  let statsMs = 0;
  const readCount = async () => {
    const t0 = performance.now();
    const res = await fetch(statsUrl, { headers: statsAuth ? { Authorization: statsAuth } : {} });
    if (!res.ok) throw new Error(`${statsUrl}: ${res.status}`);
    const { events } = await res.json();
    statsMs = performance.now() - t0;
    return events;
  };
  const before = await readCount();
  const started = performance.now();
  let rejected = 0;
  let retries = 0;
  await Promise.all(
    Array.from({ length: clients }, async (_, client) => {
      for (let i = 0; i < perClient; i += batch) {
        const messages = [];
        for (let j = i; j < Math.min(i + batch, perClient); j++)
          messages.push(makeEvent(client, j, profilesPerClient, seeded));
        for (let attempt = 0; ; attempt++) {
          const res = await fetch(url, {
            method: "POST",
            headers: { Authorization: basic(writeKey), "Content-Type": "application/json" },
            body: JSON.stringify({ batch: messages, sentAt: new Date().toISOString() }),
          });
          await res.arrayBuffer();
          if (res.ok) break;
          if (attempt > 20) throw new Error(`ingest failed: ${res.status}`);
          if (res.status !== 429 && res.status < 500) {
            rejected += messages.length;
            break;
          }
          retries++;
          await sleep(50 * (attempt + 1));
        }
      }
    }),
  );
  const accepted = performance.now();
  const total = perClient * clients - rejected;
  let stored = before;
  const deadline = Date.now() + 240_000;
  // Polled every 100 ms, or less often when reading the count is itself slow (it shares the
  // database with the consumer being measured): end-to-end times are exact to about that.
  let polls = 0;
  while (stored - before < total && Date.now() < deadline) {
    await sleep(Math.max(100, 2 * statsMs));
    stored = await readCount();
    polls++;
  }
  const done = performance.now();
  const acceptSeconds = (accepted - started) / 1000;
  const endToEndSeconds = (done - started) / 1000;
  return {
    events: total,
    stored: stored - before,
    rejected,
    retries,
    polls,
    lastStatsMs: statsMs,
    acceptSeconds,
    endToEndSeconds,
    acceptedPerSecond: total / acceptSeconds,
    eventsPerSecond: (stored - before) / endToEndSeconds,
  };
}

function targetUrl(target) {
  if (typeof target === "string") return target;
  return `${target.url}&anonymousId=anon-seed-${pick(target.seeded)}`;
}

async function latency() {
  const { targets, requests, concurrency = 4, warmup = 50 } = opts;
  const names = Object.keys(targets);
  const samples = Object.fromEntries(names.map((n) => [n, []]));
  const statuses = {};
  const hit = async (name, record) => {
    const url = targetUrl(targets[name]);
    const t0 = performance.now();
    const res = await fetch(url);
    await res.arrayBuffer();
    if (record) {
      samples[name].push(performance.now() - t0);
      statuses[`${name}:${res.status}`] = (statuses[`${name}:${res.status}`] ?? 0) + 1;
    }
  };
  for (let i = 0; i < warmup; i++) for (const n of names) await hit(n, false);
  // Interleave targets (alternating which goes first) so both see the same machine conditions.
  let next = 0;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < requests) {
        const round = next++;
        const order = round % 2 === 0 ? names : [...names].reverse();
        for (const n of order) await hit(n, true);
      }
    }),
  );
  const out = { statuses };
  for (const n of names) out[n] = summary(samples[n]);
  return out;
}

/**
 * Per trial: POST an identify that sets `plan: enterprise` on a seeded visitor, then poll the
 * decision until the hero slot serves the enterprise variant. Measured from the moment the
 * identify was accepted (200) to the first changed decision.
 */
async function freshness() {
  const { identifyUrl, personalizeUrl, writeKey, profiles, stagger = 250, timeoutMs = 10_000, poll = 20 } = opts;
  const times = [];
  let timeouts = 0;
  const trial = async (i) => {
    const anonymousId = `anon-seed-${i}`;
    const decision = async () => {
      const res = await fetch(`${personalizeUrl}&anonymousId=${anonymousId}`);
      return (await res.json()).slots?.hero?.variant;
    };
    if ((await decision()) === "hero-enterprise") throw new Error(`profile ${i} already gets the enterprise hero`);
    const res = await fetch(identifyUrl, {
      method: "POST",
      headers: { Authorization: basic(writeKey), "Content-Type": "application/json" },
      body: JSON.stringify({ anonymousId, traits: { plan: "enterprise" }, messageId: `fresh-${i}-${Date.now()}` }),
    });
    await res.arrayBuffer();
    if (!res.ok) throw new Error(`identify: ${res.status}`);
    const accepted = performance.now();
    while (performance.now() - accepted < timeoutMs) {
      if ((await decision()) === "hero-enterprise") {
        times.push(performance.now() - accepted);
        return;
      }
      await sleep(poll);
    }
    timeouts++;
  };
  await Promise.all(
    profiles.map(async (i, n) => {
      await sleep(n * stagger);
      await trial(i);
    }),
  );
  return { ...summary(times), timeouts, trials: profiles.length };
}

/** Each request `repeat` times after one warm-up; the median duration and the last status. */
async function timing() {
  const { requests, repeat = 3 } = opts;
  const out = {};
  for (const r of requests) {
    const samples = [];
    let status = 0;
    for (let k = 0; k <= repeat; k++) {
      const t0 = performance.now();
      const res = await fetch(r.url, {
        method: r.method ?? "GET",
        headers: { ...(r.auth ? { Authorization: r.auth } : {}), "Content-Type": "application/json" },
        body: r.body === undefined ? undefined : JSON.stringify(r.body),
      });
      const body = await res.text();
      status = res.status;
      if (!res.ok) throw new Error(`${r.name}: ${res.status} ${body.slice(0, 300)}`);
      if (k > 0) samples.push(performance.now() - t0);
    }
    out[r.name] = { ...summary(samples), status };
  }
  return out;
}

if (main) {
  const kinds = { ingest, latency, freshness, timing };
  if (!kinds[kind]) throw new Error(`unknown load kind: ${kind}`);
  process.stdout.write(`${JSON.stringify(await kinds[kind]())}\n`);
}
