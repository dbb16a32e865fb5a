#!/usr/bin/env node
/**
 * Builds the native CPU kernels (native/ → build/Release/mllm_native.node) with node-gyp, offline:
 * against the running Node's own headers (its install prefix as `--nodedir`), never downloading them.
 * A failed build never fails the install: the engine then falls back to tfjs's `cpu` backend, and this
 * script says so in one line. `MLLM_SKIP_NATIVE=1` skips the build.
 */
"use strict";
const { spawnSync } = require("child_process");
const fs = require("fs");
const path = require("path");

const root = path.resolve(__dirname, "..");

function findNodeGyp() {
  const candidates = [];
  try {
    candidates.push(require.resolve("node-gyp/bin/node-gyp.js", { paths: [root] }));
  } catch {
    // not a dependency of the project: npm's own copy, tried next
  }
  if (process.env.npm_execpath)
    candidates.push(path.join(path.dirname(process.env.npm_execpath), "..", "node_modules", "node-gyp", "bin", "node-gyp.js"));
  candidates.push(
    path.join(
      path.dirname(process.execPath),
      "..",
      "lib",
      "node_modules",
      "npm",
      "node_modules",
      "node-gyp",
      "bin",
      "node-gyp.js",
    ),
  );
  return candidates.find((file) => fs.existsSync(file));
}

function nodeHeaders() {
  const prefix = path.resolve(path.dirname(process.execPath), "..");
  return fs.existsSync(path.join(prefix, "include", "node", "node_api.h")) ? prefix : undefined;
}

function main() {
  if (process.env.MLLM_SKIP_NATIVE === "1") return "skipped (MLLM_SKIP_NATIVE=1); the engine will use tfjs's cpu backend";
  const gyp = findNodeGyp();
  if (!gyp) return "node-gyp not found; the engine will use tfjs's cpu backend";
  const nodedir = nodeHeaders();
  if (!nodedir)
    return `no Node headers next to ${process.execPath} (include/node/node_api.h); the engine will use tfjs's cpu backend`;
  const started = Date.now();
  const result = spawnSync(process.execPath, [gyp, "rebuild", `--nodedir=${nodedir}`, "--jobs=max"], {
    cwd: root,
    encoding: "utf8",
  });
  if (result.status !== 0) {
    const log = path.join(root, "build", "native-build.log");
    fs.mkdirSync(path.dirname(log), { recursive: true });
    fs.writeFileSync(log, `${result.stdout}\n${result.stderr}`);
    const reason =
      (result.stderr || "").split("\n").find((line) => /error/i.test(line)) || `node-gyp exited with ${result.status}`;
    return `build failed (${reason.trim()}; full log in build/native-build.log); the engine will use tfjs's cpu backend`;
  }
  return `build/Release/mllm_native.node built in ${((Date.now() - started) / 1000).toFixed(0)} s`;
}

const note = main();
console.log(`mllm-labs: native kernels: ${note}`);
