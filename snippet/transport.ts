// Delivery: a queue persisted in localStorage until the server has answered, sent in batches by
// fetch with keepalive (by sendBeacon while the page is being hidden), retried with backoff.

import { now } from "./context";
import { backoff, size, take } from "./rules";
import { load, set } from "./storage";
import type { BatchPayload, Msg } from "./types";

const Q = "tsr_q";

// Unacknowledged messages, oldest first; those of the request in flight stay at the front until
// it is answered. Every tab writes its own queue to "tsr_q" and a new page resends what it finds
// there: tabs may send a message twice, which the server drops by messageId.
let q: Msg[] = [];
let timer = 0;
let fails = 0;
let busy = false;
let url = "";
let key = "";

const save = () => set(Q, JSON.stringify(q));

// Timers are never cleared: one that fires after an earlier flush finds the queue empty or busy.
const later = (ms: number) => {
  timer = setTimeout(flush, ms);
};

/** Sends the next batch, one request at a time (a page may have only 64 KB of keepalive bodies in
 * flight); each answer sends the next batch soon after. `hide`: the page may be going away, so
 * the batch goes now, by sendBeacon, even while a request is in flight. Never throws: timers and
 * page events call it. */
export const flush = (hide?: unknown) => {
  timer = 0;
  try {
    if (q[0] && (hide || !busy)) {
      const b = take(q);
      // A string body goes as text/plain;charset=UTF-8: a CORS-safelisted type, so no preflight,
      // which would not complete during unload.
      const body = JSON.stringify({ batch: b, sentAt: now(), writeKey: key } satisfies BatchPayload);
      // A beacon cannot tell whether it arrived: its messages stay queued and stored, so this page
      // (if it comes back) or the next one sends them again, and the server drops what it has.
      // Anything beyond this batch waits for that too.
      if (hide) navigator.sendBeacon(url, body);
      else {
        busy = true;
        fetch(url, { method: "POST", body, keepalive: true })
          .then((r) => {
            // 2xx: stored. A 4xx other than 429 would fail on every retry: drop the batch.
            if (r.status > 499 || r.status === 429) throw 0;
            fails = 0;
            q = q.filter((m) => !b.includes(m));
            save();
            // Not at once: the browser frees this request's share of the keepalive quota a little later.
            later(99);
          })
          // Network failures too: the messages stay stored, for this page to retry while it is open
          // and for the next page.
          .catch(() => later(backoff(++fails)))
          .then(() => {
            busy = false;
          });
      }
    }
  } catch {}
};

/** Queues a message: sent with the next batch of ten, or within a second. */
export const push = (m: Msg) => {
  // Segment's per-message limit; a bigger message would be refused on every retry.
  if (size(m) > 32e3) return;
  if (q.push(m) > 100) q.shift();
  save();
  q.length > 9 && !fails ? flush() : timer || later(1e3);
};

/** Sets the endpoint, adopts what earlier pages left unsent, and flushes by beacon whenever the
 * page is hidden or left. */
export const connect = (api: string, writeKey: string) => {
  url = `${api}/v1/batch`;
  key = writeKey;
  addEventListener("pagehide", () => flush(1));
  addEventListener("visibilitychange", () => document.hidden && flush(1));
};

/** Takes up what earlier pages left unsent, in front of anything queued since; they go with the
 * page view that follows. */
export const adopt = () => {
  // concat, not spread: whatever is stored (even a non-array) cannot throw here.
  q = ([] as Msg[]).concat(load<Msg[]>(Q) || [], q);
};

/** Forgets the queue, in memory and in storage (consent withdrawn). */
export const clear = () => {
  q = [];
  set(Q);
};
