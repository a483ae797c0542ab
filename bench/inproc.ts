/**
 * The in-process half of `npm run bench`: work that must not go through HTTP, done against local
 * D1 databases (Miniflare, opened by bench/inproc.mjs) with the Worker's own code.
 *
 * - `migrate`: applies drizzle-kit's migration files (the same SQL `wrangler d1 migrations apply` runs).
 * - `seedTessera` / `seedBaseline`: bulk data in SQL (one INSERT … SELECT per chunk, generated
 *   inside SQLite), so 200k profiles and 2M events take seconds, not one request each.
 * - `measureRows`: D1 rows read and written per event, by kind, through the pipeline's own
 *   `processBatch`, next to the raw-insert baseline's statement on an identical database.
 *
 * Not part of the product: bundled by esbuild at bench time, never deployed.
 */
import { processBatch } from "../worker/pipeline";
import { applyEvent, parseComputed } from "../worker/profiles/computed";
import { type Condition, ruleInput } from "../worker/segments/rule";
import { saveSegment } from "../worker/segments/service";
import type { NormalizedEvent, QueuedBatch } from "../worker/wire/queue";

const DAY = 86_400_000;
const MINUTE = 60_000;

/**
 * The audiences every bench database holds: one on a trait (the freshness figure moves a profile
 * into it with an identify), one on a counted track event, one on counted page views.
 */
export const SEGMENTS: { key: string; name: string; rule: unknown }[] = [
  { key: "enterprise", name: "Enterprise plan", rule: { trait: "plan", op: "eq", value: "enterprise" } },
  {
    key: "buyers",
    name: "Ordered in the last 30 days",
    rule: { event: "Order Completed", count: { op: "gte", value: 1 }, within: "30d" },
  },
  {
    key: "engaged",
    name: "5+ page views in 7 days",
    rule: { page: true, count: { op: "gte", value: 5 }, within: "7d" },
  },
];

/** Three slots with rules on two segments each (or one), as a landing page would use them. */
export const SLOTS: Record<string, { default: unknown; rules: { id: string; segment: string; content: unknown }[] }> = {
  hero: {
    default: "<h1>Welcome</h1>",
    rules: [
      { id: "hero-enterprise", segment: "enterprise", content: "<h1>Tessera for your whole company</h1>" },
      { id: "hero-buyer", segment: "buyers", content: { title: "Welcome back", cta: "/orders" } },
    ],
  },
  banner: {
    default: "",
    rules: [
      { id: "banner-buyer", segment: "buyers", content: "Free shipping on your next order" },
      { id: "banner-engaged", segment: "engaged", content: "Our guide to getting started" },
    ],
  },
  "pricing-cta": {
    default: "Start free",
    rules: [{ id: "cta-enterprise", segment: "enterprise", content: "Talk to sales" }],
  },
};

/** Applies migration files, in order; each file is drizzle-kit SQL split at its statement breakpoints. */
export async function migrate(db: D1Database, files: string[]): Promise<void> {
  for (const file of files) {
    for (const statement of file.split("--> statement-breakpoint")) {
      if (statement.trim()) await db.prepare(statement).run();
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Seeding

/** Visitor archetypes: profile i follows archetype i % ARCHETYPES (its event pattern and times). */
const ARCHETYPES = 64;

/** Identifiers of seeded profile i, as the load process and the freshness trials use them. */
export const seeded = {
  profileId: (i: number) => `prf_seed${String(i).padStart(7, "0")}`,
  anonymousId: (i: number) => `anon-seed-${i}`,
  userId: (i: number) => `user-seed-${i}`,
  email: (i: number) => `u${i}@example.com`,
  /** 60% of profiles are identified (user id, email, name, plan). */
  identified: (i: number) => (i % ARCHETYPES) % 5 < 3,
};

interface Template {
  k: number;
  type: NormalizedEvent["type"];
  event: string | null;
  name: string | null;
  properties: Record<string, unknown>;
  context: Record<string, unknown>;
  /** Event time relative to `now` (ms, negative). */
  at: number;
}

const PLANS = ["free", "pro", "team", "free"];
const FIRST_NAMES = ["Ada", "Grace", "Linus", "Barbara", "Ken", "Margaret", "Dennis", "Frances"];

/**
 * The events of archetype `a`: mostly page views, some Product Added, an Order Completed for a
 * third of archetypes, an identify for identified ones; the last one `a × 0.9` days ago, so
 * activity spreads over ~2 months and time-windowed segments hold a realistic share.
 */
function archetype(a: number, perProfile: number): Template[] {
  const out: Template[] = [];
  const identified = a % 5 < 3;
  const lastAt = -Math.round(a * 0.9 * DAY) - MINUTE;
  for (let k = 0; k < perProfile; k++) {
    const at = lastAt - (perProfile - 1 - k) * 7 * MINUTE;
    const path = `/p/${(a * 7 + k) % 50}`;
    const context = {
      library: { name: "analytics.js", version: "5.2.0" },
      page: { path, url: `https://shop.example${path}`, referrer: k === 0 ? "https://www.google.com/" : null },
      geo: { country: ["US", "DE", "FR", "GB"][a % 4] },
      device: { browser: ["Chrome", "Safari", "Firefox"][a % 3], os: ["macOS", "Windows", "iOS"][(a + k) % 3] },
      sessionId: `s-${a}-${Math.floor(k / 4)}`,
    };
    const base = { k, name: null, context, at };
    if (identified && k === 1) {
      out.push({ ...base, type: "identify", event: null, properties: {} });
    } else if (a % 3 === 0 && k === perProfile - 2) {
      out.push({ ...base, type: "track", event: "Order Completed", properties: { revenue: 42.5, orderId: `o-${a}` } });
    } else if (k % 4 === 3) {
      out.push({
        ...base,
        type: "track",
        event: "Product Added",
        properties: { sku: `sku-${(a + k) % 30}`, price: 19 },
      });
    } else {
      out.push({
        ...base,
        type: "page",
        event: null,
        properties: { path, url: `https://shop.example${path}`, title: `Product ${(a * 7 + k) % 50}` },
      });
    }
  }
  return out;
}

/** Computed traits of an archetype, made by the pipeline's own `applyEvent` over its events. */
function computedOf(templates: Template[], now: number): string {
  const c = parseComputed({});
  for (const t of templates) {
    applyEvent(c, {
      type: t.type,
      messageId: `t-${t.k}`,
      anonymousId: "a",
      userId: null,
      previousId: null,
      groupId: null,
      event: t.event,
      name: t.name,
      properties: t.properties,
      traits: {},
      context: t.context,
      timestamp: now + t.at,
      receivedAt: now + t.at,
      flags: [],
      verified: false,
    });
  }
  return JSON.stringify(c);
}

export interface SeedOptions {
  profiles: number;
  eventsPerProfile: number;
  siteId: string;
  writeKey: string;
  now: number;
}

export interface SeedResult {
  profiles: number;
  identities: number;
  events: number;
  ms: number;
}

const PROFILE_CHUNK = 20_000;

/** `WITH RECURSIVE` over profile numbers [?1, ?2]: SQLite generates the rows itself. */
const range = "WITH RECURSIVE n(i) AS (SELECT CAST(?1 AS INTEGER) UNION ALL SELECT i + 1 FROM n WHERE i < ?2)";

/**
 * Seeds a site and `profiles` profiles shaped like the pipeline's own rows: traits with
 * per-trait provenance, computed traits (the archetype's, made by `applyEvent`), identities
 * (anonymous id; user id and email when identified), raw events and the `events` metric.
 * Segments (counters, memberships) are created afterwards through the API, whose back-fill
 * builds them from these events. Times move by up to 12 h per profile so listings don't tie.
 */
export async function seedTessera(db: D1Database, o: SeedOptions): Promise<SeedResult> {
  const started = Date.now();
  const templates = Array.from({ length: ARCHETYPES }, (_, a) => archetype(a, o.eventsPerProfile));
  await db.batch([
    db
      .prepare(
        `INSERT INTO sites (id, name, write_key, allowed_origins, identity_verification, verification_secret,
           identity_policy, created_at, updated_at) VALUES (?1, 'bench', ?2, '["*"]', 0, 'ivs_bench_secret', '{}', ?3, ?3)`,
      )
      .bind(o.siteId, o.writeKey, o.now),
    db.prepare(
      "CREATE TABLE bench_templates (a INTEGER, k INTEGER, type TEXT, event TEXT, properties TEXT, context TEXT, at INTEGER, PRIMARY KEY (a, k))",
    ),
    db.prepare(
      "CREATE TABLE bench_archetypes (a INTEGER PRIMARY KEY, computed TEXT, first_at INTEGER, last_at INTEGER)",
    ),
    db
      .prepare(
        `INSERT INTO bench_templates SELECT j.value ->> 'a', j.value ->> 'k', j.value ->> 'type', j.value ->> 'event',
           j.value -> 'properties', j.value -> 'context', j.value ->> 'at' FROM json_each(?1) j`,
      )
      .bind(JSON.stringify(templates.flatMap((list, a) => list.map((t) => ({ ...t, a }))))),
    db
      .prepare(
        "INSERT INTO bench_archetypes SELECT j.value ->> 'a', j.value ->> 'computed', j.value ->> 'first', j.value ->> 'last' FROM json_each(?1) j",
      )
      .bind(
        JSON.stringify(
          templates.map((list, a) => ({
            a,
            computed: computedOf(list, o.now),
            first: list[0].at,
            last: list[list.length - 1].at,
          })),
        ),
      ),
  ]);

  // Per profile i: archetype a = i % 64, time shift up to 12 h, identified when a % 5 < 3.
  const jitter = `((n.i * 7919) % 720) * ${MINUTE}`;
  const identified = `(n.i % ${ARCHETYPES}) % 5 < 3`;
  const email = "'u' || n.i || '@example.com'";
  const name = `(CASE n.i % 8 ${FIRST_NAMES.map((f, x) => `WHEN ${x} THEN '${f}'`).join(" ")} END) || ' ' || n.i`;
  const plan = `(CASE n.i % 4 ${PLANS.map((p, x) => `WHEN ${x} THEN '${p}'`).join(" ")} END)`;
  const pid = "printf('prf_seed%07d', n.i)";
  // Message ids sort in insertion order, so the events table (WITHOUT ROWID, clustered on its
  // primary key) grows at its right edge; the load's random message ids then land anywhere in it.
  const messageId = (k: string) => `printf('seed-%07d-%02d', n.i, ${k})`;
  const identifyAt = `(?3 + t1.at - ${jitter})`;
  const stamp = (t: string) => `json_object('t', ${t}, 's', ?4, 'm', ${messageId("1")})`;

  let identities = 0;
  for (let from = 1; from <= o.profiles; from += PROFILE_CHUNK) {
    const to = Math.min(o.profiles, from + PROFILE_CHUNK - 1);
    const results = await db.batch([
      db
        .prepare(
          `${range}
INSERT INTO profiles (id, merged_into, traits, trait_meta, computed, email, name, identified, tags, merge_count,
  first_seen_at, last_seen_at, last_seen_sort, created_at, updated_at)
SELECT ${pid}, NULL,
  CASE WHEN ${identified} THEN json_object('email', ${email}, 'name', ${name}, 'plan', ${plan}) ELSE '{}' END,
  CASE WHEN ${identified} THEN json_object('email', ${stamp(identifyAt)}, 'name', ${stamp(identifyAt)}, 'plan', ${stamp(identifyAt)}) ELSE '{}' END,
  a.computed,
  CASE WHEN ${identified} THEN ${email} END,
  CASE WHEN ${identified} THEN ${name} END,
  ${identified}, '[]', 0,
  ?3 + a.first_at - ${jitter}, ?3 + a.last_at - ${jitter}, ?3 + a.last_at - ${jitter}, ?3 + a.first_at - ${jitter},
  ?3 + a.last_at - ${jitter}
FROM n JOIN bench_archetypes a ON a.a = n.i % ${ARCHETYPES} LEFT JOIN bench_templates t1 ON t1.a = a.a AND t1.k = 1`,
        )
        .bind(from, to, o.now, o.siteId),
      db
        .prepare(
          `${range}
INSERT INTO identities (type, value, profile_id, source_message_id, created_at)
SELECT 'anonymous_id', 'anon-seed-' || n.i, ${pid}, ${messageId("0")}, ?3 FROM n
UNION ALL SELECT 'user_id', 'user-seed-' || n.i, ${pid}, ${messageId("1")}, ?3 FROM n WHERE ${identified}
UNION ALL SELECT 'email', ${email}, ${pid}, ${messageId("1")}, ?3 FROM n WHERE ${identified}`,
        )
        .bind(from, to, o.now),
      db
        .prepare(
          `${range}
INSERT INTO events (site_id, message_id, profile_id, type, event, name, properties, traits, context, user_id,
  anonymous_id, timestamp, received_at)
SELECT ?4, ${messageId("t.k")}, ${pid}, t.type, t.event, NULL,
  CASE WHEN t.type = 'identify' THEN '{}' ELSE t.properties END,
  CASE WHEN t.type = 'identify' THEN json_object('email', ${email}, 'name', ${name}, 'plan', ${plan}) END,
  t.context,
  CASE WHEN ${identified} AND t.k >= 1 THEN 'user-seed-' || n.i END,
  'anon-seed-' || n.i, ?3 + t.at - ${jitter}, ?3 + t.at - ${jitter}
FROM n JOIN bench_templates t ON t.a = n.i % ${ARCHETYPES}`,
        )
        .bind(from, to, o.now, o.siteId),
    ]);
    identities += results[1].meta.changes;
  }
  await db.batch([
    db.prepare(
      `INSERT INTO metrics (name, day, value)
       SELECT 'events', CAST(timestamp / ${DAY} AS INTEGER), COUNT(*) FROM events GROUP BY 2
       UNION ALL SELECT 'events', 0, COUNT(*) FROM events`,
    ),
    db.prepare("DROP TABLE bench_templates"),
    db.prepare("DROP TABLE bench_archetypes"),
  ]);
  return {
    profiles: o.profiles,
    identities,
    events: o.profiles * o.eventsPerProfile,
    ms: Date.now() - started,
  };
}

/** Seeds the raw-insert baseline's table with `rows` events of the size the load process sends. */
export async function seedBaseline(db: D1Database, rows: number): Promise<void> {
  const body = JSON.stringify({
    type: "page",
    anonymousId: "anon-seed-0",
    properties: { path: "/p/1", url: "https://shop.example/p/1" },
    timestamp: new Date(0).toISOString(),
  });
  for (let from = 1; from <= rows; from += 200_000) {
    await db
      .prepare(`${range} INSERT INTO raw_events (message_id, body) SELECT printf('seed-%08d', n.i), ?3 FROM n`)
      .bind(from, Math.min(rows, from + 199_999), body)
      .run();
  }
}

// ---------------------------------------------------------------------------------------------
// Rows per event

/** Rows a statement read and wrote, summed over the calls that ran it. */
export interface StatementCost {
  sql: string;
  calls: number;
  rowsRead: number;
  rowsWritten: number;
  /** D1's own `meta.duration`: milliseconds executing the statement inside the database. */
  sqlMs: number;
}

/** What a wrapped D1 database saw: D1's own per-statement `meta` counters, summed. */
export class Meter {
  rowsRead = 0;
  rowsWritten = 0;
  statements = 0;
  roundTrips = 0;
  /** Milliseconds during which at least one D1 call was in flight. */
  busyMs = 0;
  bySql = new Map<string, StatementCost>();
  private inflight = 0;
  private since = 0;

  reset(): void {
    this.rowsRead = 0;
    this.rowsWritten = 0;
    this.statements = 0;
    this.roundTrips = 0;
    this.busyMs = 0;
    this.bySql.clear();
  }

  async call<T>(run: () => Promise<T>, metas: (value: T) => (D1Meta | undefined)[], sqls: string[]): Promise<T> {
    if (this.inflight++ === 0) this.since = performance.now();
    try {
      const value = await run();
      this.roundTrips++;
      metas(value).forEach((meta, i) => {
        const read = meta?.rows_read ?? 0;
        const written = meta?.rows_written ?? 0;
        this.statements++;
        this.rowsRead += read;
        this.rowsWritten += written;
        const sql = sqls[i].replace(/\s+/g, " ").trim().slice(0, 90);
        const cost = this.bySql.get(sql) ?? { sql, calls: 0, rowsRead: 0, rowsWritten: 0, sqlMs: 0 };
        cost.calls++;
        cost.sqlMs += meta?.duration ?? 0;
        cost.rowsRead += read;
        cost.rowsWritten += written;
        this.bySql.set(sql, cost);
      });
      return value;
    } finally {
      if (--this.inflight === 0) this.busyMs += performance.now() - this.since;
    }
  }
}

interface Pending {
  sql: string;
  values: unknown[];
}

/**
 * A D1 database that reports every statement's `meta.rows_read/rows_written` to `meter`.
 * Statements are only built on the real database when they run, inside the timed call, so the
 * cost of reaching D1 (Miniflare's proxy blocks on `prepare`/`bind`) never counts as the
 * caller's JavaScript time. `first()` and `run()` go through `all()` so their meta is seen too;
 * `raw()` (drizzle) is not used by the pipeline and is refused, so nothing is missed silently.
 */
export function metered(db: D1Database, meter: Meter): D1Database {
  const pending = new WeakMap<object, Pending>();
  const realize = ({ sql, values }: Pending) => db.prepare(sql).bind(...values);
  const wrap = (p: Pending): D1PreparedStatement => {
    const all = () =>
      meter.call(
        () => realize(p).all(),
        (r) => [r.meta],
        [p.sql],
      );
    const statement = {
      bind: (...values: unknown[]) => wrap({ sql: p.sql, values }),
      all,
      run: all,
      async first(column?: string) {
        const row = (await all()).results[0] as Record<string, unknown> | undefined;
        if (row === undefined) return null;
        return column === undefined ? row : row[column];
      },
      raw() {
        throw new Error("metered D1: raw() is not measured");
      },
    } as unknown as D1PreparedStatement;
    pending.set(statement, p);
    return statement;
  };
  const unwrap = (s: D1PreparedStatement): Pending => {
    const p = pending.get(s);
    if (!p) throw new Error("metered D1: a statement from another database");
    return p;
  };
  return {
    prepare: (sql: string) => wrap({ sql, values: [] }),
    batch: <T>(statements: D1PreparedStatement[]) => {
      const list = statements.map(unwrap);
      return meter.call(
        () => db.batch<T>(list.map(realize)),
        (results) => results.map((r) => r.meta),
        list.map((p) => p.sql),
      );
    },
    exec: (sql: string) => db.exec(sql),
    dump: () => db.dump(),
    withSession: () => {
      throw new Error("metered D1: sessions are not measured");
    },
  } as unknown as D1Database;
}

export interface RowsFigure {
  kind: string;
  events: number;
  rowsReadPerEvent: number;
  rowsWrittenPerEvent: number;
  /** D1 round trips (a `batch()` is one) and statements for the whole batch of events. */
  roundTrips: number;
  statements: number;
  /** Wall time of the consumer batch per event, and the part not spent waiting for D1 (JS). */
  msPerEvent: number;
  jsMsPerEvent: number;
  /** The statements that wrote the most rows. */
  top: StatementCost[];
}

const SITE = "site_rows";

const topStatements = (meter: Meter) =>
  [...meter.bySql.values()].sort((a, b) => b.rowsWritten - a.rowsWritten || b.rowsRead - a.rowsRead).slice(0, 6);

function event(e: Partial<NormalizedEvent> & Pick<NormalizedEvent, "type" | "messageId">, at: number): NormalizedEvent {
  return {
    anonymousId: null,
    userId: null,
    previousId: null,
    groupId: null,
    event: null,
    name: null,
    properties: {},
    traits: {},
    context: {
      library: { name: "analytics.js", version: "5.2.0" },
      device: { browser: "Chrome", os: "macOS" },
      geo: { country: "DE" },
    },
    timestamp: at,
    receivedAt: at,
    flags: [],
    verified: false,
    ...e,
  };
}

/**
 * Rows read and written per event for each kind, measured on a consumer batch of `batch` events
 * on `batch` distinct profiles (every event on its own profile: the case where batching per
 * profile saves nothing). `db` and `baseDb` must be freshly migrated (Tessera's and the
 * baseline's schema); the segments of `SEGMENTS` are created first so counters and memberships
 * are paid for as in production.
 */
export async function measureRows(db: D1Database, baseDb: D1Database, batch = 20): Promise<RowsFigure[]> {
  let now = Date.now();
  await db
    .prepare(
      `INSERT INTO sites (id, name, write_key, allowed_origins, identity_verification, verification_secret,
         identity_policy, created_at, updated_at) VALUES (?1, 'rows', 'wk_rows', '[]', 0, 'ivs_rows', '{}', ?2, ?2)`,
    )
    .bind(SITE, now)
    .run();
  for (const s of SEGMENTS) {
    const rule: Condition = ruleInput.parse(s.rule);
    await saveSegment(db, { key: s.key, name: s.name, rule }, now, "create");
  }

  const meter = new Meter();
  const env = { DB: metered(db, meter) };
  const figures: RowsFigure[] = [];
  let seq = 0;
  /**
   * Measures `batches` consumer batches of `batch` events each (`make(j)` is event j of a batch):
   * the first `later` ms after the previous run, the others a minute apart, as a visit's pages.
   */
  const run = async (kind: string | null, make: (j: number) => Partial<NormalizedEvent>, later = 1000, batches = 1) => {
    meter.reset();
    let ms = 0;
    for (let b = 0; b < batches; b++) {
      now += b === 0 ? later : MINUTE;
      const events = Array.from({ length: batch }, (_, j) =>
        event({ type: "page", messageId: `rows-${seq++}`, ...make(j) }, now),
      );
      const body: QueuedBatch = { v: 1, siteId: SITE, events };
      const t0 = performance.now();
      const result = await processBatch(env, [body], now);
      ms += performance.now() - t0;
      if (result.stored !== batch) throw new Error(`${kind ?? "setup"}: stored ${result.stored} of ${batch} events`);
    }
    if (kind === null) return;
    const events = batch * batches;
    figures.push({
      kind,
      events,
      rowsReadPerEvent: meter.rowsRead / events,
      rowsWrittenPerEvent: meter.rowsWritten / events,
      roundTrips: meter.roundTrips / batches,
      statements: meter.statements / batches,
      msPerEvent: ms / events,
      jsMsPerEvent: Math.max(0, ms - meter.busyMs) / events,
      top: topStatements(meter),
    });
  };
  const page = (j: number) => ({ path: `/p/${j}`, url: `https://shop.example/p/${j}`, title: `Product ${j}` });

  await run("page view, new visitor", (j) => ({ type: "page", anonymousId: `a-${j}`, properties: page(j) }));
  // A second page view a second later: last_seen_at moves, its sort key and index entry do not.
  await run("page view, existing profile, same visit", (j) => ({
    type: "page",
    anonymousId: `a-${j}`,
    properties: page(j + 1),
  }));
  // Back three days later: the sort key and its index entry move, and today's counter is new.
  await run(
    "page view, existing profile, returning after days",
    (j) => ({ type: "page", anonymousId: `a-${j}`, properties: page(j + 3) }),
    3 * DAY,
  );
  // The same page views from fewer, busier visitors: the batch writes each profile once. They are
  // engaged already (a setup batch of as many views), so the measured batch changes no membership.
  const busy = (j: number) => ({
    type: "page" as const,
    anonymousId: `busy-${j % Math.ceil(batch / 5)}`,
    properties: page(j),
  });
  await run(null, busy);
  await run("page view, existing profile, 5 per profile in the batch", busy);
  await run("track, existing profile", (j) => ({
    type: "track",
    anonymousId: `a-${j}`,
    event: "Product Added",
    properties: { sku: `sku-${j}`, price: 19 },
  }));
  await run("track counted by a segment, enters it", (j) => ({
    type: "track",
    anonymousId: `a-${j}`,
    event: "Order Completed",
    properties: { revenue: 42.5 },
  }));
  await run("track counted by a segment", (j) => ({
    type: "track",
    anonymousId: `a-${j}`,
    event: "Order Completed",
    properties: { revenue: 10 },
  }));
  // Two devices of the same person: one signed in (user id), one still anonymous.
  await run("identify, new user", (j) => ({
    type: "identify",
    anonymousId: `phone-${j}`,
    userId: `u-${j}`,
    traits: { email: `u${j}@example.com`, plan: "pro" },
  }));
  await run(null, (j) => ({ type: "page", anonymousId: `laptop-${j}`, properties: page(j) }));
  await run("identify that merges two profiles", (j) => ({
    type: "identify",
    anonymousId: `laptop-${j}`,
    userId: `u-${j}`,
    traits: { name: `User ${j}` },
  }));

  // Last, because it moves the clock days ahead. A whole visit after days away: its first view moves the sort key (above), the next two don't.
  // Visitors seen once before, so the visit crosses no segment's threshold.
  const back = (j: number) => ({ type: "page" as const, anonymousId: `back-${j}`, properties: page(j) });
  await run(null, back);
  await run("page view, existing profile, a 3-page visit after days (all 3 views)", back, 3 * DAY, 3);
  // The baseline's one statement per event (bench/baseline/worker.ts), measured the same way.
  const baseMeter = new Meter();
  const base = metered(baseDb, baseMeter);
  const insert = base.prepare("INSERT OR IGNORE INTO raw_events (message_id, body) VALUES (?, ?)");
  const rows = Array.from({ length: batch }, (_, j) =>
    event({ type: "page", messageId: `base-${j}`, anonymousId: `a-${j}`, properties: page(j) }, now),
  );
  const t0 = performance.now();
  await base.batch(rows.map((m) => insert.bind(m.messageId, JSON.stringify(m))));
  const ms = performance.now() - t0;
  figures.push({
    kind: "baseline: raw insert",
    events: batch,
    rowsReadPerEvent: baseMeter.rowsRead / batch,
    rowsWrittenPerEvent: baseMeter.rowsWritten / batch,
    roundTrips: baseMeter.roundTrips,
    statements: baseMeter.statements,
    msPerEvent: ms / batch,
    jsMsPerEvent: Math.max(0, ms - baseMeter.busyMs) / batch,
    top: topStatements(baseMeter),
  });
  return figures;
}
