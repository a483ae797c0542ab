/**
 * The Segment-compatible ingestion API (`POST /v1/{batch,track,identify,page,screen,group,alias}`
 * and analytics.js's short forms `/v1/{b,t,i,p,s,g,a}`). It does the least it can: authenticate
 * the write key, validate and normalise each message, enrich it from the request, and make it
 * durable on the EVENTS queue. 200 only once the queue accepted the events.
 */
import type { Context } from "hono";
import { Hono } from "hono";
import { cors } from "hono/cors";
import { z } from "zod";
import type { Db } from "../db";
import type { AppEnv } from "../env";
import { ApiError } from "../lib/errors";
import { gpcOptOut } from "../lib/gpc";
import { timingSafeEqual } from "../lib/ids";
import { describe } from "../lib/openapi";
import { findSiteByWriteKey, type Site } from "../sites";
import { batchPayload, ingestResponse, type MessageType, singlePayloads } from "../wire/events";
import type { NormalizedEvent } from "../wire/queue";
import { parseJson, readCappedBody } from "./body";
import { createEnricher, type Enricher, requestFacts } from "./enrich";
import { countGpcDropped } from "./gpc";
import { checkRateLimit, MAX_BATCH_BYTES, MAX_MESSAGES } from "./limits";
import { type BatchDefaults, MAX_MESSAGE_BYTES, normalizeMessage } from "./normalize";
import { enqueueEvents } from "./pack";
import { type Rejection, storeRejected } from "./rejected";
import { sanitizeObject } from "./sanitize";
import { parseIsoDate } from "./time";
import { userHashVerifier } from "./verify";

export { type Rejection, rejectedApi, storeRejected } from "./rejected";

type Route = MessageType | "batch";

const MAX_WRITE_KEY = 200;
const RETRY_AFTER_S = "5";

const isRecord = (v: unknown): v is Record<string, unknown> => v !== null && typeof v === "object" && !Array.isArray(v);

/** `Authorization: Basic base64(writeKey:password)`; null when absent or another scheme. */
function basicCredentials(header: string | undefined): { username: string; password: string } | null {
  const m = header?.match(/^Basic\s+([A-Za-z0-9+/=]{1,1024})\s*$/i);
  if (!m) return null;
  let decoded: string;
  try {
    decoded = atob(m[1]);
  } catch {
    throw unauthorized("Malformed Basic credentials");
  }
  const colon = decoded.indexOf(":");
  return colon < 0
    ? { username: decoded, password: "" }
    : { username: decoded.slice(0, colon), password: decoded.slice(colon + 1) };
}

const unauthorized = (message: string) =>
  new ApiError("unauthorized", message, { headers: { "WWW-Authenticate": 'Basic realm="tessera ingest"' } });

/**
 * A browser request (it carries `Origin`) is accepted only from the site's allowed origins, so a
 * write key copied into another site's page cannot feed it. No Origin: a server, always fine.
 */
function checkOrigin(origin: string | undefined, site: Site): void {
  if (origin === undefined) return;
  if (site.allowedOrigins.includes("*") || site.allowedOrigins.includes(origin)) return;
  throw new ApiError(
    "forbidden",
    "This origin may not send events for this site; add it to the site's allowedOrigins",
    {
      details: { origin: origin.slice(0, 200) },
    },
  );
}

const unavailable = (message: string) =>
  new ApiError("unavailable", message, { headers: { "Retry-After": RETRY_AFTER_S } });

/** The site of a write key; D1 being down is a 503 the client retries, not a 500. */
async function lookUpSite(db: Db, writeKey: string): Promise<Site | undefined> {
  try {
    return await findSiteByWriteKey(db, writeKey);
  } catch (err) {
    console.error("ingest: write key lookup failed", err);
    throw unavailable("The site could not be looked up; retry later");
  }
}

/** The batch envelope: its messages and what it lends each of them (sentAt, context). */
function batchOf(body: Record<string, unknown>): { messages: unknown[]; defaults: BatchDefaults } {
  const { batch } = body;
  if (!Array.isArray(batch)) throw new ApiError("bad_request", 'Expected a JSON object with a "batch" array');
  if (batch.length === 0) throw new ApiError("bad_request", "The batch has no messages");
  if (batch.length > MAX_MESSAGES) {
    throw new ApiError("payload_too_large", `A batch holds at most ${MAX_MESSAGES} messages`);
  }
  let sentAt: number | null = null;
  if (body.sentAt != null) {
    sentAt = typeof body.sentAt === "string" ? parseIsoDate(body.sentAt) : null;
    if (sentAt === null) throw new ApiError("validation_failed", "sentAt is not an ISO-8601 date");
  }
  let context: Record<string, unknown> | null = null;
  if (body.context != null) {
    const clean = sanitizeObject(body.context);
    if (!clean.ok) throw new ApiError("validation_failed", `Invalid batch context: ${clean.reason}`);
    context = clean.value;
  }
  return { messages: batch, defaults: { sentAt, context } };
}

/**
 * Normalises, enriches and verifies each message of a request; returns the accepted events and
 * the rejections, both in request order.
 */
export async function prepareEvents(
  messages: unknown[],
  opts: {
    type: MessageType | undefined;
    defaults: BatchDefaults;
    receivedAt: number;
    enrich: Enricher;
    verifyUserHash: (userId: string, userHash: string) => Promise<boolean>;
    serverVerified: boolean;
  },
): Promise<{ accepted: NormalizedEvent[]; rejections: Rejection[] }> {
  const accepted: NormalizedEvent[] = [];
  const rejections: Rejection[] = [];
  const checks: Promise<void>[] = [];
  messages.forEach((raw, index) => {
    const result = normalizeMessage(raw, { type: opts.type, batch: opts.defaults, receivedAt: opts.receivedAt });
    if (!result.ok) {
      rejections.push({ index, reason: result.reason, payload: raw });
      return;
    }
    const { event, userHash } = result;
    const enriched = opts.enrich(event.context);
    event.context = enriched.context;
    if (enriched.bot) event.flags.push("bot");
    if (opts.serverVerified) event.verified = true;
    else if (userHash !== null && event.userId !== null) {
      checks.push(
        opts.verifyUserHash(event.userId, userHash).then((ok) => {
          event.verified = ok;
        }),
      );
    }
    accepted.push(event);
  });
  await Promise.all(checks);
  return { accepted, rejections };
}

async function ingest(c: Context<AppEnv>, route: Route): Promise<Response> {
  const receivedAt = Date.now();
  const basic = basicCredentials(c.req.header("authorization"));
  // Keys outside the body are rate limited before the body is read; a body key right after.
  let writeKey = basic?.username || c.req.query("writeKey") || null;
  if (writeKey) await checkRateLimit(c.env.INGEST_RATE_LIMIT, writeKey);

  const body = parseJson(await readCappedBody(c.req.raw, route === "batch" ? MAX_BATCH_BYTES : MAX_MESSAGE_BYTES));
  if (!isRecord(body)) throw new ApiError("bad_request", "Request body must be a JSON object");
  if (!writeKey && typeof body.writeKey === "string" && body.writeKey !== "") {
    writeKey = body.writeKey;
    await checkRateLimit(c.env.INGEST_RATE_LIMIT, writeKey);
  }
  if (!writeKey) throw unauthorized("Missing write key (HTTP Basic username, writeKey in the body or ?writeKey=)");
  const site = writeKey.length <= MAX_WRITE_KEY ? await lookUpSite(c.var.db, writeKey) : undefined;
  if (!site) throw unauthorized("Unknown write key");
  // Segment's Basic password is empty. A server integration may put the site's verification
  // secret there instead, which vouches for every user id it sends; a wrong secret is refused
  // outright rather than silently downgraded, so a misconfigured server notices.
  const serverVerified = !!basic?.password;
  if (basic?.password && !timingSafeEqual(basic.password, site.verificationSecret)) {
    throw unauthorized("Wrong verification secret in the Basic password (leave it empty for unverified events)");
  }
  checkOrigin(c.req.header("origin"), site);

  const { messages, defaults } =
    route === "batch" ? batchOf(body) : { messages: [body], defaults: { sentAt: null, context: null } };
  if (gpcOptOut(c.req.raw.headers)) {
    // The person opted out of sale and sharing: nothing of the request is kept, not even as a
    // rejected message. A success, so the client does not retry; counted after the response,
    // since a lost count must neither delay nor fail it.
    c.executionCtx.waitUntil(countGpcDropped(c.env.DB, messages.length, receivedAt).catch(() => {}));
    return c.json({ success: true }, 200);
  }
  const { accepted, rejections } = await prepareEvents(messages, {
    type: route === "batch" ? undefined : route,
    defaults,
    receivedAt,
    enrich: createEnricher(requestFacts(c.req.raw)),
    verifyUserHash: userHashVerifier(site.verificationSecret),
    serverVerified,
  });

  if (accepted.length > 0) {
    try {
      await enqueueEvents(c.env.EVENTS, site.id, accepted);
    } catch (err) {
      console.error("ingest: queue send failed", err);
      throw unavailable("Events could not be made durable; retry later");
    }
  }
  // Rejections are recorded last. A 503 makes the client send the whole request again: queued
  // events are then dropped as duplicates by messageId, but a rejected row has no key to be
  // deduplicated on, so it must only be written once nothing else can fail.
  try {
    await storeRejected(c.var.db, site.id, rejections, receivedAt);
  } catch (err) {
    console.error("ingest: could not store rejected messages", err);
    throw unavailable("Could not record the rejected messages; retry later");
  }
  const rejected = rejections.map(({ index, reason }) => ({ index, reason }));
  if (accepted.length === 0) throw new ApiError("validation_failed", "No valid messages", { details: { rejected } });
  return c.json(rejected.length > 0 ? { success: true, rejected } : { success: true }, 200);
}

const ROUTES: [path: string, short: string, route: Route][] = [
  ["batch", "b", "batch"],
  ["track", "t", "track"],
  ["identify", "i", "identify"],
  ["page", "p", "page"],
  ["screen", "s", "screen"],
  ["group", "g", "group"],
  ["alias", "a", "alias"],
];

// CORS for any page: `*` and never credentials (the write key is the credential, and it is
// public). Which pages may actually send is decided per site by checkOrigin.
const ingestCors = cors({
  origin: "*",
  allowMethods: ["POST", "OPTIONS"],
  allowHeaders: ["Content-Type", "Authorization", "Content-Encoding"],
  exposeHeaders: ["Retry-After"],
  maxAge: 86_400,
});

export const ingestApi = new Hono<AppEnv>();

const writeKeyQuery = z.object({ writeKey: z.string().max(MAX_WRITE_KEY).optional() });

for (const [path, short, route] of ROUTES) {
  for (const p of [path, short]) {
    // Middleware per path, not `*`: other /v1 resources (personalize) keep their own CORS.
    ingestApi.use(`/${p}`, ingestCors);
    ingestApi.post(`/${p}`, (c) => ingest(c, route));
    describe({
      method: "post",
      path: `/v1/${p}`,
      tag: "Ingest",
      summary:
        p === short
          ? `Short form of /v1/${path} (analytics.js)`
          : route === "batch"
            ? "Send up to 2,500 messages (500 KB); invalid ones are listed and stored, the rest accepted"
            : `Send one ${route} message (32 KB)`,
      auth: "writeKey",
      body: route === "batch" ? batchPayload : singlePayloads[route],
      query: writeKeyQuery,
      responses: { 200: ingestResponse },
    });
  }
}
