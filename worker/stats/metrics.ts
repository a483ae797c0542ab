/**
 * The `metrics` running totals. Writers (the pipeline, merges) append these statements to their
 * own atomic batch, so a total moves exactly when the change it counts commits; the stats routes
 * read them instead of counting millions of rows.
 */

export const DAY_MS = 86_400_000;

/** Days since the epoch (UTC), the `metrics.day` of a time; day 0 holds all-time totals. */
export const dayOf = (ms: number) => Math.floor(ms / DAY_MS);

/** Prefix of the per-day counts of track events by name (`event:Order Completed`). */
export const EVENT_METRIC_PREFIX = "event:";
/** Sorts just after every `event:…` name (`;` follows `:`): the end of their key range. */
export const EVENT_METRIC_END = "event;";

/** Stored events per UTC day of event time; its all-time total is the sum of its days. */
export const EVENTS_METRIC = "events";

/** `[name, day, increment]` */
export type MetricRow = [string, number, number];

/**
 * Rows adding one to `name` for the day of each time given and, unless `allTime` is false (a
 * metric whose total is the sum of its days), for day 0.
 */
export function metricRows(name: string, times: readonly number[], allTime = true): MetricRow[] {
  if (times.length === 0) return [];
  const perDay = new Map<number, number>(allTime ? [[0, times.length]] : []);
  for (const t of times) perDay.set(dayOf(t), (perDay.get(dayOf(t)) ?? 0) + 1);
  return [...perDay].map(([day, n]) => [name, day, n]);
}

/**
 * Rows counting track events per name and day of event time. No all-time row: the overview reads
 * windows of days. One row per (name, day) in a batch, so the cost is bounded by the batch's events.
 */
export function eventNameRows(events: readonly { type: string; event: string | null; timestamp: number }[]) {
  const counts = new Map<string, MetricRow>();
  for (const e of events) {
    if (e.type !== "track" || !e.event) continue;
    const name = EVENT_METRIC_PREFIX + e.event;
    const key = `${dayOf(e.timestamp)}\u0000${name}`;
    const row = counts.get(key) ?? [name, dayOf(e.timestamp), 0];
    row[2]++;
    counts.set(key, row);
  }
  return [...counts.values()];
}

/** Upserts that add the rows' increments (multi-row, under D1's 100 bound parameters each). */
export function metricUpserts(db: D1Database, rows: readonly MetricRow[]): D1PreparedStatement[] {
  const out: D1PreparedStatement[] = [];
  const per = 33;
  for (let i = 0; i < rows.length; i += per) {
    const part = rows.slice(i, i + per);
    out.push(
      db
        .prepare(
          `INSERT INTO metrics (name, day, value) VALUES ${part.map(() => "(?, ?, ?)").join(", ")}
           ON CONFLICT (name, day) DO UPDATE SET value = metrics.value + excluded.value`,
        )
        .bind(...part.flat()),
    );
  }
  return out;
}

/** Adds one to `name` for day 0 and for the day of each time given. */
export function metricStatements(db: D1Database, name: string, times: readonly number[]): D1PreparedStatement[] {
  return metricUpserts(db, metricRows(name, times));
}

/** The running totals of live profiles, and of live identified ones, kept at day 0. */
export const PROFILES_TOTAL = "profiles";
export const IDENTIFIED_TOTAL = "identified_profiles";

/**
 * Adds `sign` × (how many of `ids` are live, and live and identified) to the profile totals.
 * CROSS JOIN: walk the ids and probe the primary key, never scan profiles. The upsert skips a
 * zero change, so an unchanged total writes nothing.
 */
function profileTotalsDelta(db: D1Database, ids: readonly string[], sign: 1 | -1): D1PreparedStatement {
  const live = "FROM json_each(?1) j CROSS JOIN profiles p ON p.id = j.value WHERE p.merged_into IS NULL";
  return db
    .prepare(
      `INSERT INTO metrics (name, day, value)
       SELECT ?3, 0, ?2 * count(*) ${live}
       UNION ALL SELECT ?4, 0, ?2 * count(*) ${live} AND p.identified = 1
       ON CONFLICT (name, day) DO UPDATE SET value = metrics.value + excluded.value WHERE excluded.value <> 0`,
    )
    .bind(JSON.stringify(ids), sign, PROFILES_TOTAL, IDENTIFIED_TOTAL);
}

/**
 * Wraps statements that may create, merge away, restore, erase or (un)identify the profiles
 * `ids` so the profile totals follow: the first statement subtracts what those ids counted for
 * before, the last adds what they count for after. The delta is computed by SQL inside the
 * caller's atomic batch, so no writer has to know the prior state, and a batch that rolls back
 * leaves the totals untouched.
 */
export function withProfileTotals(
  db: D1Database,
  ids: readonly string[],
  statements: D1PreparedStatement[],
): D1PreparedStatement[] {
  if (ids.length === 0) return statements;
  const unique = [...new Set(ids)];
  return [profileTotalsDelta(db, unique, -1), ...statements, profileTotalsDelta(db, unique, 1)];
}
