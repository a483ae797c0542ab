import { env } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { attemptLogin } from "../../worker/auth/login";
import { createDb } from "../../worker/db";
import { makeUser } from "../helpers/api";

// attemptLogin takes the clock as an argument, so the backoff is checked at exact instants.
describe("sign-in throttling", () => {
  const db = createDb(env.DB);
  const T = 1_900_000_000_000;
  const account = async () => {
    const made = await makeUser("viewer");
    return { email: made.user.email, password: made.password };
  };

  it("allows four failures without a lock, locks for 1 s at the fifth, then doubles", async () => {
    const { email, password } = await account();
    for (let i = 0; i < 4; i++)
      expect(await attemptLogin(db, email, "wrong password!", T)).toEqual({ ok: false, locked: false });
    expect(await attemptLogin(db, email, password, T)).toMatchObject({ ok: true });

    for (let i = 0; i < 5; i++) await attemptLogin(db, email, "wrong password!", T);
    expect(await attemptLogin(db, email, password, T + 999)).toEqual({ ok: false, locked: true, retryAfter: 1 });
    // Past the lock, a sixth failure locks for 2 s.
    expect(await attemptLogin(db, email, "wrong password!", T + 1_000)).toEqual({ ok: false, locked: false });
    expect(await attemptLogin(db, email, password, T + 2_999)).toEqual({ ok: false, locked: true, retryAfter: 1 });
    expect(await attemptLogin(db, email, password, T + 1_500)).toEqual({ ok: false, locked: true, retryAfter: 2 });
    expect(await attemptLogin(db, email, password, T + 3_000)).toMatchObject({ ok: true });
  });

  it("does not count attempts refused during a lock", async () => {
    const { email, password } = await account();
    for (let i = 0; i < 5; i++) await attemptLogin(db, email, "wrong password!", T);
    for (let i = 0; i < 10; i++) await attemptLogin(db, email, "wrong password!", T + 10);
    const row = await env.DB.prepare("SELECT failed_logins FROM users WHERE email = ?")
      .bind(email)
      .first<{ failed_logins: number }>();
    expect(row?.failed_logins).toBe(5);
    expect(await attemptLogin(db, email, password, T + 1_000)).toMatchObject({ ok: true });
  });
});
