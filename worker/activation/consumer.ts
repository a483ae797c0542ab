/**
 * The delivery consumer (queue `tessera-deliveries`): one signed POST per outbox row, with a
 * timeout and no redirects; 2xx delivers, 429/5xx/timeouts/network errors retry with backoff
 * (honouring `Retry-After`), other answers fail at once. After the queue's retry limit the message
 * lands on `tessera-deliveries-dlq`, whose consumer marks the row failed. Every attempt is
 * recorded on the row, which is the destination's delivery log.
 */
import { z } from "zod";
import type { Env } from "../env";
import { webhookHeaders } from "./signing";
import { checkDestinationUrl, dohResolver, isIpLiteral, isPrivateAddress, ResolveError, type Resolver } from "./ssrf";

export const SEND_TIMEOUT_MS = 10_000;
const MAX_DELAY_S = 3600;

/** What the sender needs from the outside world; tests pass fakes. */
export interface DeliveryDeps {
  fetch: typeof fetch;
  resolve: Resolver;
  now: () => number;
}

const message = z.object({ v: z.literal(1), deliveryId: z.string().min(1).max(64) });

type Outcome =
  | { kind: "delivered"; status: number }
  | { kind: "retry"; status: number | null; error: string; delaySeconds: number }
  | { kind: "failed"; status: number | null; error: string }
  | { kind: "skip" };

/** Exponential backoff: 30 s, 1 min, 2 min, … capped at an hour (≈ 2 h over the 8 retries). */
export function backoffSeconds(attempt: number, retryAfter: string | null, nowMs: number): number {
  let delay = 30 * 2 ** Math.max(0, attempt - 1);
  if (retryAfter) {
    const seconds = /^\d+$/.test(retryAfter.trim())
      ? Number(retryAfter.trim())
      : (Date.parse(retryAfter) - nowMs) / 1000;
    if (Number.isFinite(seconds)) delay = seconds;
  }
  return Math.min(MAX_DELAY_S, Math.max(1, Math.ceil(delay)));
}

interface Row {
  id: string;
  status: string;
  payload: string;
  url: string | null;
  secret: string | null;
  enabled: number | null;
}

/** Adds the profile's identities on the first attempt, so every retry sends the same bytes. */
async function hydrate(db: D1Database, row: Row): Promise<string> {
  const payload = JSON.parse(row.payload) as { data?: { profile?: { id: string; identities?: unknown } } };
  const profile = payload.data?.profile;
  if (!profile || profile.identities !== undefined) return row.payload;
  // The profile may have been merged since: its identities now belong to the survivor.
  const ids = await db
    .prepare(
      "SELECT type, value FROM identities WHERE profile_id = (SELECT COALESCE(merged_into, id) FROM profiles WHERE id = ?) ORDER BY type, value LIMIT 100",
    )
    .bind(profile.id)
    .all<{ type: string; value: string }>();
  profile.identities = ids.results;
  const body = JSON.stringify(payload);
  await db.prepare("UPDATE deliveries SET payload = ? WHERE id = ?").bind(body, row.id).run();
  return body;
}

async function attempt(env: Env, deliveryId: string, attemptNo: number, deps: DeliveryDeps): Promise<Outcome> {
  const row = await env.DB.prepare(
    "SELECT d.id, d.status, d.payload, t.url, t.secret, t.enabled FROM deliveries d LEFT JOIN destinations t ON t.id = d.destination_id WHERE d.id = ?",
  )
    .bind(deliveryId)
    .first<Row>();
  if (!row || row.status === "delivered" || row.status === "failed") return { kind: "skip" };
  if (!row.url || !row.secret || row.enabled !== 1) {
    return { kind: "failed", status: null, error: "The destination was deleted or disabled" };
  }
  const allowPrivate = env.ALLOW_PRIVATE_DESTINATIONS === "true";
  const verdict = checkDestinationUrl(row.url, allowPrivate);
  if (!verdict.ok) return { kind: "failed", status: null, error: `Refused URL: ${verdict.reason}` };
  const host = verdict.url.hostname.replace(/\.+$/, "");
  if (!allowPrivate && !isIpLiteral(host)) {
    try {
      const addresses = await deps.resolve(host);
      const bad = addresses.find(isPrivateAddress);
      if (bad) return { kind: "failed", status: null, error: `Refused URL: ${host} resolves to a private address` };
    } catch (err) {
      const msg = err instanceof Error ? err.message : "DNS lookup failed";
      if (err instanceof ResolveError && err.permanent) return { kind: "failed", status: null, error: msg };
      return { kind: "retry", status: null, error: msg, delaySeconds: backoffSeconds(attemptNo, null, deps.now()) };
    }
  }
  const body = await hydrate(env.DB, row);
  const now = deps.now();
  const headers = await webhookHeaders(row.secret, row.id, now, body);
  let res: Response;
  try {
    res = await deps.fetch(verdict.url.toString(), {
      method: "POST",
      headers,
      body,
      // A redirect could point anywhere, including at internal addresses: never follow one.
      redirect: "manual",
      signal: AbortSignal.timeout(SEND_TIMEOUT_MS),
    });
  } catch (err) {
    const timedOut = err instanceof Error && (err.name === "TimeoutError" || err.name === "AbortError");
    const error = timedOut ? `Timed out after ${SEND_TIMEOUT_MS / 1000} s` : "Network error";
    return { kind: "retry", status: null, error, delaySeconds: backoffSeconds(attemptNo, null, now) };
  }
  await res.body?.cancel();
  if (res.status >= 200 && res.status < 300) return { kind: "delivered", status: res.status };
  if (res.status === 429 || res.status >= 500) {
    return {
      kind: "retry",
      status: res.status,
      error: `HTTP ${res.status}`,
      delaySeconds: backoffSeconds(attemptNo, res.headers.get("retry-after"), now),
    };
  }
  const error =
    res.status >= 300 && res.status < 400 ? `HTTP ${res.status}: redirects are not followed` : `HTTP ${res.status}`;
  return { kind: "failed", status: res.status, error };
}

async function record(db: D1Database, id: string, outcome: Exclude<Outcome, { kind: "skip" }>, now: number) {
  const status = outcome.kind === "retry" ? "retrying" : outcome.kind;
  const next = outcome.kind === "retry" ? now + outcome.delaySeconds * 1000 : null;
  await db
    .prepare(
      "UPDATE deliveries SET status = ?, attempts = attempts + 1, last_status = ?, last_error = ?, next_attempt_at = ?, updated_at = ? WHERE id = ?",
    )
    .bind(status, outcome.status, outcome.kind === "delivered" ? null : outcome.error, next, now, id)
    .run();
}

/** Consumes a batch of `tessera-deliveries` messages. */
export async function handleDeliveries(batch: MessageBatch<unknown>, env: Env, deps: Partial<DeliveryDeps> = {}) {
  const full: DeliveryDeps = {
    fetch: deps.fetch ?? ((input, init) => fetch(input, init)),
    resolve: deps.resolve ?? dohResolver(),
    now: deps.now ?? Date.now,
  };
  // Each destination is a different server: one slow receiver must not hold up the others.
  await Promise.all(
    batch.messages.map(async (msg) => {
      const parsed = message.safeParse(msg.body);
      if (!parsed.success) return msg.ack();
      const outcome = await attempt(env, parsed.data.deliveryId, msg.attempts, full);
      if (outcome.kind !== "skip") await record(env.DB, parsed.data.deliveryId, outcome, full.now());
      if (outcome.kind === "retry") msg.retry({ delaySeconds: outcome.delaySeconds });
      else msg.ack();
    }),
  );
}

/** Consumes `tessera-deliveries-dlq`: the queue gave up retrying, so the delivery has failed. */
export async function handleDeadDeliveries(batch: MessageBatch<unknown>, env: Env, now = Date.now()) {
  const ids = batch.messages.flatMap((m) => {
    const parsed = message.safeParse(m.body);
    return parsed.success ? [parsed.data.deliveryId] : [];
  });
  if (ids.length) {
    await env.DB.batch(
      ids.map((id) =>
        env.DB.prepare(
          "UPDATE deliveries SET status = 'failed', last_error = 'Gave up after retries: ' || COALESCE(last_error, 'unknown error'), next_attempt_at = NULL, updated_at = ? WHERE id = ? AND status NOT IN ('delivered', 'failed')",
        ).bind(now, id),
      ),
    );
  }
  batch.ackAll();
}
