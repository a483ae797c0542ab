/**
 * Packing accepted events into queue messages and `sendBatch` calls within the Queues limits
 * (128 KB per message; 100 messages and 256 KB per `sendBatch`), measured on the JSON that is
 * actually sent (`contentType: "json"`).
 */
import type { NormalizedEvent, QueuedBatch } from "../wire/queue";
import { SERVER_CONTEXT_KEYS } from "./enrich";
import { eventSizeBound } from "./normalize";
import { utf8Length } from "./sanitize";

/** Target size of one queue message: well under the 128 KB limit. */
export const MAX_QUEUE_MESSAGE_BYTES = 100_000;
/** Per `sendBatch` call (the limit is 256 KB; the margin covers per-message metadata). */
export const MAX_SEND_BYTES = 240_000;
export const MAX_SEND_MESSAGES = 100;

export interface Packed {
  batch: QueuedBatch;
  bytes: number;
}

// Enrichment values are shared by the events of a request (one geo, one device per user agent).
const valueBytes = new WeakMap<object, number>();

/** Bytes the server's context keys add to an event (what normalizeMessage's bound leaves out). */
function enrichmentBytes(context: Record<string, unknown>): number {
  let bytes = 0;
  for (const key of SERVER_CONTEXT_KEYS) {
    const value = context[key];
    if (value === undefined) continue;
    let n = typeof value === "object" && value !== null ? valueBytes.get(value) : undefined;
    if (n === undefined) {
      n = utf8Length(JSON.stringify(value));
      if (typeof value === "object" && value !== null) valueBytes.set(value, n);
    }
    bytes += key.length + 4 + n;
  }
  return bytes;
}

/**
 * The whole request in one message when the events' size bounds say it fits, which is the
 * common case (a page's few events): then no event is serialised just to be measured.
 */
function packedWhole(siteId: string, events: NormalizedEvent[], overhead: number): Packed | null {
  if (events.length === 0) return null;
  let bytes = overhead;
  for (const event of events) {
    const bound = eventSizeBound(event);
    if (bound === undefined) return null;
    bytes += bound + enrichmentBytes(event.context) + 1;
    if (bytes > MAX_QUEUE_MESSAGE_BYTES) return null;
  }
  return { batch: { v: 1, siteId, events }, bytes };
}

/** Splits one site's events into QueuedBatch messages of at most ~100 KB each, keeping their order. */
export function packEvents(siteId: string, events: NormalizedEvent[]): Packed[] {
  const overhead = utf8Length(JSON.stringify({ v: 1, siteId, events: [] } satisfies QueuedBatch));
  const whole = packedWhole(siteId, events, overhead);
  if (whole) return [whole];
  const out: Packed[] = [];
  let current: NormalizedEvent[] = [];
  let bytes = overhead;
  for (const event of events) {
    // +1 for the comma between events. One event is ≤ 32 KB plus enrichment, so it always fits alone.
    const size = utf8Length(JSON.stringify(event)) + 1;
    if (current.length > 0 && bytes + size > MAX_QUEUE_MESSAGE_BYTES) {
      out.push({ batch: { v: 1, siteId, events: current }, bytes });
      current = [];
      bytes = overhead;
    }
    current.push(event);
    bytes += size;
  }
  if (current.length > 0) out.push({ batch: { v: 1, siteId, events: current }, bytes });
  return out;
}

/** Groups packed messages into `sendBatch` calls within the per-call count and size limits. */
export function sendCalls(packed: Packed[]): QueuedBatch[][] {
  const calls: QueuedBatch[][] = [];
  let call: QueuedBatch[] = [];
  let bytes = 0;
  for (const p of packed) {
    if (call.length > 0 && (call.length === MAX_SEND_MESSAGES || bytes + p.bytes > MAX_SEND_BYTES)) {
      calls.push(call);
      call = [];
      bytes = 0;
    }
    call.push(p.batch);
    bytes += p.bytes;
  }
  if (call.length > 0) calls.push(call);
  return calls;
}

/**
 * Makes the events durable on the queue; resolves only when every `sendBatch` resolved. A partial
 * failure rejects: the client retries the whole request and the consumer drops the messageIds it
 * already stored.
 */
export async function enqueueEvents(queue: Queue<unknown>, siteId: string, events: NormalizedEvent[]): Promise<void> {
  const calls = sendCalls(packEvents(siteId, events));
  await Promise.all(calls.map((call) => queue.sendBatch(call.map((body) => ({ body, contentType: "json" as const })))));
}
