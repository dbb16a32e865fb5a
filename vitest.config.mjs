import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    include: ["test/**/*.test.ts"],
    // Kernel and lab tests start real kernels; on 2 cores they run best one file at a time.
    fileParallelism: false,
    setupFiles: ["test/setup.ts"],
    // Records tests skipped for a missing system package and prints a summary at the end.
    globalSetup: ["test/global_setup.ts"],
    testTimeout: 30_000,
    hookTimeout: 60_000,
    reporters: ["default"],
  },
});
