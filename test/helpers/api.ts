/** Small helpers for route tests: authenticated calls and factories. */
import { env, SELF } from "cloudflare:test";

export const ADMIN_TOKEN = "test-admin-token-0123456789";
export const BASE = "https://tessera.test";

export function adminHeaders(extra: Record<string, string> = {}): Record<string, string> {
  return { Authorization: `Bearer ${ADMIN_TOKEN}`, "Content-Type": "application/json", ...extra };
}

/** Calls the worker as the admin. */
export function api(path: string, init: { method?: string; body?: unknown; headers?: Record<string, string> } = {}) {
  return SELF.fetch(`${BASE}${path}`, {
    method: init.method ?? (init.body === undefined ? "GET" : "POST"),
    headers: adminHeaders(init.headers),
    body: init.body === undefined ? undefined : typeof init.body === "string" ? init.body : JSON.stringify(init.body),
  });
}

/** Creates a site through the API and returns its JSON. */
export async function makeSite(overrides: Record<string, unknown> = {}) {
  const res = await api("/api/sites", {
    body: { name: "Shop", allowedOrigins: ["https://shop.example"], ...overrides },
  });
  if (res.status !== 201) throw new Error(`makeSite: ${res.status} ${await res.text()}`);
  return (await res.json()) as { id: string; writeKey: string; name: string; allowedOrigins: string[] };
}

export { env };
