/**
 * Sign-in with per-account throttling: every failure counts; from the 5th consecutive failure the
 * account is locked for 2^(n−5) seconds (1 s, 2 s, 4 s, … capped at 15 minutes), during which
 * even the right password gets 429. A success resets the count. Unknown emails cost the same
 * PBKDF2 work as known ones.
 */
import { eq, sql } from "drizzle-orm";
import type { Db } from "../db";
import { users } from "../db/schema";
import { verifyDecoy, verifyPassword } from "./password";
import type { User } from "./sessions";

export const FREE_FAILURES = 4;
export const MAX_LOCK_MS = 15 * 60 * 1000;

export type LoginResult =
  | { ok: true; user: User }
  | { ok: false; locked: false }
  | { ok: false; locked: true; retryAfter: number };

/** Checks credentials and updates the account's failure counter. */
export async function attemptLogin(db: Db, email: string, password: string, now: number): Promise<LoginResult> {
  const user = await db.select().from(users).where(eq(users.email, email)).get();
  if (!user) return { ok: await verifyDecoy(password), locked: false };
  if (user.lockedUntil !== null && user.lockedUntil > now) {
    return { ok: false, locked: true, retryAfter: Math.ceil((user.lockedUntil - now) / 1000) };
  }
  if (!(await verifyPassword(password, user.passwordHash, user.passwordSalt))) {
    // One statement computed from the stored count, so parallel guesses all count.
    await db
      .update(users)
      .set({
        failedLogins: sql`${users.failedLogins} + 1`,
        lockedUntil: sql`CASE WHEN ${users.failedLogins} >= ${FREE_FAILURES}
          THEN ${now} + min(${MAX_LOCK_MS}, 1000 * (1 << min(${users.failedLogins} - ${FREE_FAILURES}, 10)))
          ELSE ${users.lockedUntil} END`,
      })
      .where(eq(users.id, user.id));
    return { ok: false, locked: false };
  }
  if (user.failedLogins !== 0 || user.lockedUntil !== null) {
    await db.update(users).set({ failedLogins: 0, lockedUntil: null }).where(eq(users.id, user.id));
  }
  return { ok: true, user };
}
