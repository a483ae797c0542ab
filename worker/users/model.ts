/** The public shape of a dashboard user: never the password hash, salt or lockout state. */
import { z } from "zod";
import type { users } from "../db/schema";

export const roles = ["admin", "marketer", "viewer"] as const;

export const userSchema = z.object({
  id: z.string(),
  email: z.string(),
  name: z.string().nullable(),
  role: z.enum(roles),
  createdAt: z.string(),
  updatedAt: z.string(),
});

export type UserJson = z.infer<typeof userSchema>;

export function userJson(user: typeof users.$inferSelect): UserJson {
  return {
    id: user.id,
    email: user.email,
    name: user.name,
    role: user.role,
    createdAt: new Date(user.createdAt).toISOString(),
    updatedAt: new Date(user.updatedAt).toISOString(),
  };
}

/** Emails are compared trimmed and lower-cased (one account per mailbox). */
export const emailField = z.string().trim().toLowerCase().max(254).pipe(z.email());
