#!/usr/bin/env node
/**
 * Runs at `npm install` in a clone of mllm-labs:
 *  1. builds the library (tsc) when TypeScript is installed (a clone's dev dependencies);
 *  2. links node_modules/mllm-labs to the project, so notebooks import the library by package name;
 *  3. registers the project-local kernelspec "Multimodal Labs (TypeScript)" under .jupyter/.
 * Each step says what it did in one line; a failing step explains itself and fails the install.
 */
"use strict";
const { spawnSync } = require("child_process");
const fs = require("fs");
const path = require("path");

const root = path.resolve(__dirname, "..");

function step(name, fn) {
  try {
    const note = fn();
    console.log(`mllm-labs: ${name}${note ? `: ${note}` : ""}`);
  } catch (error) {
    console.error(`mllm-labs: ${name} failed: ${error.message}`);
    process.exit(1);
  }
}

step("build", () => {
  let tsc;
  try {
    tsc = require.resolve("typescript/bin/tsc", { paths: [root] });
  } catch {
    if (fs.existsSync(path.join(root, "dist", "src", "index.js"))) return "TypeScript not installed; using the existing dist/";
    throw new Error("TypeScript is not installed and dist/ is missing: run `npm install` with dev dependencies");
  }
  const result = spawnSync(process.execPath, [tsc, "-p", path.join(root, "tsconfig.json")], { cwd: root, stdio: "inherit" });
  if (result.status !== 0) throw new Error(`tsc exited with ${result.status}`);
  return "dist/ is up to date";
});

step("link", () => {
  const { ensurePackageLink } = require(path.join(root, "dist", "src", "util", "package_link.js"));
  ensurePackageLink(root);
  return "node_modules/mllm-labs → .";
});

step("kernelspec", () => {
  // Keeps a user's own fields and says what it replaces (src/kernel/kernelspec_install.ts).
  const { installKernelspec, describeInstall } = require(path.join(root, "dist", "src", "kernel", "kernelspec_install.js"));
  return describeInstall(installKernelspec(root))
    .split(root + path.sep)
    .join("");
});
