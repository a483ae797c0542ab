#!/usr/bin/env node
/**
 * The load process of `npm run bench` (a separate process from the Workers it measures).
 *   node bench/load.mjs ingest  '{"url":…, "writeKey":…, "statsUrl":…, "statsAuth":…, "events":N, "clients":16, "batch":20}'
 *   node bench/load.mjs latency '{"targets":{"name":url,…}, "requests":N, "concurrency":C}'
 * Prints one JSON object on stdout.
 */
const [kind, json] = process.argv.slice(2);
const opts = JSON.parse(json ?? "{}");

const percentile = (sorted, p) => sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];

function makeEvent(client, i, profiles) {
  const anon = `anon-${client}-${i % profiles}`;
  const n = i % 10;
  const base = { anonymousId: anon, messageId: `m-${opts.runId}-${client}-${i}`, timestamp: new Date().toISOString() };
  if (n < 6)
    return { ...base, type: "page", properties: { path: `/p/${i % 50}`, url: `https://shop.example/p/${i % 50}` } };
  if (n < 9)
    return {
      ...base,
      type: "track",
      event: n === 8 ? "Order Completed" : "Product Added",
      properties: { revenue: 10, sku: `sku-${i % 30}` },
    };
  return {
    ...base,
    type: "identify",
    userId: `user-${client}-${i % profiles}`,
    traits: { email: `u${client}-${i % profiles}@example.com`, plan: "pro" },
  };
}

async function ingest() {
  const { url, writeKey, statsUrl, statsAuth, events, clients, batch, profilesPerClient = 50 } = opts;
  const perClient = Math.ceil(events / clients);
  const auth = { Authorization: `Basic ${Buffer.from(`${writeKey ?? ""}:`).toString("base64")}` };
  const readCount = async () => {
    const res = await fetch(statsUrl, { headers: statsAuth ? { Authorization: statsAuth } : {} });
    return (await res.json()).events;
  };
  const before = await readCount();
  const started = performance.now();
  let rejected = 0;
  await Promise.all(
    Array.from({ length: clients }, async (_, client) => {
      for (let i = 0; i < perClient; i += batch) {
        const messages = [];
        for (let j = i; j < Math.min(i + batch, perClient); j++) messages.push(makeEvent(client, j, profilesPerClient));
        for (let attempt = 0; ; attempt++) {
          const res = await fetch(url, {
            method: "POST",
            headers: { ...auth, "Content-Type": "application/json" },
            body: JSON.stringify({ batch: messages, sentAt: new Date().toISOString() }),
          });
          await res.arrayBuffer();
          if (res.ok) break;
          if (attempt > 20) throw new Error(`ingest failed: ${res.status}`);
          if (res.status !== 429 && res.status < 500) {
            rejected += messages.length;
            break;
          }
          await new Promise((r) => setTimeout(r, 50 * (attempt + 1)));
        }
      }
    }),
  );
  const accepted = performance.now();
  const total = perClient * clients - rejected;
  let stored = before;
  const deadline = Date.now() + 240_000;
  while (stored - before < total && Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 100));
    stored = await readCount();
  }
  const done = performance.now();
  return {
    events: total,
    stored: stored - before,
    acceptSeconds: (accepted - started) / 1000,
    endToEndSeconds: (done - started) / 1000,
    eventsPerSecond: (stored - before) / ((done - started) / 1000),
  };
}

async function latency() {
  const { targets, requests, concurrency = 4, warmup = 50 } = opts;
  const names = Object.keys(targets);
  const samples = Object.fromEntries(names.map((n) => [n, []]));
  const hit = async (name, record) => {
    const t0 = performance.now();
    const res = await fetch(targets[name]);
    await res.arrayBuffer();
    if (record) samples[name].push(performance.now() - t0);
    return res.status;
  };
  for (let i = 0; i < warmup; i++) for (const n of names) await hit(n, false);
  // Interleave targets so both see the same machine conditions.
  let next = 0;
  const statuses = {};
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < requests) {
        next++;
        for (const n of names) {
          const status = await hit(n, true);
          statuses[`${n}:${status}`] = (statuses[`${n}:${status}`] ?? 0) + 1;
        }
      }
    }),
  );
  const out = { statuses };
  for (const n of names) {
    const sorted = samples[n].sort((a, b) => a - b);
    out[n] = { p50: percentile(sorted, 50), p99: percentile(sorted, 99), n: sorted.length };
  }
  return out;
}

const result = kind === "ingest" ? await ingest() : await latency();
process.stdout.write(`${JSON.stringify(result)}\n`);
