/**
 * Admin API authentication and role checks. Every `/api/*` request is authenticated before any
 * work happens: `Authorization: Bearer <ADMIN_TOKEN>` acts as an admin; a dashboard session
 * (cookie `tessera_session`) acts as its user's current role. The one route without credentials
 * is `POST /api/auth/login`.
 *
 * Cookies are ambient credentials, so cookie-authenticated mutations must prove they come from
 * our own pages: the session's CSRF token in `X-CSRF-Token`, and no foreign `Origin`. Bearer
 * requests are exempt: a browser never attaches that header by itself.
 */
import { createMiddleware } from "hono/factory";
import type { AppEnv, Principal, Role } from "../env";
import { ApiError } from "../lib/errors";
import { timingSafeEqual } from "../lib/ids";
import { sameOrigin } from "./origin";
import { findSession, sessionToken } from "./sessions";

export { authApi } from "./routes";
export { SESSION_COOKIE } from "./sessions";

const rank: Record<Role, number> = { viewer: 0, marketer: 1, admin: 2 };

/** The only unauthenticated API route; compared exactly (no prefix), on the path the router matched. */
export const LOGIN_PATH = "/api/auth/login";

const safeMethods = new Set(["GET", "HEAD", "OPTIONS"]);

const unauthorized = () =>
  new ApiError("unauthorized", "Missing or invalid credentials", {
    headers: { "WWW-Authenticate": 'Bearer realm="tessera"' },
  });

/** Resolves the caller from the bearer token or the session cookie; 401 without a valid credential. */
export const authenticate = createMiddleware<AppEnv>(async (c, next) => {
  if (c.req.method === "POST" && c.req.path === LOGIN_PATH) return next();

  const authorization = c.req.header("authorization");
  if (authorization !== undefined) {
    // A present but wrong Authorization header never falls back to the cookie.
    const principal = bearerPrincipal(authorization, c.env.ADMIN_TOKEN);
    if (!principal) throw unauthorized();
    c.set("principal", principal);
    return next();
  }

  const token = sessionToken(c);
  const found = token ? await findSession(c.var.db, token, Date.now()) : null;
  if (!found) throw unauthorized();
  if (!safeMethods.has(c.req.method)) {
    if (!sameOrigin(c)) throw new ApiError("forbidden", "Cross-origin request refused");
    const csrf = c.req.header("x-csrf-token");
    if (!csrf || !timingSafeEqual(csrf, found.session.csrfToken)) {
      throw new ApiError("forbidden", "Missing or invalid X-CSRF-Token header");
    }
  }
  c.set("principal", { kind: "user", role: found.user.role, userId: found.user.id });
  await next();
});

function bearerPrincipal(header: string | undefined, adminToken: string | undefined): Principal | null {
  const match = header?.match(/^Bearer\s+(\S+)$/i);
  // An unset or short ADMIN_TOKEN never authenticates anyone (misconfiguration must fail closed).
  if (!match || !adminToken || adminToken.length < 16) return null;
  return timingSafeEqual(match[1], adminToken) ? { kind: "token", role: "admin" } : null;
}

/** Allows the request only for principals with at least `role`. */
export const requireRole = (role: Role) =>
  createMiddleware<AppEnv>(async (c, next) => {
    if (rank[c.get("principal").role] < rank[role]) {
      throw new ApiError("forbidden", `This action needs the ${role} role`);
    }
    await next();
  });

/** True when the principal has at least `role` (for checks inside a handler). */
export const hasRole = (principal: Principal, role: Role) => rank[principal.role] >= rank[role];
