import type { Context } from "hono";

/** True when a request's `Origin` is absent or our own (cross-site forms and fetches send theirs). */
export function sameOrigin(c: Context): boolean {
  const origin = c.req.header("origin");
  return origin === undefined || origin === new URL(c.req.url).origin;
}
