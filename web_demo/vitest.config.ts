import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    include: ["test/**/*.test.ts"],
    benchmark: { include: ["bench/**/*.bench.ts"] },
    testTimeout: 20_000,
    // The browser test builds the page and converts the demo model: minutes, not seconds.
    hookTimeout: 300_000,
    fileParallelism: false,
  },
});
