#!/usr/bin/env node
/**
 * `npm start`: opens the labs.
 *  - With Jupyter installed (JupyterLab or the classic Notebook): starts it on the project with the
 *    "Multimodal Labs (TypeScript)" kernel registered (JUPYTER_PATH=<project>/.jupyter).
 *  - Without Jupyter, or with `npm start -- --headless`: runs every solution notebook headless with
 *    the lab runner into out/, and says how to get Jupyter.
 * Extra arguments after `--` go to Jupyter (e.g. `npm start -- --port 8899 --no-browser`).
 */
"use strict";
const { spawn, spawnSync } = require("child_process");
const fs = require("fs");
const path = require("path");

const root = path.resolve(__dirname, "..");
const args = process.argv.slice(2);
const headless = args.includes("--headless");
const jupyterArgs = args.filter((a) => a !== "--headless");

const kernelspec = path.join(root, ".jupyter", "kernels", "mllm-labs", "kernel.json");
if (!fs.existsSync(path.join(root, "dist", "src", "cli", "main.js")) || !fs.existsSync(kernelspec)) {
  console.error("mllm-labs is not installed yet: run `npm install` first (it builds the library and registers the lab kernel).");
  process.exit(1);
}

function hasJupyter(subcommand) {
  const probe = spawnSync("jupyter", [subcommand, "--version"], { encoding: "utf8" });
  return probe.status === 0;
}

const env = {
  ...process.env,
  JUPYTER_PATH: [path.join(root, ".jupyter"), process.env.JUPYTER_PATH].filter(Boolean).join(path.delimiter),
};

if (!headless) {
  const app = hasJupyter("lab") ? "lab" : hasJupyter("notebook") ? "notebook" : null;
  if (app) {
    console.log(
      `Starting Jupyter ${app === "lab" ? "Lab" : "Notebook"} on ${root}; open notebooks/ and pick the "Multimodal Labs (TypeScript)" kernel.`,
    );
    // Jupyter refuses to run as root without --allow-root; containers and lab machines often are root.
    const rootFlag = process.getuid && process.getuid() === 0 && !jupyterArgs.includes("--allow-root") ? ["--allow-root"] : [];
    const child = spawn("jupyter", [app, `--notebook-dir=${root}`, ...rootFlag, ...jupyterArgs], {
      stdio: "inherit",
      env,
      cwd: root,
    });
    child.on("exit", (code) => process.exit(code ?? 0));
    for (const signal of ["SIGINT", "SIGTERM"]) process.on(signal, () => child.kill(signal));
    return;
  }
  console.log("Jupyter is not installed, so the labs run headless now (the solutions, into out/).");
  console.log("To work on the exercises interactively, install Jupyter and run `npm start` again:");
  console.log("  Debian/Ubuntu: sudo apt install jupyter-notebook    any OS: pip install jupyterlab\n");
}

const solutions = fs
  .readdirSync(path.join(root, "solutions"))
  .filter((f) => f.endsWith(".ipynb"))
  .sort()
  .map((f) => path.join("solutions", f));
const run = spawn(process.execPath, [path.join(root, "bin", "mllm-labs.js"), "run", ...solutions, "--out", "out"], {
  stdio: "inherit",
  cwd: root,
  env,
});
run.on("exit", (code) => {
  if (code === 0) console.log(`\nExecuted notebooks are in ${path.join(root, "out")}; exercises are in notebooks/.`);
  process.exit(code ?? 1);
});
