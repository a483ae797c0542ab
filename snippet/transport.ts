// Delivery: batches in memory, persisted until the server has answered, sent by fetch with
// keepalive (by sendBeacon while the page is being hidden), retried with backoff.
import { backoff, size, split } from "./rules";
import { load, set } from "./storage";
import type { BatchPayload, Msg } from "./types";

// The persisted queue, localStorage "tsr_q": messageId → [lease, message], the newest 100. A tab
// that holds a message (queued or in flight) stamps it with the time; another tab takes it over
// only once that lease is 10 s old, so tabs do not resend each other's messages. Duplicates that
// still happen are dropped by the server, which dedupes on messageId.
type Queue = Record<string, [lease: number, m: Msg]>;
const P = "tsr_q";

let q: Msg[] = [];
let timer = 0;
let fails = 0;
let busy = false;
let url = "";
let key = "";

// Stamps the persisted copies of `b` with `lease`, or without one deletes them; returns the queue.
const keep = (b: Msg[], lease?: number) => {
  const e = load<Queue>(P) || {};
  for (const m of b) lease == null ? delete e[m.messageId] : (e[m.messageId] = [lease, m]);
  for (const k of Object.keys(e).slice(0, -100)) delete e[k];
  set(P, JSON.stringify(e));
  return e;
};

const later = (ms: number) => {
  clearTimeout(timer);
  timer = setTimeout(flush, ms);
};

const retry = (b: Msg[], retryAfter?: string | null) => {
  busy = false;
  q.unshift(...b);
  // After five failures in a row this page stops trying; the messages stay persisted for the next.
  if (++fails < 5) later(backoff(fails, retryAfter));
};

/** Sends what is queued, one request at a time (a page may have only 64 KB of keepalive bodies in
 * flight); each answer sends the next batch soon after. `hide`: the page may be going away, so everything
 * goes at once by sendBeacon (by fetch with keepalive where it refuses). Never throws: timers and
 * page events call it too. */
export const flush = (hide?: boolean) => {
  clearTimeout(timer);
  timer = 0;
  try {
    while (q.length && (hide || (!busy && fails < 5))) {
      const b = split(q)[0];
      q.splice(0, b.length);
      // A string body goes as text/plain;charset=UTF-8: a CORS-safelisted type, so no preflight,
      // which would not complete during unload.
      const body = JSON.stringify({ batch: b, sentAt: new Date().toISOString(), writeKey: key } satisfies BatchPayload);
      // A beacon reports no response, so its messages stay persisted with an expired lease: the
      // next page load resends them and the server drops the duplicates. Nothing leaves storage
      // before a response has been read.
      if (hide && navigator.sendBeacon(url, body)) keep(b, 0);
      else {
        busy = true;
        keep(b, Date.now());
        fetch(url, { method: "POST", body, keepalive: true, credentials: "omit" }).then(
          (r) => {
            // 2xx: stored. A 4xx other than 429 would fail on every retry: drop the batch.
            if (r.status < 500 && r.status !== 429) {
              busy = false;
              fails = 0;
              keep(b);
              // Not at once: the browser frees this request's share of the keepalive quota a little later.
              later(99);
            } else retry(b, r.headers.get("Retry-After"));
          },
          () => retry(b),
        );
      }
    }
  } catch {}
};

/** Queues a message: sent with the next batch of ten, or within a second. */
export const push = (m: Msg) => {
  // Segment's per-message limit; a bigger message would be refused on every retry.
  if (size(m) > 32e3) return;
  if (q.push(m) > 100) q.shift();
  keep([m], Date.now());
  if (q.length > 9 && !fails) flush();
  else if (!timer) later(1e3);
};

/** Sets the endpoint, and flushes by beacon whenever the page is hidden or left. */
export const connect = (api: string, writeKey: string) => {
  url = `${api}/v1/batch`;
  key = writeKey;
  addEventListener("pagehide", () => flush(true));
  addEventListener("visibilitychange", () => document.hidden && flush(true));
};

/** Takes over the persisted messages no tab holds (those an earlier page left unsent). */
export const adopt = () => {
  const e = keep([]);
  const now = Date.now();
  for (const k in e) if (now - e[k][0] > 1e4) q.push(e[k][1]);
  keep(q, now);
  later(1e3);
};

/** Forgets the queue, in memory and in storage (consent withdrawn). */
export const clear = () => {
  q = [];
  set(P);
};
