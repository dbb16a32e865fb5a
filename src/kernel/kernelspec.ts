/**
 * The project-local kernelspec "Multimodal Labs (TypeScript)".
 *
 * Written to `<project>/.jupyter/kernels/mllm-labs/kernel.json` with absolute
 * paths (the running Node and the built kernel), so Jupyter finds it when
 * `JUPYTER_PATH` includes `<project>/.jupyter` (what `npm start` sets). No
 * Python is needed to register it.
 */
import * as fs from "fs";
import * as path from "path";

export const KERNEL_NAME = "mllm-labs";
export const KERNEL_DISPLAY_NAME = "Multimodal Labs (TypeScript)";

/** The kernel's command line, with Jupyter's `{connection_file}` placeholder. */
export function kernelArgv(projectRoot: string, nodePath = process.execPath): string[] {
  return [nodePath, path.join(projectRoot, "dist", "src", "kernel", "main.js"), "--connection-file", "{connection_file}"];
}

/** The kernel.json contents. */
export function kernelspec(projectRoot: string, nodePath = process.execPath) {
  return {
    argv: kernelArgv(projectRoot, nodePath),
    display_name: KERNEL_DISPLAY_NAME,
    language: "typescript",
    interrupt_mode: "signal",
    metadata: { debugger: false },
  };
}

/** The folder to put on JUPYTER_PATH. */
export function jupyterDataDir(projectRoot: string): string {
  return path.join(projectRoot, ".jupyter");
}

/** Writes the kernelspec (atomically) and returns the kernel.json path. */
export function writeKernelspec(projectRoot: string, nodePath = process.execPath): string {
  const dir = path.join(jupyterDataDir(projectRoot), "kernels", KERNEL_NAME);
  fs.mkdirSync(dir, { recursive: true });
  const file = path.join(dir, "kernel.json");
  const tmp = `${file}.${process.pid}.tmp`;
  fs.writeFileSync(tmp, JSON.stringify(kernelspec(projectRoot, nodePath), null, 2) + "\n");
  fs.renameSync(tmp, file);
  return file;
}
