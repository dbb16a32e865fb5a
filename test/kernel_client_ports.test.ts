/**
 * The runner's kernel client when the kernel finds one of its TCP ports taken at start-up (another process bound it
 * between the client choosing it and the kernel binding it): it starts the kernel again on fresh ports, a few times,
 * and does not retry a kernel that died for another reason.
 */
import { describe, expect, it } from "vitest";
import * as fs from "fs";
import * as path from "path";
import { KernelClient, KernelError } from "../src/runner/kernel_client";
import { kernelArgv } from "../src/kernel/kernelspec";
import { projectRoot } from "../src/util/project_root";
import { scratchFolders } from "./helpers/scratch";

const scratch = scratchFolders();
const root = projectRoot();

/**
 * A kernel command that counts its starts in `counter` and, for the first `failures` of them, dies the way the lab
 * kernel dies on a taken port (or with `message`); after that it runs the real lab kernel.
 */
function flakyKernel(
  folder: string,
  failures: number,
  message = "Error: Address already in use",
): { argv: string[]; counter: string } {
  const counter = path.join(folder, "starts");
  const script = path.join(folder, "flaky-kernel.js");
  const [node, ...real] = kernelArgv(root);
  fs.writeFileSync(
    script,
    `const fs = require("fs");
const { spawn } = require("child_process");
const starts = (fs.existsSync(${JSON.stringify(counter)}) ? Number(fs.readFileSync(${JSON.stringify(counter)}, "utf8")) : 0) + 1;
fs.writeFileSync(${JSON.stringify(counter)}, String(starts));
if (starts <= ${failures}) {
  console.error("mllm-labs kernel failed to start: " + ${JSON.stringify(message)});
  process.exit(1);
}
const kernel = spawn(process.execPath, ${JSON.stringify(real)}.map((a) => a === "{connection_file}" ? process.argv[2] : a), { stdio: "inherit" });
kernel.on("exit", (code) => process.exit(code ?? 1));
`,
  );
  return { argv: [node, script, "{connection_file}"], counter };
}

describe("kernel start-up on a taken port", () => {
  it("starts the kernel again on fresh ports, and it answers, before and after a restart", async () => {
    const folder = scratch("flaky-kernel-");
    const { argv, counter } = flakyKernel(folder, 2);
    const client = await KernelClient.start({ argv, cwd: root });
    try {
      expect(fs.readFileSync(counter, "utf8")).toBe("3");
      const { reply } = await client.execute("1 + 1");
      expect(reply.content.status).toBe("ok");
      // restart() goes through the same start-up: a fresh kernel (a fourth start) that answers
      await client.restart();
      expect(fs.readFileSync(counter, "utf8")).toBe("4");
      expect((await client.execute("2 + 2")).reply.content.status).toBe("ok");
    } finally {
      await client.shutdown();
    }
  }, 120_000);

  it("gives up after three starts, saying why", async () => {
    const folder = scratch("flaky-kernel-");
    const { argv, counter } = flakyKernel(folder, 5);
    await expect(KernelClient.start({ argv, cwd: root })).rejects.toThrow("Address already in use");
    expect(fs.readFileSync(counter, "utf8")).toBe("3");
  }, 120_000);

  it("does not start again a kernel that died for another reason", async () => {
    const folder = scratch("flaky-kernel-");
    const { argv, counter } = flakyKernel(folder, 5, "Error: Cannot find module 'tslab'");
    const error = await KernelClient.start({ argv, cwd: root }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(KernelError);
    expect((error as KernelError).message).toContain("Cannot find module 'tslab'");
    expect(fs.readFileSync(counter, "utf8")).toBe("1");
  }, 120_000);
});
