/**
 * Every mounted /api route with the least role it needs: shared by the authorisation matrix
 * (matrix.test.ts, which also checks the list is complete) and the access campaign
 * (test/campaign/access.test.ts: CSRF and CORS on every route).
 */
import type { TestRole } from "../helpers/api";

export type Method = "GET" | "POST" | "PUT" | "PATCH" | "DELETE";
/** [method, route pattern as mounted, the least role allowed, concrete path (unknown ids, so nothing changes)] */
export type Route = [Method, string, TestRole, string?];

export const routes: Route[] = [
  ["GET", "/api/auth/me", "viewer"],
  ["POST", "/api/auth/logout", "viewer"],
  ["GET", "/api/users", "viewer"],
  ["POST", "/api/users", "admin"],
  ["GET", "/api/users/:id", "viewer"],
  ["PATCH", "/api/users/:id", "admin"],
  ["DELETE", "/api/users/:id", "admin"],
  ["GET", "/api/contacts", "viewer"],
  ["GET", "/api/contacts/export.csv", "marketer", "/api/contacts/export.csv?tag=none-such"],
  ["POST", "/api/contacts", "marketer"],
  ["POST", "/api/contacts/merge", "marketer"],
  ["GET", "/api/contacts/:id", "viewer"],
  ["PATCH", "/api/contacts/:id", "marketer"],
  ["PATCH", "/api/contacts/:id/traits", "marketer"],
  ["GET", "/api/contacts/:id/notes", "viewer"],
  ["POST", "/api/contacts/:id/notes", "marketer"],
  ["GET", "/api/contacts/:id/tasks", "viewer"],
  ["POST", "/api/contacts/:id/tasks", "marketer"],
  ["DELETE", "/api/notes/:id", "marketer"],
  ["PATCH", "/api/tasks/:id", "marketer"],
  ["DELETE", "/api/tasks/:id", "marketer"],
  ["GET", "/api/imports", "marketer"],
  ["POST", "/api/imports/preview", "marketer"],
  ["POST", "/api/imports", "marketer"],
  ["GET", "/api/imports/:id", "marketer"],
  ["GET", "/api/sites", "viewer"],
  ["POST", "/api/sites", "admin"],
  ["GET", "/api/sites/:id", "viewer"],
  ["PATCH", "/api/sites/:id", "admin"],
  ["POST", "/api/sites/:id/rotate-key", "admin"],
  ["GET", "/api/sites/:id/identity-policy", "viewer"],
  ["PUT", "/api/sites/:id/identity-policy", "admin"],
  ["GET", "/api/profiles", "viewer"],
  ["GET", "/api/profiles/lookup", "viewer"],
  ["GET", "/api/profiles/:id", "viewer"],
  ["GET", "/api/profiles/:id/events", "viewer"],
  ["POST", "/api/profiles/merge", "marketer"],
  ["POST", "/api/profiles/:id/unmerge", "marketer"],
  ["DELETE", "/api/profiles/:id", "admin"],
  ["GET", "/api/profiles/:id/export", "admin"],
  ["GET", "/api/segments", "viewer"],
  ["POST", "/api/segments", "marketer"],
  ["POST", "/api/segments/preview", "viewer"],
  ["GET", "/api/segments/:key", "viewer"],
  ["PUT", "/api/segments/:key", "marketer"],
  ["DELETE", "/api/segments/:key", "marketer"],
  ["POST", "/api/segments/:key/evaluate", "marketer"],
  ["GET", "/api/segments/:key/members", "viewer"],
  ["GET", "/api/segments/:key/history", "viewer"],
  ["GET", "/api/segments/:key/export.csv", "marketer"],
  ["GET", "/api/destinations", "admin"],
  ["POST", "/api/destinations", "admin"],
  ["GET", "/api/destinations/:id", "admin"],
  ["PATCH", "/api/destinations/:id", "admin"],
  ["DELETE", "/api/destinations/:id", "admin"],
  ["GET", "/api/destinations/:id/deliveries", "admin"],
  ["GET", "/api/dead-letters", "admin"],
  ["GET", "/api/stats", "viewer"],
  ["GET", "/api/stats/overview", "viewer"],
  ["GET", "/api/events/latest", "viewer"],
  ["GET", "/api/slots", "viewer"],
  ["GET", "/api/slots/:key", "viewer"],
  ["PUT", "/api/slots/:key", "marketer"],
  ["DELETE", "/api/slots/:key", "marketer"],
  ["GET", "/api/slots/:key/stats", "viewer"],
  ["GET", "/api/slots/:key/preview", "viewer"],
  ["GET", "/api/rejected", "viewer"],
];

/** Route patterns with ids nobody has, so that allowed calls end in 4xx without changing data. */
export const concrete = (pattern: string) =>
  pattern.replace(":id", "matrix_missing_id").replace(":key", "matrix_missing_key");
