/**
 * Benchmarks of the tensor engine, per backend, against references measured in the same run:
 *  - gemm: GFLOP/s of square products (256, 512, 1024) and a batched [8,128,64]×[8,64,128], next to
 *    the machine's peak (MLLM_PEAK_GFLOPS, default 140: about 2 cores of AVX2/FMA here);
 *  - gpt: ms per training step of a GPT (vocab 256, d_model 256, 4 layers, 4 heads, seq 128, batch 32,
 *    Adam), median of 10 after 3 warm-ups, with the same model and optimizer in PyTorch (CPU) when
 *    `/usr/bin/python3 -c "import torch"` works, at its best thread setting.
 * Backends: MLLM_BENCH_BACKENDS (comma-separated), default every one that starts here except `cpu` for
 * the GPT step unless MLLM_BENCH_CPU_GPT=1 (tfjs's JavaScript kernels take about 30 s a step).
 */
"use strict";
const { spawnSync } = require("child_process");
const path = require("path");

const lib = require("../dist/src/index.js");
const tf = require("@tensorflow/tfjs");
/** This folder (bench/); also when bundled for the GPU machine, where __dirname does not exist. */
const benchDir = typeof __dirname !== "undefined" ? __dirname : path.join(process.cwd(), "bench");

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const PEAK = Number(process.env.MLLM_PEAK_GFLOPS ?? 140);

async function backendsHere() {
  const wanted = (process.env.MLLM_BENCH_BACKENDS ?? "webgpu,tensorflow,native,cpu")
    .split(",")
    .map((s) => s.trim())
    .filter(Boolean);
  const available = [];
  for (const name of wanted) {
    try {
      const info = await lib.initEngine({ backend: name, verbose: false });
      const software = /llvmpipe|lavapipe|swiftshader/i.test(info.device);
      if (info.backend === name && software && !process.env.MLLM_BENCH_BACKENDS) {
        console.log(`  ${name}: skipped, a software adapter (${info.device}); name it in MLLM_BENCH_BACKENDS to measure it`);
        lib.closeEngine();
      } else if (info.backend === name) available.push({ name, device: info.device });
      else console.log(`  ${name}: not available (${info.notes.join("; ")})`);
    } catch (error) {
      console.log(`  ${name}: not available (${error.message})`);
    }
  }
  return available;
}

async function timeGemm(aShape, bShape, reps) {
  const a = tf.randomNormal(aShape, 0, 1, "float32", 1);
  const b = tf.randomNormal(bShape, 0, 1, "float32", 2);
  const run = async () => {
    const c = tf.matMul(a, b);
    await c.data(); // the read waits for the work on every backend
    c.dispose();
  };
  await run();
  const times = [];
  for (let i = 0; i < reps; i++) {
    const t0 = performance.now();
    await run();
    times.push(performance.now() - t0);
  }
  tf.dispose([a, b]);
  return median(times);
}

async function gemm() {
  const cases = [
    { name: "gemm 256", a: [256, 256], b: [256, 256], flops: 2 * 256 ** 3 },
    { name: "gemm 512", a: [512, 512], b: [512, 512], flops: 2 * 512 ** 3 },
    { name: "gemm 1024", a: [1024, 1024], b: [1024, 1024], flops: 2 * 1024 ** 3 },
    { name: "gemm [8,128,64]x[8,64,128]", a: [8, 128, 64], b: [8, 64, 128], flops: 2 * 8 * 128 * 128 * 64 },
  ];
  const gpuCases = [
    { name: "gemm 2048", a: [2048, 2048], b: [2048, 2048], flops: 2 * 2048 ** 3 },
    { name: "gemm 4096", a: [4096, 4096], b: [4096, 4096], flops: 2 * 4096 ** 3 },
  ];
  const rows = [];
  for (const backend of await backendsHere()) {
    await lib.initEngine({ backend: backend.name, verbose: false });
    const onGpu = backend.name === "webgpu" && !/llvmpipe|lavapipe/i.test(backend.device);
    for (const c of onGpu ? [...cases, ...gpuCases] : cases) {
      const reps = backend.name === "cpu" && c.flops > 1e9 ? 2 : 10;
      const ms = await timeGemm(c.a, c.b, reps);
      const gflops = c.flops / ms / 1e6;
      rows.push({
        name: c.name,
        backend: backend.name,
        ms: +ms.toFixed(3),
        gflops: +gflops.toFixed(1),
        peak_gflops: PEAK,
        ratio: +(gflops / PEAK).toFixed(3),
      });
    }
  }
  console.log(`\nGEMM (median; ratio = GFLOP/s over the machine's peak ${PEAK})`);
  console.log("case                          backend         ms    GFLOP/s   of peak");
  for (const r of rows)
    console.log(
      `${r.name.padEnd(29)} ${r.backend.padEnd(10)} ${r.ms.toFixed(2).padStart(8)} ${r.gflops.toFixed(1).padStart(9)} ${(100 * r.ratio).toFixed(0).padStart(8)}%`,
    );
  console.log("");
  for (const r of rows) console.log(JSON.stringify(r));
}

/** PyTorch's ms/step at its best thread setting (or on CUDA with MLLM_TORCH_DEVICE=cuda), or undefined with a note. */
function torchStep() {
  const python = process.env.MLLM_TORCH_PYTHON ?? "/usr/bin/python3";
  const device = process.env.MLLM_TORCH_DEVICE ?? "cpu";
  const probe = spawnSync(python, ["-c", "import torch"], { encoding: "utf8" });
  if (probe.status !== 0) {
    console.log(
      `  PyTorch: not available (${python} cannot import torch; Debian: apt install python3-torch libopenblas0-pthread)`,
    );
    return undefined;
  }
  // OPENBLAS_CORETYPE/L2_SIZE, set on some machines here for old OpenBLAS builds, slow OpenBLAS down: unset for the reference.
  const env = { ...process.env };
  delete env.OPENBLAS_CORETYPE;
  delete env.OPENBLAS_L2_SIZE;
  let best;
  const settings =
    device === "cpu"
      ? [
          [1, 2],
          [2, 1],
          [2, 2],
        ]
      : [[1, 1]];
  for (const [torchThreads, blasThreads] of settings) {
    const result = spawnSync(python, [path.join(benchDir, "torch_gpt.py"), "10", "3", String(torchThreads), device], {
      encoding: "utf8",
      env: { ...env, OPENBLAS_NUM_THREADS: String(blasThreads), OMP_NUM_THREADS: String(torchThreads) },
      timeout: 900_000,
    });
    if (result.status !== 0) {
      console.log(
        `  PyTorch (${torchThreads} threads, BLAS ${blasThreads}): failed: ${(result.stderr || "").trim().split("\n").pop()}`,
      );
      continue;
    }
    const measured = JSON.parse(result.stdout.trim().split("\n").pop());
    const setting =
      device === "cpu" ? `torch ${torchThreads} thread${torchThreads > 1 ? "s" : ""}, BLAS ${blasThreads}` : `torch on ${device}`;
    console.log(`  PyTorch ${measured.torch}, ${setting}: ${measured.ms.toFixed(1)} ms/step`);
    if (!best || measured.ms < best.ms) best = { ms: measured.ms, setting };
  }
  return best;
}

/** The benchmark's GPT step: `steps` timed steps after `warmup`; returns the median ms and the kernels dispatched by the last step. */
async function gptStep(backendName, steps, warmup) {
  await lib.initEngine({ backend: backendName, verbose: false });
  const V = 256,
    T = 128,
    B = 32;
  const model = new lib.GPT({ vocabSize: V, contextLength: T, dim: 256, layers: 4, heads: 4, seed: 0 });
  const optimizer = new lib.AdamW({ learningRate: 1e-3, weightDecay: 0 });
  const ids = tf.randomUniform([B, T], 0, V, "int32", 1);
  const targets = tf.randomUniform([B, T], 0, V, "int32", 2);
  const times = [];
  let kernels = 0;
  for (let step = 0; step < warmup + steps; step++) {
    const t0 = performance.now();
    const dispatched = lib.startDispatchCount();
    const loss = optimizer.minimize(() => lib.crossEntropy(model.apply(ids), targets), model.trainableParameters());
    kernels = dispatched(); // before the read: the step's own kernels
    await loss.data();
    loss.dispose();
    if (step >= warmup) times.push(performance.now() - t0);
  }
  optimizer.dispose();
  model.dispose();
  tf.dispose([ids, targets]);
  return { ms: median(times), kernels };
}

async function gpt() {
  const torch = torchStep();
  const rows = [];
  for (const backend of await backendsHere()) {
    if (backend.name === "cpu" && process.env.MLLM_BENCH_CPU_GPT !== "1") {
      console.log("  cpu: GPT step skipped (set MLLM_BENCH_CPU_GPT=1; about 30 s a step)");
      continue;
    }
    const slow = backend.name === "cpu";
    const { ms, kernels } = await gptStep(backend.name, slow ? 3 : 10, slow ? 1 : 3);
    rows.push({
      name: "gpt step",
      backend: backend.name,
      device: backend.device,
      ms: +ms.toFixed(1),
      kernels_per_step: kernels,
      torch_ms: torch ? +torch.ms.toFixed(1) : null,
      torch_setting: torch?.setting ?? null,
      ratio: torch ? +(ms / torch.ms).toFixed(3) : null,
    });
  }
  console.log(
    "\nGPT training step (vocab 256, d 256, 4 layers, 4 heads, seq 128, batch 32, Adam; median of 10 after 3 warm-ups)",
  );
  console.log("backend      ms/step   PyTorch ms   ratio");
  for (const r of rows)
    console.log(
      `${r.backend.padEnd(10)} ${r.ms.toFixed(1).padStart(9)} ${r.torch_ms === null ? "         -" : r.torch_ms.toFixed(1).padStart(12)} ${r.ratio === null ? "     -" : (r.ratio.toFixed(2) + "×").padStart(7)}`,
    );
  console.log("");
  for (const r of rows) console.log(JSON.stringify(r));
}

/**
 * dispatch: kernels dispatched by one GPT training step (the gpt suite's model) per backend, counted by
 * the engine (lib.startDispatchCount: GPU dispatches on webgpu, engine kernels on the CPU backends),
 * after one warm-up step. Quick on every backend, lavapipe included (MLLM_BENCH_BACKENDS=webgpu).
 */
async function dispatch() {
  const rows = [];
  for (const backend of await backendsHere()) {
    if (backend.name === "cpu" && process.env.MLLM_BENCH_CPU_GPT !== "1") {
      console.log("  cpu: GPT step skipped (set MLLM_BENCH_CPU_GPT=1; about 30 s a step)");
      continue;
    }
    const { ms, kernels } = await gptStep(backend.name, 1, 1);
    rows.push({
      name: "gpt step",
      backend: backend.name,
      device: backend.device,
      kernels_per_step: kernels,
      unit: lib.dispatchUnit(backend.name),
      ms: +ms.toFixed(1),
    });
  }
  console.log(
    "\nKernels per GPT training step (vocab 256, d 256, 4 layers, 4 heads, seq 128, batch 32, Adam; the step after one warm-up)",
  );
  console.log("backend    kernels/step  counted as        ms (one step)");
  for (const r of rows)
    console.log(
      `${r.backend.padEnd(10)} ${String(r.kernels_per_step).padStart(12)}  ${r.unit.padEnd(16)} ${r.ms.toFixed(1).padStart(8)}`,
    );
  console.log("");
  for (const r of rows) console.log(JSON.stringify(r));
}

/**
 * Data movement: ms per call of the native backend's Tile and PadV2 against tfjs's cpu kernels (which the native
 * backend used before it had its own), on the shapes the LLaVA trainings give them: grouped-query attention's repeat_kv
 * of a storyteller batch's keys, the image-token merge's mask, the 3×3 patch neighbourhoods of 80 frames, and the
 * gradient of the logits' slice in the language loss. Median of 7 after a warm-up; the outputs are equal (a copy).
 */
async function movement() {
  const cases = [
    { op: "Tile", shape: [32, 1, 5856], reps: [1, 2, 1], where: "repeat_kv, one layer's keys (16 stories)" },
    { op: "Tile", shape: [2928, 1], reps: [1, 128], dtype: "bool", where: "image-token merge mask (16 stories)" },
    {
      op: "PadV2",
      shape: [80, 8, 8, 128],
      paddings: [
        [0, 0],
        [1, 1],
        [1, 1],
        [0, 0],
      ],
      where: "3×3 patch neighbourhoods, 80 frames",
    },
    {
      op: "PadV2",
      shape: [16, 182, 1024],
      paddings: [
        [0, 0],
        [0, 1],
        [0, 0],
      ],
      where: "gradient of the logits' slice",
    },
  ];
  const rows = [];
  for (const c of cases) {
    const timing = {};
    for (const backend of ["native", "cpu"]) {
      await lib.initEngine({ backend, verbose: false });
      const x =
        c.dtype === "bool"
          ? tf.randomUniform(c.shape, 0, 1, "float32", 3).greater(0.5)
          : tf.randomNormal(c.shape, 0, 1, "float32", 3);
      const run = async () => {
        const t0 = performance.now();
        const y = c.op === "Tile" ? tf.tile(x, c.reps) : tf.pad(x, c.paddings);
        await y.data();
        const ms = performance.now() - t0;
        y.dispose();
        return ms;
      };
      await run();
      const times = [];
      for (let i = 0; i < 7; i++) times.push(await run());
      timing[backend] = median(times);
      x.dispose();
    }
    rows.push({
      name: `${c.op} [${c.shape}]`,
      where: c.where,
      native_ms: +timing.native.toFixed(3),
      cpu_ms: +timing.cpu.toFixed(3),
      speedup: +(timing.cpu / timing.native).toFixed(1),
    });
  }
  console.log(`${"kernel".padEnd(26)} ${"native ms".padStart(10)} ${"cpu ms".padStart(10)} ${"speedup".padStart(8)}  where`);
  for (const r of rows)
    console.log(
      `${r.name.padEnd(26)} ${r.native_ms.toFixed(2).padStart(10)} ${r.cpu_ms.toFixed(2).padStart(10)} ${`${r.speedup}×`.padStart(8)}  ${r.where}`,
    );
  console.log("");
  for (const r of rows) console.log(JSON.stringify(r));
}

module.exports = {
  movement: async () => {
    await movement();
    lib.closeEngine();
  },
  dispatch: async () => {
    await dispatch();
    lib.closeEngine();
  },
  gemm: async () => {
    await gemm();
    lib.closeEngine();
  },
  gpt: async () => {
    await gpt();
    lib.closeEngine();
  },
};
