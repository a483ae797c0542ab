import { describe, expect, it } from "vitest";
import { destinationSchema } from "../../worker/activation";
import { api } from "../helpers/api";
import { makeDestination } from "./helpers";

describe("destinations API", () => {
  it("creates a destination and shows its whsec_ secret once", async () => {
    const res = await api("/api/destinations", {
      body: { name: "ESP", url: "https://hooks.example.com/esp", segments: [], events: ["Signed Up"] },
    });
    expect(res.status).toBe(201);
    const created = (await res.json()) as { id: string; secret: string };
    expect(created.secret).toMatch(/^whsec_[A-Za-z0-9+/]{32}$/);
    const read = await api(`/api/destinations/${created.id}`);
    const body = (await read.json()) as Record<string, unknown>;
    expect(destinationSchema.parse(body).events).toEqual(["Signed Up"]);
    expect(JSON.stringify(body)).not.toContain(created.secret);
    const list = await (await api("/api/destinations")).text();
    expect(list).not.toContain(created.secret);
  });

  it("refuses a private or non-https URL with a 400", async () => {
    for (const url of [
      "http://hooks.example.com/x",
      "https://169.254.169.254/",
      "https://[::1]/",
      "https://2130706433/",
    ]) {
      const res = await api("/api/destinations", { body: { name: "x", url, segments: [] } });
      expect(res.status, url).toBe(400);
      expect(((await res.json()) as { error: { code: string } }).error.code).toBe("validation_failed");
    }
  });

  it("refuses a subscription to an unknown segment", async () => {
    const res = await api("/api/destinations", {
      body: { name: "x", url: "https://hooks.example.com/x", segments: ["nope"] },
    });
    expect(res.status).toBe(400);
  });

  it("updates a destination, re-checking a new URL", async () => {
    const dest = await makeDestination({});
    const bad = await api(`/api/destinations/${dest.id}`, { method: "PATCH", body: { url: "https://10.0.0.1/x" } });
    expect(bad.status).toBe(400);
    const ok = await api(`/api/destinations/${dest.id}`, {
      method: "PATCH",
      body: { name: "Renamed", enabled: false },
    });
    expect(destinationSchema.parse(await ok.json())).toMatchObject({ name: "Renamed", enabled: false, url: dest.url });
  });

  it("deletes a destination", async () => {
    const dest = await makeDestination({});
    expect((await api(`/api/destinations/${dest.id}`, { method: "DELETE" })).status).toBe(204);
    expect((await api(`/api/destinations/${dest.id}`)).status).toBe(404);
  });

  it("bounds its inputs", async () => {
    const res = await api("/api/destinations", {
      body: { name: "x".repeat(201), url: "https://hooks.example.com/x", segments: [] },
    });
    expect(res.status).toBe(400);
    const many = await api("/api/destinations", {
      body: { name: "x", url: "https://hooks.example.com/x", segments: [], events: Array(101).fill("e") },
    });
    expect(many.status).toBe(400);
  });
});
