/**
 * The consumer's guard on what arrives from the queue. Ingest produced it with our own code, so
 * this is a check, not a second normalisation: a message that does not fit can't be processed
 * the same way twice, and goes to the dead letters instead of into the graph.
 */
import { z } from "zod";
import type { QueuedBatch } from "../wire/queue";

const id = z.string().min(1).max(200);
const record = z.record(z.string(), z.unknown());

export const normalizedEventSchema = z.object({
  type: z.enum(["track", "identify", "page", "screen", "group", "alias"]),
  messageId: id,
  anonymousId: id.nullable(),
  userId: id.nullable(),
  previousId: id.nullable(),
  groupId: id.nullable(),
  event: z.string().max(1000).nullable(),
  name: z.string().max(1000).nullable(),
  properties: record,
  traits: record,
  context: record,
  timestamp: z.number().int(),
  receivedAt: z.number().int(),
  flags: z.array(z.string().max(100)).max(20),
  verified: z.boolean(),
});

export const queuedBatchSchema = z.object({
  v: z.literal(1),
  siteId: z.string().min(1).max(100),
  events: z.array(normalizedEventSchema).max(5000),
});

/** Parses a queue message body; null when it is not a `QueuedBatch`. */
export function parseQueuedBatch(body: unknown): QueuedBatch | null {
  const parsed = queuedBatchSchema.safeParse(body);
  return parsed.success ? parsed.data : null;
}
