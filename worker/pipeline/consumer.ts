/**
 * The queue consumers: `tessera-events` (the single-writer pipeline) and its dead-letter queue.
 */
import type { Env } from "../env";
import { afterPipelineBatch } from "../segments/pipeline";
import { processBatch, StorageError } from "./process";

/** Storage failures in a row, one message at a time, after which D1 is taken to be down. */
const OUTAGE_AFTER = 3;

/**
 * Consumes a batch of `QueuedBatch` messages. Success acks everything at once. A first D1
 * failure throws, so the queue redelivers the whole batch (nothing was written; redelivery is
 * safe). Any other failure — or a D1 failure of a batch already redelivered, which may be a
 * message D1 refuses every time — means one message may be poison: the messages are then
 * processed one by one, so that the good ones go through and only the bad one is retried; after
 * max_retries it lands in the dead-letter queue instead of taking the others with it.
 */
export async function consumeEvents(batch: MessageBatch<unknown>, env: Env, ctx: ExecutionContext): Promise<void> {
  const now = Date.now();
  try {
    await processBatch(
      env,
      batch.messages.map((m) => m.body),
      now,
    );
    batch.ackAll();
  } catch (err) {
    const redelivered = batch.messages.some((m) => m.attempts > 1);
    if ((err instanceof StorageError && !redelivered) || batch.messages.length === 1) throw err;
    let storageFailures = 0;
    for (const message of batch.messages) {
      // D1 is down rather than refusing one message: retry the rest without hammering it.
      if (storageFailures >= OUTAGE_AFTER) {
        message.retry();
        continue;
      }
      try {
        await processBatch(env, [message.body], now);
        message.ack();
        storageFailures = 0;
      } catch (single) {
        if (single instanceof StorageError) storageFailures++;
        console.error("pipeline: message failed, will retry", message.id, single);
        message.retry();
      }
    }
  }
  // The segments module relays its outbox now that the batch committed (the cron catches up if
  // this fails).
  ctx.waitUntil(
    afterPipelineBatch(env, now).catch((err: unknown) => console.error("pipeline: after-batch hook failed", err)),
  );
}

/** Records messages that exhausted their retries, so they are visible in `GET /api/dead-letters`. */
export async function recordDeadLetters(batch: MessageBatch<unknown>, env: Env): Promise<void> {
  const now = Date.now();
  const statements = batch.messages.map((m) =>
    env.DB.prepare("INSERT OR IGNORE INTO dead_letters (id, queue, body, created_at) VALUES (?, ?, ?, ?)").bind(
      // The queue's message id: a redelivered dead letter is recorded once.
      `dl_${m.id}`,
      batch.queue,
      JSON.stringify(m.body) ?? "null",
      now,
    ),
  );
  if (statements.length > 0) await env.DB.batch(statements);
  batch.ackAll();
}
