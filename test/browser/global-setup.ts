/**
 * Starts one Tessera (`wrangler dev` with its own temporary local state) for all browser tests,
 * and a plain static server on another port that plays the customer's website (another origin).
 */
import { createServer, type Server } from "node:http";
import type { TestProject } from "vitest/node";
import { freePort, startWorker } from "../../scripts/lib/worker-process.mjs";

export const ADMIN_TOKEN = "browser-test-admin-token-0123456789";

declare module "vitest" {
  export interface ProvidedContext {
    tessera: { baseUrl: string; adminToken: string; siteOrigin: string };
  }
}

export default async function setup(project: TestProject) {
  const worker = await startWorker({
    vars: { ADMIN_TOKEN, ALLOW_PRIVATE_DESTINATIONS: "true", DEMO_WRITE_KEY: "" },
  });

  // The customer's website: another origin (localhost, another port) serving the HTML each test
  // registers through POST /__page.
  const pages = new Map<string, string>();
  const site: Server = createServer((req, res) => {
    if (req.method === "POST" && req.url?.startsWith("/__page")) {
      let body = "";
      req.on("data", (c) => {
        body += c;
      });
      req.on("end", () => {
        const { path, html } = JSON.parse(body) as { path: string; html: string };
        pages.set(path, html);
        res.end("ok");
      });
      return;
    }
    const path = (req.url ?? "/").split("?")[0];
    const html = pages.get(path) ?? pages.get("*");
    res.writeHead(html ? 200 : 404, { "Content-Type": "text/html; charset=utf-8", "Cache-Control": "no-store" });
    res.end(html ?? "not found");
  });
  const sitePort = await freePort();
  await new Promise<void>((resolve) => site.listen(sitePort, "127.0.0.1", resolve));

  project.provide("tessera", {
    baseUrl: worker.baseUrl,
    adminToken: ADMIN_TOKEN,
    siteOrigin: `http://localhost:${sitePort}`,
  });

  return async () => {
    site.close();
    await worker.stop();
  };
}
