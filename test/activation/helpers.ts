/** Test doubles for webhook delivery: a recording receiver, a capturing queue, a batch runner. */
import { createExecutionContext, createMessageBatch, env, getQueueResult } from "cloudflare:test";
import { type DeliveryDeps, handleDeliveries } from "../../worker/activation/consumer";
import type { DeliveryMessage } from "../../worker/activation/outbox";
import type { Env } from "../../worker/env";
import { api } from "../helpers/api";

export interface Received {
  url: string;
  headers: Record<string, string>;
  body: string;
  redirect: string | undefined;
}

/** A fake receiver: records each request and answers with `respond` (200 by default). */
export function receiver(respond: (n: number) => Response | Promise<Response> = () => new Response("ok")) {
  const calls: Received[] = [];
  const fetchFn = (async (input: RequestInfo | URL, init?: RequestInit) => {
    calls.push({
      url: String(input),
      headers: Object.fromEntries(new Headers(init?.headers).entries()),
      body: String(init?.body),
      redirect: init?.redirect,
    });
    return respond(calls.length);
  }) as typeof fetch;
  return { calls, fetch: fetchFn };
}

/** A public-looking answer for every host name (no DNS in tests). */
export const publicDns = async () => ["93.184.216.34"];

/** The worker's env with a DELIVERIES queue that records what the relay sends. */
export function capturingEnv() {
  const sent: DeliveryMessage[] = [];
  const queue = {
    send: async (body: DeliveryMessage) => {
      sent.push(body);
    },
    sendBatch: async (messages: Iterable<{ body: DeliveryMessage }>) => {
      for (const m of messages) sent.push(m.body);
    },
  };
  return { env: { ...env, DELIVERIES: queue } as unknown as Env, sent };
}

let msgSeq = 0;

/** Runs the delivery consumer on messages, as the queue would on attempt `attempts`. */
export async function runDeliveries(bodies: unknown[], deps: Partial<DeliveryDeps>, attempts = 1) {
  const batch = createMessageBatch(
    "tessera-deliveries",
    bodies.map((body) => ({ id: `q-${++msgSeq}`, timestamp: new Date(), attempts, body })),
  );
  const ctx = createExecutionContext();
  await handleDeliveries(batch, env, deps);
  return getQueueResult(batch, ctx);
}

/** Creates a destination through the API; returns its JSON including the one-time secret. */
export async function makeDestination(body: Record<string, unknown>) {
  const res = await api("/api/destinations", {
    body: { name: "Automation", url: "https://hooks.example.com/tessera", segments: [], ...body },
  });
  if (res.status !== 201) throw new Error(`makeDestination: ${res.status} ${await res.text()}`);
  return (await res.json()) as { id: string; secret: string; url: string; segments: string[]; events: string[] };
}

export async function deliveryRows(destinationId: string) {
  const rows = await env.DB.prepare(
    "SELECT id, type, status, attempts, last_status, last_error, payload FROM deliveries WHERE destination_id = ? ORDER BY created_at, id",
  )
    .bind(destinationId)
    .all<{
      id: string;
      type: string;
      status: string;
      attempts: number;
      last_status: number | null;
      last_error: string | null;
      payload: string;
    }>();
  return rows.results;
}
