// The snippet's decisions as pure functions of their inputs. Nothing here touches the DOM, so the
// unit tests import this module in workerd; the browser side effects live in the other modules.

/** Segment's `context.campaign` from a query string's utm_* parameters (utm_campaign becomes
 * `name`, as analytics.js does), or undefined when there are none. */
export const campaign = (search: string) => {
  let c: Record<string, string> | undefined;
  new URLSearchParams(search).forEach((v, k) => {
    if (/^utm_./.test(k)) (c = c || {})[k === "utm_campaign" ? "name" : k.slice(4)] = v;
  });
  return c;
};

/** UTF-8 bytes of a value's JSON. */
export const size = (v: unknown) => new Blob([JSON.stringify(v)]).size;

/** The next batch: the oldest messages whose JSON adds up to less than 60,000 bytes, so that a
 * request (plus `sentAt` and `writeKey`) stays under the 64 KB a keepalive fetch or a beacon may
 * carry. Never empty while `q` is not: no queued message is over 32 KB (push drops those). */
export const take = <T>(q: T[]) => {
  let n = 0;
  // n only grows, so once a message does not fit none after it does: the batch is a prefix of q.
  return q.filter((m) => (n += size(m)) < 6e4);
};

/** Milliseconds to wait before retry `n` (1, 2, …): 1 s doubling per attempt, plus jitter `r` in
 * [0, 1) of that again so that tabs which failed together do not retry together, capped at 30 s. */
export const backoff = (n: number, r = Math.random()) => Math.min(3e4, 500 * 2 ** n * (1 + r));

/** What identifies a page view in a URL: all of it but an anchor. A hash that is a route (#/cart,
 * #!/cart) counts; one that is an anchor in the page (#pricing) does not. */
export const pageKey = (url: string) => url.replace(/#(?![!/]).*/, "");

/** A session as stored: its id and the time of its last activity. */
export type Session = [id: string, last: number];

/** The session after activity at `now`: the same one within 30 minutes of its last activity,
 * otherwise a new one with a `fresh()` id. */
export const session = (s: Session | null | undefined, now: number, fresh: () => string): Session => [
  s && now - s[1] < 18e5 ? s[0] : fresh(),
  now,
];

/** Whether tracking may run: never under Global Privacy Control (a binding opt-out), else the
 * visitor's recorded choice ("1" or "0"), else the site's mode (opt-in when consent is required). */
export const allowed = (gpc: boolean | undefined, choice: string | null | undefined, required: boolean) =>
  !gpc && (choice ? choice === "1" : !required);
