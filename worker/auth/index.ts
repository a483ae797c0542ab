/**
 * Admin API authentication and role checks. Every `/api/*` request is authenticated before any
 * work happens: `Authorization: Bearer <ADMIN_TOKEN>` acts as an admin; dashboard sessions
 * (cookie) act as their user's role.
 */
import { createMiddleware } from "hono/factory";
import type { AppEnv, Principal, Role } from "../env";
import { ApiError } from "../lib/errors";
import { timingSafeEqual } from "../lib/ids";

const rank: Record<Role, number> = { viewer: 0, marketer: 1, admin: 2 };

/** Resolves the caller from the bearer token; answers 401 when there is no valid credential. */
export const authenticate = createMiddleware<AppEnv>(async (c, next) => {
  const principal = bearerPrincipal(c.req.header("authorization"), c.env.ADMIN_TOKEN);
  if (!principal) {
    throw new ApiError("unauthorized", "Missing or invalid credentials", {
      headers: { "WWW-Authenticate": 'Bearer realm="tessera"' },
    });
  }
  c.set("principal", principal);
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
