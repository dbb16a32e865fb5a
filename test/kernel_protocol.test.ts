/**
 * Jupyter's own conformance suite (Debian's python3-jupyter-kernel-test,
 * installed by .ci/run) against the lab kernel through jupyter_client.
 */
import { describe, expect, it } from "vitest";
import { spawnSync } from "child_process";
import * as path from "path";
import { projectRoot } from "../src/util/project_root";
import { jupyterDataDir, writeKernelspec } from "../src/kernel/kernelspec";
import { JUPYTER_KERNEL_TEST, missingSystem, skipWithout } from "./helpers/system";

const PYTHON = process.env.MLLM_TEST_PYTHON ?? "/usr/bin/python3";

describe.skipIf(skipWithout("Jupyter kernel conformance test", JUPYTER_KERNEL_TEST))("jupyter_kernel_test", () => {
  it("passes every conformance test it has samples for", () => {
    const root = projectRoot();
    expect(
      missingSystem("Jupyter kernel conformance test", JUPYTER_KERNEL_TEST),
      "required (MLLM_REQUIRE_SYSTEM=1) but missing",
    ).toEqual([]);
    writeKernelspec(root);
    const result = spawnSync(PYTHON, [path.join(root, "test", "kernel", "test_kernel_protocol.py"), "-v"], {
      cwd: root,
      encoding: "utf8",
      env: { ...process.env, JUPYTER_PATH: jupyterDataDir(root) },
      timeout: 240_000,
    });
    const log = `${result.stdout}\n${result.stderr}`;
    expect(result.status, log).toBe(0);
    const ran = /Ran (\d+) tests/.exec(log);
    expect(Number(ran?.[1]), log).toBeGreaterThanOrEqual(12);
    for (const name of [
      "test_execute_result",
      "test_error",
      "test_kernel_info",
      "test_display_data",
      "test_execute_stdout",
      "test_execute_stderr",
      "test_completion",
      "test_inspect",
      "test_is_complete",
      "test_clear_output",
    ]) {
      expect(log, `${name} did not pass`).toMatch(new RegExp(`${name} \\(.*\\) \\.\\.\\. ok`));
    }
  }, 300_000);
});
