/**
 * The consumer's guard on what arrives from the queue. Ingest produced it with our own code, so
 * this is a check, not a second normalisation: a message that does not fit can't be processed
 * the same way twice, and goes to the dead letters instead of into the graph. The zod schemas
 * state the contract (and serve tests); `parseQueuedBatch` checks it without zod, for speed.
 */
import { z } from "zod";
import type { NormalizedEvent, QueuedBatch } from "../wire/queue";

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

const EVENT_TYPES = new Set<string>(normalizedEventSchema.shape.type.options);

const isString = (v: unknown, min: number, max: number): v is string =>
  typeof v === "string" && v.length >= min && v.length <= max;
const isId = (v: unknown) => v === null || isString(v, 1, 200);
const isText = (v: unknown) => v === null || isString(v, 0, 1000);
const isInt = (v: unknown): v is number => Number.isSafeInteger(v);

function isPlainRecord(v: unknown): v is Record<string, unknown> {
  if (v === null || typeof v !== "object" || Array.isArray(v)) return false;
  const proto = Object.getPrototypeOf(v);
  return proto === Object.prototype || proto === null;
}

/** A record as zod's would output it: an own `__proto__` key (JSON.parse makes them) is dropped. */
function withoutProtoKey(v: Record<string, unknown>): Record<string, unknown> {
  if (!Object.hasOwn(v, "__proto__")) return v;
  const out: Record<string, unknown> = {};
  for (const key of Object.keys(v)) if (key !== "__proto__") out[key] = v[key];
  return out;
}

/** One event as `normalizedEventSchema` would output it (known keys only), or null. */
function guardEvent(v: unknown): NormalizedEvent | null {
  if (!isPlainRecord(v)) return null;
  const { type, messageId, flags } = v;
  if (typeof type !== "string" || !EVENT_TYPES.has(type) || !isString(messageId, 1, 200)) return null;
  if (!isId(v.anonymousId) || !isId(v.userId) || !isId(v.previousId) || !isId(v.groupId)) return null;
  if (!isText(v.event) || !isText(v.name)) return null;
  if (!isPlainRecord(v.properties) || !isPlainRecord(v.traits) || !isPlainRecord(v.context)) return null;
  if (!isInt(v.timestamp) || !isInt(v.receivedAt) || typeof v.verified !== "boolean") return null;
  if (!Array.isArray(flags) || flags.length > 20 || !flags.every((f) => isString(f, 0, 100))) return null;
  return {
    type: type as NormalizedEvent["type"],
    messageId,
    anonymousId: v.anonymousId as string | null,
    userId: v.userId as string | null,
    previousId: v.previousId as string | null,
    groupId: v.groupId as string | null,
    event: v.event as string | null,
    name: v.name as string | null,
    properties: withoutProtoKey(v.properties),
    traits: withoutProtoKey(v.traits),
    context: withoutProtoKey(v.context),
    timestamp: v.timestamp,
    receivedAt: v.receivedAt,
    flags: flags as string[],
    verified: v.verified,
  };
}

/**
 * Parses a queue message body; null when it is not a `QueuedBatch`. Accepts exactly what
 * `queuedBatchSchema` accepts (test/pipeline/message-guard.test.ts checks both on generated
 * bodies), checked by hand: this runs for every event the consumer stores, and zod without its
 * compiled fast path (Workers forbid `new Function`) cost more CPU here than the rest of the
 * guard-to-plan work of a page view.
 */
export function parseQueuedBatch(body: unknown): QueuedBatch | null {
  if (!isPlainRecord(body) || body.v !== 1 || !isString(body.siteId, 1, 100)) return null;
  const { events } = body;
  if (!Array.isArray(events) || events.length > 5000) return null;
  const out: NormalizedEvent[] = [];
  for (const raw of events) {
    const event = guardEvent(raw);
    if (event === null) return null;
    out.push(event);
  }
  return { v: 1, siteId: body.siteId, events: out };
}
