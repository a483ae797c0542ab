import { defineConfig } from "vitest/config";

// Real-browser tests: Node drives Debian's Chromium (playwright-core) against a real
// `wrangler dev` started once by the global setup (fresh local D1, migrations applied).
export default defineConfig({
  test: {
    root: new URL("../..", import.meta.url).pathname,
    include: ["test/browser/**/*.test.ts", "test/node/**/*.test.ts"],
    environment: "node",
    globalSetup: ["test/browser/global-setup.ts"],
    testTimeout: 60_000,
    hookTimeout: 120_000,
    // One Chromium and one worker process are plenty for 2 cores.
    fileParallelism: false,
  },
});
