/**
 * `/api/auth`: sign-in (JSON for the client, a plain HTML form post for the sign-in page so that
 * Enter works before any script loaded), the current session, sign-out.
 */
import { Hono } from "hono";
import { bodyLimit } from "hono/body-limit";
import { z } from "zod";
import type { AppEnv } from "../env";
import { ApiError } from "../lib/errors";
import { describe } from "../lib/openapi";
import { issuesOf } from "../lib/validate";
import { emailField, userJson, userSchema } from "../users/model";
import { attemptLogin } from "./login";
import { sameOrigin } from "./origin";
import { PASSWORD_MAX } from "./password";
import {
  clearSessionCookie,
  createSession,
  deleteSession,
  findSession,
  sessionToken,
  setSessionCookie,
} from "./sessions";

export const loginBody = z.object({
  email: emailField,
  password: z.string().min(1).max(PASSWORD_MAX),
});

export const sessionSchema = z.object({ user: userSchema, csrfToken: z.string() });

/** A bearer-token caller has no user and no CSRF token. */
export const meSchema = z.object({
  user: userSchema.nullable(),
  role: z.enum(["admin", "marketer", "viewer"]),
  csrfToken: z.string().nullable(),
});

const FORM = "application/x-www-form-urlencoded";

export const authApi = new Hono<AppEnv>()
  .post(
    "/login",
    bodyLimit({
      maxSize: 8 * 1024,
      onError: () => {
        throw new ApiError("payload_too_large", "Sign-in body is larger than 8 KB");
      },
    }),
    async (c) => {
      const isForm = (c.req.header("content-type") ?? "").toLowerCase().startsWith(FORM);
      // The form lands back on the sign-in page; the reason travels as ?error= (1: wrong
      // credentials or input, locked: too many failures, origin: posted from another site).
      const fail = (reason: string) => c.redirect(`/dashboard/login?error=${reason}`, 303);

      // Login CSRF: another site must not sign a visitor into an account of its choosing.
      if (!sameOrigin(c)) {
        if (isForm) return fail("origin");
        throw new ApiError("forbidden", "Cross-origin sign-in refused");
      }
      const text = await c.req.text();
      let raw: unknown;
      if (isForm) raw = Object.fromEntries(new URLSearchParams(text));
      else {
        try {
          raw = JSON.parse(text);
        } catch {
          throw new ApiError("invalid_json", "Request body is not valid JSON");
        }
      }
      const parsed = loginBody.safeParse(raw);
      if (!parsed.success) {
        if (isForm) return fail("1");
        throw new ApiError("validation_failed", "Invalid request body", { details: issuesOf(parsed.error) });
      }

      const now = Date.now();
      const result = await attemptLogin(c.var.db, parsed.data.email, parsed.data.password, now);
      if (!result.ok) {
        if (result.locked) {
          if (isForm) return fail("locked");
          throw new ApiError("rate_limited", "Too many failed sign-ins; try again later", {
            headers: { "Retry-After": String(result.retryAfter) },
          });
        }
        if (isForm) return fail("1");
        throw new ApiError("unauthorized", "Wrong email or password");
      }

      const session = await createSession(c.var.db, result.user.id, now);
      setSessionCookie(c, session.token);
      if (isForm) return c.redirect("/dashboard", 303);
      return c.json({ user: userJson(result.user), csrfToken: session.csrfToken } satisfies z.infer<
        typeof sessionSchema
      >);
    },
  )
  .get("/me", async (c) => {
    const principal = c.var.principal;
    const token = sessionToken(c);
    const found = principal.kind === "user" && token ? await findSession(c.var.db, token, Date.now()) : null;
    const body: z.infer<typeof meSchema> = found
      ? { user: userJson(found.user), role: found.user.role, csrfToken: found.session.csrfToken }
      : { user: null, role: principal.role, csrfToken: null };
    return c.json(body);
  })
  .post("/logout", async (c) => {
    const token = sessionToken(c);
    if (token) await deleteSession(c.var.db, token);
    clearSessionCookie(c);
    return c.body(null, 204);
  });

describe({
  method: "post",
  path: "/api/auth/login",
  tag: "Auth",
  auth: "none",
  summary:
    "Sign in. JSON body → 200 {user, csrfToken} and the session cookie; 401 wrong credentials; 429 (Retry-After) while the account is locked. " +
    "An application/x-www-form-urlencoded post (the sign-in form) → 303 to /dashboard, or to /dashboard/login?error=1|locked|origin.",
  body: loginBody,
  responses: { 200: sessionSchema, 303: "Form post: redirect", 401: "Wrong email or password", 429: "Locked" },
});
describe({
  method: "get",
  path: "/api/auth/me",
  tag: "Auth",
  summary: "The signed-in user and the CSRF token to send as X-CSRF-Token on every mutation",
  responses: { 200: meSchema },
});
describe({
  method: "post",
  path: "/api/auth/logout",
  tag: "Auth",
  summary: "End the session server-side and clear the cookie (needs X-CSRF-Token)",
  responses: { 204: "Signed out" },
});
