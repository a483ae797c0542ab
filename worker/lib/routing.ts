/**
 * 404 versus 405: Hono answers 404 for any unmatched request, so the not-found handler checks
 * whether the path exists under another method and answers 405 with `Allow` in that case.
 */
import type { Context, Hono } from "hono";
import { errorResponse } from "./errors";

type Matcher = { pattern: RegExp; method: string };

function compile(path: string): RegExp {
  const source = path
    .split("/")
    .map((part) => (part.startsWith(":") ? "[^/]+" : part === "*" ? ".*" : part.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")))
    .join("/");
  return new RegExp(`^${source.replace(/\/\.\*$/, "(?:/.*)?")}/?$`);
}

/** Builds the not-found handler for `app` (route patterns are compiled once, on first use). */
export function notFoundOrMethodNotAllowed(app: Hono<any>) {
  let matchers: Matcher[] | undefined;
  return (c: Context) => {
    matchers ??= app.routes
      .filter((r) => r.method !== "ALL")
      .map((r) => ({ pattern: compile(r.path), method: r.method }));
    const path = new URL(c.req.url).pathname;
    const allowed = [...new Set(matchers.filter((m) => m.pattern.test(path)).map((m) => m.method))];
    if (allowed.length > 0 && !allowed.includes(c.req.method)) {
      return errorResponse(
        c,
        "method_not_allowed",
        `Method ${c.req.method} is not allowed here`,
        { allow: allowed },
        {
          Allow: allowed.join(", "),
        },
      );
    }
    return errorResponse(c, "not_found", "No such route");
  };
}
