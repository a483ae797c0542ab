#!/usr/bin/env node
/**
 * `npm start`: the whole product on one machine, no Cloudflare account and no network.
 * Builds the browser bundles, applies the D1 migrations to the local database, seeds the demo
 * site, then runs `wrangler dev` (Miniflare: local D1, Queues and Cron) on $PORT (default 8787).
 */
import { spawn, spawnSync } from "node:child_process";
import { copyFileSync, existsSync, readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const port = Number(process.env.PORT ?? 8787);
if (!Number.isInteger(port) || port <= 0 || port > 65535) {
  console.error(`PORT must be a TCP port number, got ${JSON.stringify(process.env.PORT)}`);
  process.exit(1);
}
const env = { ...process.env, WRANGLER_SEND_METRICS: "false" };
const wrangler = join(root, "node_modules/.bin/wrangler");

function run(cmd, args) {
  const result = spawnSync(cmd, args, { cwd: root, env, stdio: "inherit" });
  if (result.status !== 0) process.exit(result.status ?? 1);
}

// First run: local secrets from the committed example; an existing .dev.vars is left alone.
if (!existsSync(join(root, ".dev.vars"))) {
  copyFileSync(join(root, ".dev.vars.example"), join(root, ".dev.vars"));
  console.log("created .dev.vars from .dev.vars.example");
}
const devVars = Object.fromEntries(
  readFileSync(join(root, ".dev.vars"), "utf8")
    .split("\n")
    .filter((line) => /^\s*[A-Z_]+\s*=/.test(line))
    .map((line) => line.split(/=(.*)/s).map((part) => part.trim())),
);

run(process.execPath, [join(root, "scripts/build.mjs")]);
run(wrangler, ["d1", "migrations", "apply", "DB", "--local"]);
if (devVars.DEMO_WRITE_KEY) {
  // The demo site, idempotently (INSERT OR IGNORE on the unique write key).
  const key = devVars.DEMO_WRITE_KEY.replace(/'/g, "''");
  const now = Date.now();
  const sql = `INSERT OR IGNORE INTO sites (id, name, write_key, allowed_origins, identity_verification, verification_secret, identity_policy, created_at, updated_at) VALUES ('site_demo', 'Demo shop', '${key}', '["http://localhost:${port}","http://127.0.0.1:${port}"]', 0, 'ivs_demo_local_secret', '{}', ${now}, ${now})`;
  run(wrangler, ["d1", "execute", "DB", "--local", "--command", sql]);
}

const child = spawn(wrangler, ["dev", "--port", String(port), "--ip", "127.0.0.1", "--test-scheduled"], {
  cwd: root,
  env,
  stdio: ["inherit", "pipe", "inherit"],
});
let announced = false;
child.stdout.on("data", (chunk) => {
  process.stdout.write(chunk);
  if (!announced && /Ready on/.test(String(chunk))) {
    announced = true;
    const base = `http://localhost:${port}`;
    console.log(`
  Tessera is running.
    Dashboard   ${base}/dashboard
    Demo shop   ${base}/demo
    API         ${base}/api   (Authorization: Bearer <ADMIN_TOKEN from .dev.vars>)
    API docs    ${base}/api/openapi.json
    Ingestion   ${base}/v1/batch
`);
    startCron(base);
  }
});

// wrangler dev does not fire Cron Triggers by itself; do it every minute like Cloudflare would.
function startCron(base) {
  setInterval(() => {
    fetch(`${base}/__scheduled?cron=${encodeURIComponent("* * * * *")}`).catch(() => {});
  }, 60_000).unref();
}

for (const signal of ["SIGINT", "SIGTERM"]) process.on(signal, () => child.kill(signal));
child.on("exit", (code) => process.exit(code ?? 0));
