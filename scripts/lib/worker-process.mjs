/**
 * Runs a Worker with `wrangler dev` on a free loopback port with its own local state; shared by
 * the browser tests and the benchmarks.
 */
import { spawn, spawnSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { createServer } from "node:http";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

export const root = join(dirname(fileURLToPath(import.meta.url)), "../..");
const wrangler = join(root, "node_modules/.bin/wrangler");
const env = { ...process.env, WRANGLER_SEND_METRICS: "false" };

/** A TCP port that was free a moment ago. */
export function freePort() {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
    server.on("error", reject);
  });
}

/**
 * Applies the D1 migrations to fresh local state and starts `wrangler dev`.
 * `persistDir`: use this local state directory instead of a fresh one (the caller owns it and
 * removes it; two Workers with different D1 database ids may share one). `beforeStart(persistDir)`
 * runs after the migrations and before `wrangler dev` opens the state, e.g. to bulk-seed D1.
 * @param {{ config?: string, vars?: Record<string, string>, migrate?: boolean, persistDir?: string,
 *   beforeStart?: (persistDir: string) => Promise<void> | void }} options
 * @returns {Promise<{ baseUrl: string, persistDir: string, stop: () => Promise<void>, log: () => string }>}
 */
export async function startWorker({
  config = "wrangler.toml",
  vars = {},
  migrate = true,
  persistDir: givenPersistDir,
  beforeStart,
} = {}) {
  const persistDir = givenPersistDir ?? mkdtempSync(join(tmpdir(), "tessera-"));
  if (migrate) {
    const result = spawnSync(
      wrangler,
      ["d1", "migrations", "apply", "DB", "--local", "--config", config, "--persist-to", persistDir],
      { cwd: root, env, encoding: "utf8" },
    );
    if (result.status !== 0) throw new Error(`migrations failed: ${result.stderr}${result.stdout}`);
  }
  if (beforeStart) await beforeStart(persistDir);
  const port = await freePort();
  const args = ["dev", "--config", config, "--port", String(port), "--ip", "127.0.0.1", "--persist-to", persistDir];
  args.push("--test-scheduled", "--log-level", "warn");
  for (const [name, value] of Object.entries(vars)) args.push("--var", `${name}:${value}`);
  const child = spawn(wrangler, args, { cwd: root, env, stdio: ["ignore", "pipe", "pipe"] });
  let output = "";
  child.stdout.on("data", (d) => {
    output = (output + d).slice(-20_000);
  });
  child.stderr.on("data", (d) => {
    output = (output + d).slice(-20_000);
  });
  const baseUrl = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + 60_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`wrangler dev exited (${child.exitCode}):\n${output}`);
    try {
      if ((await fetch(`${baseUrl}/healthz`)).ok) break;
    } catch {}
    if (Date.now() > deadline) {
      child.kill("SIGKILL");
      throw new Error(`wrangler dev did not answer /healthz within 60 s:\n${output}`);
    }
    await new Promise((r) => setTimeout(r, 200));
  }
  return {
    baseUrl,
    persistDir,
    log: () => output,
    async stop() {
      child.kill("SIGTERM");
      await new Promise((r) => setTimeout(r, 300));
      if (child.exitCode === null) child.kill("SIGKILL");
      if (!givenPersistDir) rmSync(persistDir, { recursive: true, force: true });
    },
  };
}
