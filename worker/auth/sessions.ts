/**
 * Dashboard sessions. The cookie carries a random 32-byte token; D1 keeps only its SHA-256 (a
 * leaked database does not yield live sessions) together with the session's CSRF token.
 *
 * The cookie is HttpOnly, `SameSite=Lax`, `Secure` (except on localhost, where browsers would
 * drop it over plain http) and lives 7 days without sliding renewal. Lax rather than Strict: a
 * Strict cookie is not sent on the first navigation that arrives from another site (a link in an
 * email to a contact page), which would show the sign-in page to a signed-in user. Lax still
 * withholds the cookie from cross-site POST/PATCH/DELETE, and every cookie-authenticated
 * mutation must also carry the session's `X-CSRF-Token` and a same-origin `Origin`.
 */
import { and, eq, gt, lt } from "drizzle-orm";
import type { Context } from "hono";
import { deleteCookie, getCookie, setCookie } from "hono/cookie";
import type { Db } from "../db";
import { sessions, users } from "../db/schema";
import { randomToken, sha256Hex } from "../lib/ids";

export const SESSION_COOKIE = "tessera_session";
export const SESSION_TTL_MS = 7 * 24 * 60 * 60 * 1000;

export type User = typeof users.$inferSelect;

const base64url = (bytes: Uint8Array) =>
  btoa(String.fromCharCode(...bytes))
    .replace(/\+/g, "-")
    .replace(/\//g, "_")
    .replace(/=+$/, "");

/** Opens a session for a user; returns the cookie token (never stored) and the CSRF token. */
export async function createSession(db: Db, userId: string, now: number) {
  const token = base64url(crypto.getRandomValues(new Uint8Array(32)));
  const csrfToken = randomToken(32);
  const expiresAt = now + SESSION_TTL_MS;
  await db.batch([
    db.insert(sessions).values({ id: await sha256Hex(token), userId, csrfToken, expiresAt, createdAt: now }),
    // Expired rows are dead weight; each sign-in sweeps its user's.
    db.delete(sessions).where(and(eq(sessions.userId, userId), lt(sessions.expiresAt, now))),
  ]);
  return { token, csrfToken, expiresAt };
}

/** The live session behind a cookie token and its user, or null (unknown, expired, user deleted). */
export async function findSession(db: Db, token: string, now: number) {
  // Tokens we issue are 43 characters; anything else cannot match and is not worth a query.
  if (token.length < 32 || token.length > 64) return null;
  const row = await db
    .select({ session: sessions, user: users })
    .from(sessions)
    .innerJoin(users, eq(users.id, sessions.userId))
    .where(and(eq(sessions.id, await sha256Hex(token)), gt(sessions.expiresAt, now)))
    .get();
  return row ?? null;
}

/** Ends the session behind a cookie token (no-op when there is none). */
export async function deleteSession(db: Db, token: string): Promise<void> {
  await db.delete(sessions).where(eq(sessions.id, await sha256Hex(token)));
}

/** Browsers refuse `Secure` cookies over http, and local development runs on http://localhost. */
function isLocalhost(url: string): boolean {
  const host = new URL(url).hostname;
  return host === "localhost" || host === "127.0.0.1" || host === "[::1]";
}

export function setSessionCookie(c: Context, token: string): void {
  setCookie(c, SESSION_COOKIE, token, {
    httpOnly: true,
    sameSite: "Lax",
    secure: !isLocalhost(c.req.url),
    path: "/",
    maxAge: SESSION_TTL_MS / 1000,
  });
}

export function clearSessionCookie(c: Context): void {
  deleteCookie(c, SESSION_COOKIE, { path: "/", secure: !isLocalhost(c.req.url), httpOnly: true, sameSite: "Lax" });
}

export function sessionToken(c: Context): string | undefined {
  return getCookie(c, SESSION_COOKIE);
}
