/**
 * One Segment message in, one `NormalizedEvent` (or a reason) out: hygiene, the type's zod schema,
 * id cleaning, event time. Pure and synchronous; request-wide parts (enrichment, identity
 * verification, the clock) are passed in or applied by the route.
 */
import { type MessageType, messageSchemas, type ParsedMessage } from "../wire/events";
import type { NormalizedEvent } from "../wire/queue";
import { sanitizeObject, utf8Length } from "./sanitize";
import { eventTime, parseIsoDate } from "./time";

/** Segment's per-message limit, measured on the serialised message. */
export const MAX_MESSAGE_BYTES = 32 * 1024;
export const MAX_ID_LENGTH = 100;

// Values that clients send when they have no id (stringified nulls, SDK placeholders, zero ids);
// used as identities they would merge every visitor who sent them into one profile.
const ILLEGAL_IDS = new Set([
  "null",
  "undefined",
  "nan",
  "none",
  "nil",
  "true",
  "false",
  "-1",
  "[object object]",
  "anonymous",
  "guest",
  "not_authenticated",
  "distinct_id",
  "distinctid",
  "user_id",
  "userid",
  "id",
]);
// Segment's default blocklist pattern: "0", "00000000-0000-0000-0000-000000000000" (an unset IDFA), "--".
const ZEROS = /^[0-]*$/;

/** A usable id as a string, or null when the value is missing or a known placeholder. */
export function cleanId(value: string | number | null | undefined): string | null {
  if (value === null || value === undefined) return null;
  if (typeof value === "number" && !Number.isFinite(value)) return null;
  const id = String(value).trim();
  if (id === "" || id.length > MAX_ID_LENGTH || ZEROS.test(id) || ILLEGAL_IDS.has(id.toLowerCase())) return null;
  return id;
}

/**
 * What an event adds to the message it came from, whatever the message: its own field names,
 * nulls, two epoch times, a generated messageId, its flags, `verified`. Server enrichment of the
 * context is not included (pack.ts adds it).
 */
const EVENT_FIELDS_BYTES = 1_024;

// Serialised-size bounds of the events made here, so packing them into queue messages does not
// have to serialise them to measure them (a WeakMap: nothing is added to the event itself).
const sizeBounds = new WeakMap<NormalizedEvent, number>();
const contextBytes = new WeakMap<Record<string, unknown>, number>();

function batchContextBytes(context: Record<string, unknown> | null): number {
  if (context === null) return 0;
  let bytes = contextBytes.get(context);
  if (bytes === undefined) {
    bytes = utf8Length(JSON.stringify(context));
    contextBytes.set(context, bytes);
  }
  return bytes;
}

/**
 * An upper bound of `JSON.stringify(event)`'s UTF-8 bytes, before server enrichment, for events
 * made by `normalizeMessage` (undefined for others). Every byte of the message and of the batch
 * context appears at most twice in the event (`context.traits` is copied into an identify's
 * traits, `category` into a page's properties); zod only removes and trims.
 */
export function eventSizeBound(event: NormalizedEvent): number | undefined {
  return sizeBounds.get(event);
}

/** What a batch contributes to each of its messages. */
export interface BatchDefaults {
  sentAt: number | null;
  context: Record<string, unknown> | null;
}

export type Normalized =
  | {
      ok: true;
      event: NormalizedEvent;
      /** `context.userHash`, kept out of the event; the route checks it against the site secret. */
      userHash: string | null;
    }
  | { ok: false; reason: string };

const isRecord = (v: unknown): v is Record<string, unknown> => v !== null && typeof v === "object" && !Array.isArray(v);

function reasonOf(issues: { path: PropertyKey[]; message: string }[]): string {
  return issues
    .slice(0, 3)
    .map((i) => (i.path.length ? `${i.path.map(String).join(".")}: ${i.message}` : i.message))
    .join("; ");
}

function dateField(
  value: string | null | undefined,
  field: string,
): { ok: true; ms: number | null } | { ok: false; reason: string } {
  if (value === null || value === undefined) return { ok: true, ms: null };
  const ms = parseIsoDate(value);
  return ms === null ? { ok: false, reason: `${field} is not an ISO-8601 date` } : { ok: true, ms };
}

/**
 * Validates and normalises one message. `type` forces the message type (single-message routes,
 * where the path names it); batches read it from the message.
 */
export function normalizeMessage(
  raw: unknown,
  opts: { type?: MessageType; batch: BatchDefaults; receivedAt: number; newId?: () => string },
): Normalized {
  const clean = sanitizeObject(raw);
  if (!clean.ok) return clean;
  const input = clean.value;
  if (clean.bytes > MAX_MESSAGE_BYTES) {
    return { ok: false, reason: `message is larger than ${MAX_MESSAGE_BYTES / 1024} KB` };
  }
  if (opts.type) input.type = opts.type;
  const type = input.type;
  if (typeof type !== "string" || !Object.hasOwn(messageSchemas, type)) {
    return { ok: false, reason: `type must be one of ${Object.keys(messageSchemas).join(", ")}` };
  }
  const parsed = messageSchemas[type as MessageType].safeParse(input);
  if (!parsed.success) return { ok: false, reason: reasonOf(parsed.error.issues) };
  const m: ParsedMessage = parsed.data;

  const flags: string[] = [];
  const userId = cleanId(m.userId);
  const anonymousId = cleanId(m.anonymousId);
  if ((m.userId != null && userId === null) || (m.anonymousId != null && anonymousId === null)) {
    flags.push("illegal_id_dropped");
  }
  if (userId === null && anonymousId === null)
    return { ok: false, reason: "neither userId nor anonymousId is a usable id" };
  let previousId: string | null = null;
  let groupId: string | null = null;
  if (m.type === "alias") {
    previousId = cleanId(m.previousId);
    if (previousId === null) return { ok: false, reason: "previousId is not a usable id" };
    if (userId === null) return { ok: false, reason: "userId is not a usable id" };
  } else if (m.type === "group") {
    groupId = cleanId(m.groupId);
    if (groupId === null) return { ok: false, reason: "groupId is not a usable id" };
  }

  let messageId = m.messageId?.trim() || null;
  if (messageId === null) {
    // Retries of this message cannot be deduplicated; clients that care send their own id (as
    // Segment's libraries and the snippet do).
    messageId = opts.newId ? opts.newId() : crypto.randomUUID();
    flags.push("generated_message_id");
  }

  const timestamp = dateField(
    m.timestamp ?? m.originalTimestamp,
    m.timestamp != null ? "timestamp" : "originalTimestamp",
  );
  if (!timestamp.ok) return timestamp;
  let sentAt = opts.batch.sentAt;
  if (m.sentAt != null) {
    const own = dateField(m.sentAt, "sentAt");
    if (!own.ok) return own;
    sentAt = own.ms;
  }
  const time = eventTime({ timestamp: timestamp.ms, sentAt, receivedAt: opts.receivedAt });
  if (!time.ok) return time;
  if (time.futureClamped) flags.push("future_clamped");

  const context: Record<string, unknown> = { ...opts.batch.context, ...m.context };
  const userHash = typeof context.userHash === "string" ? context.userHash : null;

  let properties: Record<string, unknown> = {};
  let traits: Record<string, unknown> = {};
  let event: string | null = null;
  let name: string | null = null;
  switch (m.type) {
    case "track":
      event = m.event;
      properties = m.properties ?? {};
      break;
    case "page":
    case "screen":
      name = m.name ?? null;
      properties = m.properties ?? {};
      if (m.category != null && !("category" in properties)) properties = { ...properties, category: m.category };
      break;
    case "identify":
      // Segment lets clients put traits in `context.traits`; explicit `traits` win.
      traits = { ...(isRecord(context.traits) ? context.traits : {}), ...m.traits };
      break;
    case "group":
      traits = m.traits ?? {};
      break;
    case "alias":
      break;
  }

  const normalized: NormalizedEvent = {
    type: m.type,
    messageId,
    anonymousId,
    userId,
    previousId,
    groupId,
    event,
    name,
    properties,
    traits,
    context,
    timestamp: time.timestamp,
    receivedAt: opts.receivedAt,
    flags,
    verified: false,
  };
  sizeBounds.set(normalized, 2 * (clean.bytes + batchContextBytes(opts.batch.context)) + EVENT_FIELDS_BYTES);
  return { ok: true, userHash, event: normalized };
}
