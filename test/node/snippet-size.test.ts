/**
 * The snippet's byte budget (issue 3): the served /s.js is at most 2,048 bytes gzip, with every
 * feature in. Bundled here exactly as scripts/build.mjs bundles it, so the figure is the one the
 * Worker serves. Runs in Node (the browser-test config), not in workerd.
 */
import { gzipSync } from "node:zlib";
import { build } from "esbuild";
import { expect, it } from "vitest";

const BUDGET = 2_048;

/** The bundle of `entry`, with scripts/build.mjs's options. */
async function bundle(entry: string): Promise<string> {
  const result = await build({
    entryPoints: [new URL(`../../${entry}`, import.meta.url).pathname],
    bundle: true,
    minify: true,
    format: "iife",
    target: "es2017",
    write: false,
    legalComments: "none",
  });
  return result.outputFiles[0].text;
}

it(`keeps /s.js within ${BUDGET} bytes gzip`, async () => {
  const body = await bundle("snippet/index.ts");
  const gzip = gzipSync(body, { level: 9 }).length;
  console.info(`s.js: ${body.length} B, ${gzip} B gzip (budget ${BUDGET}, ${BUDGET - gzip} B left)`);
  expect(gzip).toBeLessThanOrEqual(BUDGET);
});

it("ships no eval, no Function constructor and no global other than tessera", async () => {
  const body = await bundle("snippet/index.ts");
  expect(body).not.toMatch(/\beval\(|new Function\b/);
  // An IIFE: every top-level declaration stays inside it; the only global written is tessera.
  expect(body.startsWith("(()=>{")).toBe(true);
  expect(body.match(/window\.\w+=/g)).toEqual(["window.tessera="]);
});
