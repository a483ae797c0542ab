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

/** `[name, day, increment]` */
export type MetricRow = [string, number, number];

/** Rows adding one to `name` for day 0 (all time) and for the day of each time given. */
export function metricRows(name: string, times: readonly number[]): MetricRow[] {
  if (times.length === 0) return [];
  const perDay = new Map<number, number>([[0, times.length]]);
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
