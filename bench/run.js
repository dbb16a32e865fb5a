#!/usr/bin/env node
/**
 * `npm run bench [-- SUITE...]`: benchmarks that print a table, then one JSON line per result.
 * Suites: gemm (GFLOP/s per backend), gpt (training step vs PyTorch), dispatch (kernels per GPT step), movement (native
 * Tile and PadV2 vs tfjs's cpu kernels), kernel (lab kernel start and cell
 * round trip vs tslab), peft (LoRA/QLoRA memory, step time and perplexity). Default: all.
 * Results are ratios against a reference measured in the same run, never timed tests.
 */
"use strict";
const path = require("path");
const fs = require("fs");

const SUITES = {
  gemm: () => require("./engine.js").gemm(),
  gpt: () => require("./engine.js").gpt(),
  dispatch: () => require("./engine.js").dispatch(),
  movement: () => require("./engine.js").movement(),
  kernel: () => require("./kernel.js").run(),
  peft: () => require("./peft.js").run(),
};

(async () => {
  if (!fs.existsSync(path.join(__dirname, "..", "dist", "src", "index.js"))) {
    console.error("bench: the project is not built; run `npm install` (or `npm run build`) first");
    process.exit(2);
  }
  const wanted = process.argv.slice(2);
  for (const name of wanted) {
    if (!SUITES[name]) {
      console.error(`bench: unknown suite "${name}"; expected one of ${Object.keys(SUITES).join(", ")}`);
      process.exit(2);
    }
  }
  for (const name of wanted.length ? wanted : Object.keys(SUITES)) {
    console.log(`== ${name}`);
    await SUITES[name]();
  }
  // A GPU backend keeps Node's event loop alive (Dawn runs in the background): end explicitly.
  process.exit(0);
})().catch((error) => {
  console.error(`bench: ${error.stack || error}`);
  process.exit(1);
});
