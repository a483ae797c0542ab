/**
 * One consumer batch, start to finish: read → decide → one atomic write.
 *
 * Safe to run twice on the same input (redelivery): stored messageIds are skipped, so effects
 * happen once. Safe to run concurrently with itself (the queue never does — max_concurrency = 1 —
 * but the API's unmerge/erase and a second consumer could): every write batch starts with a guard
 * on what it read and inserts identities/events without OR IGNORE, so a batch that lost a race
 * rolls back whole and is decided again from a fresh read.
 */
import { sha256Hex } from "../lib/ids";
import { planSegmentWrites } from "../segments/pipeline";
import { loadSegments, type SegmentSet } from "../segments/store";
import type { QueuedBatch } from "../wire/queue";
import { parseQueuedBatch } from "./message";
import { planBatch, type SiteEvent } from "./plan";
import { readState } from "./read";
import { writeStatements } from "./write";

/** D1 failed (unreachable, or lost the same race three times): retry the whole batch later. */
export class StorageError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = "StorageError";
  }
}

export interface BatchResult {
  stored: number;
  duplicates: number;
  suppressed: number;
  dropped: number;
  merges: number;
  /** Messages that were not a QueuedBatch (recorded in dead_letters). */
  invalid: number;
  /** Write attempts (more than 1 after a lost race). */
  attempts: number;
  /** D1's rows_written summed over the write batch. */
  rowsWritten: number;
}

const ATTEMPTS = 3;

async function deadLetter(db: D1Database, body: unknown, now: number) {
  const text = JSON.stringify(body) ?? "null";
  // A deterministic id: a redelivered bad message is recorded once.
  const id = `dl_${(await sha256Hex(text)).slice(0, 32)}`;
  return db
    .prepare("INSERT OR IGNORE INTO dead_letters (id, queue, body, created_at) VALUES (?, ?, ?, ?)")
    .bind(id, "tessera-events", text, now);
}

/**
 * Processes queue message bodies (each a `QueuedBatch`) at time `now`. Throws `StorageError` when
 * D1 fails (the caller retries the batch); any other error is a bug triggered by some event.
 */
export async function processBatch(
  env: { DB: D1Database },
  bodies: readonly unknown[],
  now: number,
): Promise<BatchResult> {
  const db = env.DB;
  const input: SiteEvent[] = [];
  const invalid: unknown[] = [];
  for (const body of bodies) {
    const batch: QueuedBatch | null = parseQueuedBatch(body);
    if (!batch) invalid.push(body);
    else for (const event of batch.events) input.push({ siteId: batch.siteId, event });
  }
  const letters = await Promise.all(invalid.map((body) => deadLetter(db, body, now)));

  let lastError: unknown;
  for (let attempt = 1; attempt <= ATTEMPTS; attempt++) {
    let segs: SegmentSet;
    let state: Awaited<ReturnType<typeof readState>>;
    try {
      // Segments first: the write is guarded on this set, so a segment saved after this read
      // (its back-fill rewrites counters) aborts the write instead of being overwritten by it.
      segs = await loadSegments(db);
      state = await readState(db, input);
    } catch (err) {
      throw new StorageError("reading the batch's state failed", { cause: err });
    }
    const plan = planBatch(input, state, { matchers: segs.matchers, firstDay: segs.firstDay(now) }, now);
    const statements = [...writeStatements(db, plan, segs.heads), ...letters];
    if (plan.deltas.length > 0) statements.push(...(await planSegmentWrites(db, segs, plan.deltas, now)));
    const result: BatchResult = {
      stored: plan.events.length,
      ...plan.counts,
      merges: plan.merges.length,
      invalid: invalid.length,
      attempts: attempt,
      rowsWritten: 0,
    };
    if (statements.length === 0) return result;
    try {
      const results = await db.batch(statements);
      result.rowsWritten = results.reduce((sum, r) => sum + (r.meta?.rows_written ?? 0), 0);
      return result;
    } catch (err) {
      // A lost race (guard, or an identifier/messageId stored meanwhile) or a D1 fault: either
      // way nothing was written; read again and decide again.
      lastError = err;
    }
  }
  throw new StorageError(`writing the batch failed ${ATTEMPTS} times`, { cause: lastError });
}
