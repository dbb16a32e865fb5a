/**
 * A fresh machine (issue 14): tests that need a missing system package are
 * skipped with one line naming it and how to install it, recorded for the
 * end-of-run summary, and turned into failures by MLLM_REQUIRE_SYSTEM=1 (or
 * the older MLLM_REQUIRE_BROWSER=1); the kernel's and the CLI's stderr carry
 * no Dawn/Vulkan warnings when the only WebGPU adapter is a software one.
 */
import { afterEach, describe, expect, it } from "vitest";
import { spawnSync } from "child_process";
import * as fs from "fs";
import * as path from "path";
import { missingSystem, skipWithout, SKIP_LOG_VARIABLE, LAVAPIPE, type SystemRequirement } from "./helpers/system";
import { probeAdapterQuietly } from "../src/engine/webgpu_probe";
import { KernelClient } from "../src/runner/kernel_client";
import { kernelArgv } from "../src/kernel/kernelspec";
import { projectRoot } from "../src/util/project_root";
import { scratchFolders } from "./helpers/scratch";

/** Temporary folders, removed after this file's tests (test/helpers/scratch.ts). */
const scratch = scratchFolders();

const root = projectRoot();
const NOT_HERE: SystemRequirement = {
  name: "frobnicator",
  install: "apt-get install frobnicator",
  probe: () => "frobnicate is not on PATH",
};
const HERE: SystemRequirement = { name: "node", install: "-", probe: () => true };
const saved = {
  system: process.env.MLLM_REQUIRE_SYSTEM,
  browser: process.env.MLLM_REQUIRE_BROWSER,
  log: process.env[SKIP_LOG_VARIABLE],
};

afterEach(() => {
  const restore = (name: string, value: string | undefined) =>
    value === undefined ? delete process.env[name] : (process.env[name] = value);
  restore("MLLM_REQUIRE_SYSTEM", saved.system);
  restore("MLLM_REQUIRE_BROWSER", saved.browser);
  restore(SKIP_LOG_VARIABLE, saved.log);
});

/** Dawn's and Vulkan's start-up chatter, as it reached stderr before the probe moved to a child process. */
const DAWN_WARNING = /artificially reduced|^Warning:|vkCreate|MESA:|ICD|Dawn/m;

describe("tests that need a system package", () => {
  it("are skipped with one line naming the package and how to install it, recorded for the summary", () => {
    delete process.env.MLLM_REQUIRE_SYSTEM;
    delete process.env.MLLM_REQUIRE_BROWSER;
    const log = path.join(scratch("mllm-labs-skip-"), "skipped.txt");
    process.env[SKIP_LOG_VARIABLE] = log;
    expect(skipWithout("a test", HERE)).toBe(false);
    expect(skipWithout("a test", HERE, NOT_HERE)).toBe(true);
    expect(fs.readFileSync(log, "utf8")).toBe(
      "a test: skipped, needs frobnicator (frobnicate is not on PATH; install: apt-get install frobnicator)\n",
    );
  });

  it("fail instead under MLLM_REQUIRE_SYSTEM=1, or the older MLLM_REQUIRE_BROWSER=1", () => {
    for (const variable of ["MLLM_REQUIRE_SYSTEM", "MLLM_REQUIRE_BROWSER"]) {
      delete process.env.MLLM_REQUIRE_SYSTEM;
      delete process.env.MLLM_REQUIRE_BROWSER;
      process.env[variable] = "1";
      expect(skipWithout("a test", NOT_HERE)).toBe(false);
      expect(missingSystem("a test", NOT_HERE)).toEqual([
        "frobnicator (frobnicate is not on PATH; install: apt-get install frobnicator)",
      ]);
    }
  });

  it(".ci/run sets MLLM_REQUIRE_SYSTEM=1", () => {
    expect(fs.readFileSync(path.join(root, ".ci", "run"), "utf8")).toMatch(/^export MLLM_REQUIRE_SYSTEM=1$/m);
  });
});

describe("no Dawn/Vulkan warnings on stderr when the only adapter is a software one", () => {
  it.skipIf(skipWithout("software adapter probe test", LAVAPIPE))(
    "the probe sees lavapipe from a child process",
    async () => {
      const probe = await probeAdapterQuietly();
      expect(probe).toMatchObject({ found: true, software: true });
    },
    60_000,
  );

  it("the CLI's stderr holds only its engine line", () => {
    const result = spawnSync(
      process.execPath,
      [path.join(root, "bin", "mllm-labs.js"), "parity", path.join(root, "test", "fixtures", "hf", "whisper_mel")],
      {
        encoding: "utf8",
        env: { ...process.env, MLLM_BACKEND: "" },
        timeout: 120_000,
      },
    );
    expect(result.status, result.stderr).toBe(0);
    expect(result.stderr).not.toMatch(DAWN_WARNING);
    // At most the engine's one-line report.
    for (const line of result.stderr.split("\n").filter(Boolean)) expect(line).toMatch(/^engine: /);
  }, 130_000);

  it("the kernel's stderr is empty after it starts and runs a cell", async () => {
    let stderr = "";
    const client = await KernelClient.start({ argv: kernelArgv(root), cwd: root, onKernelStderr: (text) => (stderr += text) });
    try {
      const { reply } = await client.execute('import { initEngine } from "mllm-labs"; (await initEngine()).backend');
      expect(reply.content.status).toBe("ok");
    } finally {
      await client.shutdown();
    }
    expect(stderr).not.toMatch(DAWN_WARNING);
    expect(stderr).toBe("");
  }, 120_000);
});
