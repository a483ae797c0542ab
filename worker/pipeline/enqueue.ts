/**
 * Sends events into the pipeline from inside the Worker (the CRM's manual contacts and CSV
 * imports): they travel the same queue as tracked events, so they are stitched the same way.
 */
import type { Env } from "../env";
import type { NormalizedEvent, QueuedBatch } from "../wire/queue";

/** Queue messages stay well under the 128 KB limit; sendBatch calls under 100 messages / 256 KB. */
const MAX_MESSAGE_BYTES = 100_000;
const MAX_CALL_BYTES = 240_000;
const MAX_CALL_MESSAGES = 100;

const size = (value: unknown) => new TextEncoder().encode(JSON.stringify(value)).length;

/** Packs events of one site into QueuedBatch messages of at most ~100 KB each. */
export function packEvents(siteId: string, events: NormalizedEvent[]): QueuedBatch[] {
  const out: QueuedBatch[] = [];
  let current: NormalizedEvent[] = [];
  let bytes = 0;
  for (const event of events) {
    const n = size(event) + 1;
    if (n > MAX_MESSAGE_BYTES)
      throw new RangeError(`event ${event.messageId} is larger than ${MAX_MESSAGE_BYTES} bytes`);
    if (current.length > 0 && bytes + n > MAX_MESSAGE_BYTES) {
      out.push({ v: 1, siteId, events: current });
      current = [];
      bytes = 0;
    }
    current.push(event);
    bytes += n;
  }
  if (current.length > 0) out.push({ v: 1, siteId, events: current });
  return out;
}

/**
 * Enqueues synthetic events for `siteId` (resolves once the queue accepted them all; throws if
 * it didn't, so the caller can answer 503). Returns the number of queue messages sent.
 */
export async function enqueueEvents(
  env: Pick<Env, "EVENTS">,
  siteId: string,
  events: NormalizedEvent[],
): Promise<number> {
  const messages = packEvents(siteId, events);
  let call: MessageSendRequest<unknown>[] = [];
  let bytes = 0;
  for (const body of messages) {
    const n = size(body);
    if (call.length >= MAX_CALL_MESSAGES || (call.length > 0 && bytes + n > MAX_CALL_BYTES)) {
      await env.EVENTS.sendBatch(call);
      call = [];
      bytes = 0;
    }
    call.push({ body, contentType: "json" });
    bytes += n;
  }
  if (call.length > 0) await env.EVENTS.sendBatch(call);
  return messages.length;
}
