import { cloudflareTest, readD1Migrations } from "@cloudflare/vitest-pool-workers";
import { defineConfig } from "vitest/config";

// Worker tests run inside workerd (Miniflare) with wrangler.toml's bindings and a real local D1
// that test/setup.ts migrates. Browser tests (test/browser) have their own config.
export default defineConfig(async () => {
  const migrations = await readD1Migrations("./migrations");
  return {
    plugins: [
      cloudflareTest({
        main: "./worker/index.ts",
        wrangler: { configPath: "./wrangler.toml" },
        miniflare: {
          bindings: {
            TEST_MIGRATIONS: migrations,
            ADMIN_TOKEN: "test-admin-token-0123456789",
            ALLOW_PRIVATE_DESTINATIONS: "false",
            // The path-form proxy (/p/:siteId/*) as in local development; test/personalize/hosts.test.ts
            // checks it is a 404 without this.
            ALLOW_PATH_PROXY: "true",
          },
        },
      }),
    ],
    esbuild: { jsx: "automatic", jsxImportSource: "hono/jsx" },
    test: {
      include: ["test/**/*.test.{ts,tsx}"],
      exclude: ["test/browser/**", "test/node/**"],
      setupFiles: ["./test/setup.ts"],
    },
  };
});
