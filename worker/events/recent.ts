/**
 * The ring behind the live debugger (`recent_events`, db/schema.ts): the keys of the latest
 * stored events, written by the pipeline in its own atomic batch, so the feed never shows an
 * event that was rolled back and costs 1 row written per batch instead of an index entry per event.
 */

/** Ring rows kept; with `KEYS_PER_ROW` this bounds what one poll looks at to 50,000 events. */
export const RING_ROWS = 500;
/** Event keys per ring row: a batch of 2,000 events takes 20 rows of ~8 KB each. */
export const KEYS_PER_ROW = 100;

/** What the ring keeps of a stored event: enough to filter by site and type, then fetch the row. */
export interface RecentKey {
  siteId: string;
  messageId: string;
  type: string;
}

// `seq` is the rowid, so each max()/min() below is one B-tree edge lookup, not a scan. The ring's
// seqs stay contiguous (appended at max + 1, recycled from min to max + 1), so max - min + 1 is the
// number of rows without counting them.
const newest = "(SELECT max(seq) FROM recent_events)";
const oldest = "(SELECT min(seq) FROM recent_events)";
const recycleSql = `UPDATE recent_events SET seq = ${newest} + 1, keys = ?1
  WHERE seq = ${oldest} AND ${newest} - ${oldest} + 1 >= ?2`;
const growSql = `INSERT INTO recent_events (seq, keys) SELECT coalesce(${newest}, 0) + 1, ?1
  WHERE coalesce(${newest} - ${oldest} + 1, 0) < ?2`;

/**
 * The statements that add `events` (in stored order, oldest first) to the ring: per row of up to
 * `KEYS_PER_ROW` keys, either recycle the oldest row under the next seq (the ring is full) or
 * append one. Exactly one of the pair writes; an UPDATE of the rowid is 1 row written in D1.
 */
export function recentEventWrites(db: D1Database, events: readonly RecentKey[]): D1PreparedStatement[] {
  const out: D1PreparedStatement[] = [];
  for (let i = 0; i < events.length; i += KEYS_PER_ROW) {
    // Newest first, so the feed reads a row's keys in array order (see latestEvents).
    const keys = JSON.stringify(
      events
        .slice(i, i + KEYS_PER_ROW)
        .map((e) => [e.siteId, e.messageId, e.type])
        .reverse(),
    );
    out.push(db.prepare(recycleSql).bind(keys, RING_ROWS), db.prepare(growSql).bind(keys, RING_ROWS));
  }
  return out;
}
