/**
 * Where the GPT benchmark step's time goes: per-kernel milliseconds and call counts on the native
 * backend (each registered kernel wrapped with a timer), and the time spent outside kernels (tfjs's
 * autograd and JavaScript). `node bench/profile_gpt_step.js [steps]` (default 6; the first 2 warm up).
 * The same model and optimizer as `npm run bench -- gpt`.
 */
"use strict";
const tf = require("@tensorflow/tfjs");
const lib = require("../dist/src/index.js");
const GEMM_FLOP_PER_STEP = 85.3e9; // forward ≈ 28.4 GFLOP (4 blocks: qkv, output, MLP, attention; head), backward twice that
(async () => {
  await lib.initEngine({ backend: "native", verbose: false });
  const backend = tf.getBackend();
  const totals = new Map();
  for (const config of tf.getKernelsForBackend(backend)) {
    const original = config.kernelFunc;
    config.kernelFunc = (args) => {
      const t0 = process.hrtime.bigint();
      const out = original(args);
      const ms = Number(process.hrtime.bigint() - t0) / 1e6;
      const key = config.kernelName;
      const e = totals.get(key) ?? { ms: 0, calls: 0 };
      e.ms += ms;
      e.calls++;
      totals.set(key, e);
      return out;
    };
  }
  const V = 256,
    T = 128,
    B = 32;
  const model = new lib.GPT({ vocabSize: V, contextLength: T, dim: 256, layers: 4, heads: 4, seed: 0 });
  const optimizer = new lib.AdamW({ learningRate: 1e-3, weightDecay: 0 });
  const ids = tf.randomUniform([B, T], 0, V, "int32", 1);
  const targets = tf.randomUniform([B, T], 0, V, "int32", 2);
  const steps = +(process.argv[2] ?? 6);
  let wall = 0;
  for (let step = 0; step < steps; step++) {
    if (step === 2) {
      totals.clear();
      wall = 0;
    }
    const t0 = performance.now();
    const loss = optimizer.minimize(() => lib.crossEntropy(model.apply(ids), targets), model.trainableParameters());
    await loss.data();
    loss.dispose();
    wall += performance.now() - t0;
  }
  const n = steps - 2;
  const rows = [...totals.entries()].sort((a, b) => b[1].ms - a[1].ms);
  const kernelMs = rows.reduce((s, [, e]) => s + e.ms, 0) / n;
  console.log(
    `wall ${(wall / n).toFixed(1)} ms/step, in kernels ${kernelMs.toFixed(1)} ms, outside ${(wall / n - kernelMs).toFixed(1)} ms`,
  );
  for (const [k, e] of rows.slice(0, 25))
    console.log(k.padEnd(28), (e.ms / n).toFixed(1).padStart(8), "ms", String(e.calls / n).padStart(6), "calls");
  const gemmMs = ["BatchMatMul", "_FusedMatMul"].reduce((s, k) => s + (totals.get(k)?.ms ?? 0), 0) / n;
  console.log(
    `matrix products: ${gemmMs.toFixed(1)} ms a step, ${(GEMM_FLOP_PER_STEP / gemmMs / 1e6).toFixed(0)} GFLOP/s (kernel ${tf.backend().addon?.info?.().gemmKernel ?? "?"})`,
  );
})().catch((error) => {
  console.error(error);
  process.exitCode = 1;
});
