// The snippet's decisions as pure functions of their inputs. Nothing here touches the DOM, so the
// unit tests import this module in workerd; the browser side effects live in the other modules.

/** Segment's `context.campaign` from a query string's utm_* parameters (utm_campaign becomes
 * `name`, as analytics.js does), or undefined when there are none. */
export const campaign = (search: string) => {
  let c: Record<string, string> | undefined;
  new URLSearchParams(search).forEach((v, k) => {
    if (k.slice(0, 4) === "utm_" && k[4]) (c = c || {})[k === "utm_campaign" ? "name" : k.slice(4)] = v;
  });
  return c;
};

/** UTF-8 bytes of a value's JSON. */
export const size = (v: unknown) => new Blob([JSON.stringify(v)]).size;

/** Groups messages, in order, into batches whose JSON stays under `max` bytes. The default keeps a
 * whole request (plus `sentAt` and `writeKey`) under the 64 KB that browsers allow a keepalive
 * fetch or a beacon; the caller drops single messages over 32 KB beforehand. */
export const split = <T>(ms: T[], max = 6e4) => {
  const out: T[][] = [];
  let b: T[] = [];
  let n = max;
  for (const m of ms) {
    const s = size(m) + 1;
    if ((n += s) > max) out.push((b = [])), (n = s);
    b.push(m);
  }
  return out;
};

/** Milliseconds to wait before retry `n` (1, 2, …): the server's Retry-After in seconds when the
 * response exposes it (the worker sends seconds), else 1 s doubling per attempt with jitter `r` in
 * [0, 1), so that tabs which failed together do not retry together, capped at 30 s. */
export const backoff = (n: number, retryAfter: string | null | undefined, r = Math.random()) =>
  +(retryAfter as string) * 1e3 || Math.min(3e4, 500 * 2 ** n * (1 + r));

/** Whether going from URL `a` to `b` is a new page view: path and query count; the hash counts only
 * for hash navigation, so routers that push and replace the same URL yield one view. */
export const moved = (a: string, b: string, hash?: boolean) => (hash ? a !== b : a.split("#")[0] !== b.split("#")[0]);

/** Domains to try for a first-party cookie, shortest first. Browsers refuse public suffixes (co.uk,
 * github.io), so the first that accepts a test cookie is the registrable domain. IP addresses and
 * single-label hosts (localhost) get none: the cookie stays host-only. */
export const domains = (host: string) =>
  /^[\d.]+$|:/.test(host)
    ? []
    : host
        .split(".")
        .map((_, i, p) => p.slice(i).join("."))
        .reverse()
        .slice(1);

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
export const allowed = (gpc: boolean, choice: string | null | undefined, required: boolean) =>
  !gpc && (choice ? choice === "1" : !required);
