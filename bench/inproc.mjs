/**
 * Runs bench/inproc.ts (bundled with esbuild) against local D1 databases in Miniflare — the same
 * SQLite-backed D1 that `wrangler dev` uses, opened in this process without a Worker in front.
 */
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { build } from "esbuild";
import { Miniflare } from "miniflare";
import { root } from "../scripts/lib/worker-process.mjs";

let loaded;
/** The bench's TypeScript helpers (and through them the Worker's own code), bundled for Node. */
export async function inproc() {
  if (!loaded) {
    const out = await build({
      entryPoints: [join(root, "bench/inproc.ts")],
      bundle: true,
      format: "esm",
      platform: "node",
      target: "node20",
      write: false,
      logLevel: "error",
    });
    loaded = await import(`data:text/javascript;base64,${Buffer.from(out.outputFiles[0].text).toString("base64")}`);
  }
  return loaded;
}

/** The `database_id` of the DB binding in a wrangler.toml (Miniflare keys local D1 files by it). */
export function databaseId(config) {
  const match = readFileSync(join(root, config), "utf8").match(/database_id\s*=\s*"([^"]+)"/);
  if (!match) throw new Error(`${config}: no database_id`);
  return match[1];
}

/** The migration files of a directory, in order, as text. */
export function migrationFiles(dir) {
  return readdirSync(join(root, dir))
    .filter((f) => f.endsWith(".sql"))
    .sort()
    .map((f) => readFileSync(join(root, dir, f), "utf8"));
}

/**
 * Opens local D1 databases. With `persistDir` they are the files `wrangler dev --persist-to
 * persistDir` will open (keyed by database id); without, they live in memory.
 * @param {Record<string, string>} databases binding name → database id
 */
export async function openD1(databases, persistDir) {
  const mf = new Miniflare({
    modules: true,
    script: "export default {}",
    d1Databases: databases,
    ...(persistDir ? { d1Persist: join(persistDir, "v3/d1") } : {}),
  });
  const dbs = {};
  for (const name of Object.keys(databases)) dbs[name] = await mf.getD1Database(name);
  return { dbs, dispose: () => mf.dispose() };
}
