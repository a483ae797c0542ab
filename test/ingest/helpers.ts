/** Factories and a recording queue for the ingest tests. */
import { createExecutionContext, env, waitOnExecutionContext } from "cloudflare:test";
import { app } from "../../worker";
import { siteSchema } from "../../worker/sites";
import type { Message, TrackMessage } from "../../worker/wire/events";
import type { NormalizedEvent, QueuedBatch } from "../../worker/wire/queue";
import { BASE, makeSite } from "../helpers/api";

export { BASE };

/** A site with the default allowed origin https://shop.example, including its verification secret. */
export async function makeIngestSite(overrides: Record<string, unknown> = {}) {
  const site = await makeSite(overrides);
  return siteSchema.parse(site);
}

let seq = 0;
/** A valid track message; override any field. */
export function makeEvent(overrides: Partial<Message> = {}): Message {
  seq++;
  const base: TrackMessage = {
    type: "track",
    event: "Product Viewed",
    messageId: `msg-${Date.now()}-${seq}`,
    anonymousId: `anon-${seq}`,
    timestamp: new Date().toISOString(),
    properties: { sku: "A-1", price: 9.5 },
    context: { library: { name: "test", version: "1" } },
  };
  return { ...base, ...overrides } as Message;
}

/** A fake EVENTS binding that records what was sent (the boundary to the pipeline). */
export function recordingQueue() {
  const sent: QueuedBatch[] = [];
  const calls: number[] = [];
  const queue = {
    async send(body: unknown) {
      sent.push(body as QueuedBatch);
    },
    async sendBatch(messages: Iterable<MessageSendRequest<unknown>>) {
      const list = [...messages];
      calls.push(list.length);
      for (const m of list) sent.push(m.body as QueuedBatch);
    },
  };
  return {
    queue: queue as unknown as Queue<unknown>,
    sent,
    /** Number of messages per sendBatch call. */
    calls,
    /** Every event queued, in order. */
    events: (): NormalizedEvent[] => sent.flatMap((b) => b.events),
  };
}

/** A queue whose sends fail, as when Queues is unavailable. */
export const failingQueue = {
  async send() {
    throw new Error("queue unavailable");
  },
  async sendBatch() {
    throw new Error("queue unavailable");
  },
} as unknown as Queue<unknown>;

export interface IngestInit {
  method?: string;
  /** Strings, bytes and streams are sent as they are; anything else as JSON text (Content-Type
   * text/plain, as analytics.js sends it). */
  body?: unknown;
  headers?: Record<string, string>;
  cf?: Record<string, unknown>;
  env?: Partial<Cloudflare.Env>;
}

/** Calls the app directly with replaceable bindings (EVENTS, INGEST_RATE_LIMIT, DB). */
export async function ingest(path: string, init: IngestInit = {}): Promise<Response> {
  const raw =
    init.body === undefined ||
    typeof init.body === "string" ||
    init.body instanceof ReadableStream ||
    init.body instanceof Uint8Array;
  const body = raw ? (init.body as BodyInit | undefined) : JSON.stringify(init.body);
  const request = new Request(`${BASE}${path}`, {
    method: init.method ?? "POST",
    headers: { "Content-Type": "text/plain", ...init.headers },
    body,
    cf: init.cf,
  } as RequestInit);
  const ctx = createExecutionContext();
  const res = await app.fetch(request, { ...env, ...init.env }, ctx);
  await waitOnExecutionContext(ctx);
  return res;
}

export const basic = (username: string, password = "") => ({
  Authorization: `Basic ${btoa(`${username}:${password}`)}`,
});

export type ErrorBody = { error: { code: string; message: string; details?: unknown } };
