/**
 * The engine benchmarks for a GPU machine (no Node there): packed with
 * `../shared/tools/device-pack bench/device.js`, run as `node .devpack/app.mjs`.
 * WebGPU only (the native addon is not packed), with PyTorch on CUDA as the reference.
 */
"use strict";
process.env.MLLM_BENCH_BACKENDS ??= "webgpu";
process.env.MLLM_TORCH_PYTHON ??= "python3";
process.env.MLLM_TORCH_DEVICE ??= "cuda";
const { gemm, gpt } = require("./engine.js");
(async () => {
  await gemm();
  await gpt();
  process.exit(0);
})().catch((error) => {
  console.error(error);
  process.exit(1);
});
