/**
 * The queue consumers: `tessera-events` (the single-writer pipeline) and its dead-letter queue.
 */
import type { Env } from "../env";
import { afterPipelineBatch } from "../segments/pipeline";
import { processBatch, StorageError } from "./process";

/**
 * Consumes a batch of `QueuedBatch` messages. Success acks everything at once. A D1 failure
 * throws, so the queue redelivers the whole batch (nothing was written; redelivery is safe). Any
 * other failure is an event the code can't handle: the messages are then processed one by one,
 * so that the good ones go through and only the bad one is retried — after max_retries it lands
 * in the dead-letter queue instead of blocking the others forever.
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
    if (err instanceof StorageError || batch.messages.length === 1) throw err;
    for (const message of batch.messages) {
      try {
        await processBatch(env, [message.body], now);
        message.ack();
      } catch (single) {
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
