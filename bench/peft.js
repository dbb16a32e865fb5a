/**
 * `npm run bench -- peft`: LoRA and QLoRA measured, not claimed.
 *  - base-weight memory in bits per parameter from the engine's own accounting
 *    (tf.memory().numBytes of the linear weights) for fp32, NF4 and NF4 + double
 *    quantization, on the lab LLM (llama-nano) and a ~100M-parameter Llama (llama-100m);
 *  - a training step's time and peak memory (the engine's buffer accounting, src/engine/memory.ts:
 *    weights + gradients + optimizer state + activations) for full fine-tuning, LoRA and QLoRA on
 *    llama-100m at batch 1×64, next to the 16 / ≈4 / ≈0.6 bytes-per-parameter arithmetic, and QLoRA's
 *    step time as a ratio to LoRA's; the same on llama-nano on every CPU backend;
 *  - perplexity on held-out sequences of a briefly trained model: fp32 vs NF4 vs NF4 + DQ.
 * One JSON line per result: name, bits_per_param, ms, peak_bytes (+ details).
 */
"use strict";
const tf = require("@tensorflow/tfjs");
const lib = require("../dist/src/index.js");

const emit = (result) => console.log(JSON.stringify(result));

/** The linear layers quantize() turns to 4 bits (every Linear but the head), by module path. */
function quantizableLinears(model) {
  return model
    .namedModules()
    .filter(([name, module]) => module instanceof lib.Linear && name !== "lm_head" && !/lora_/.test(name));
}

/** Bits per base weight of the quantizable layers, from the engine's accounting (tf.memory) of the whole model. */
async function memory(label, config) {
  let fp32Bits;
  for (const variant of ["fp32", "nf4", "nf4+dq"]) {
    const before = tf.memory().numBytes;
    const model = new lib.LlamaForCausalLM(config);
    const t0 = performance.now();
    if (variant !== "fp32") await lib.quantize(model, { type: "nf4", doubleQuant: variant === "nf4+dq" });
    const ms = performance.now() - t0;
    const modelBytes = tf.memory().numBytes - before;
    // Subtract what stays float (embeddings, norms, head); the rest is the base weights in whatever form they have.
    const linears = quantizableLinears(model);
    const weightNames = new Set(linears.map(([name]) => `${name}.weight`));
    const floatBytes = model
      .namedParameters()
      .reduce((sum, [name, variable]) => sum + (weightNames.has(name) ? 0 : variable.size * 4), 0);
    const weights = linears.reduce((sum, [, linear]) => sum + linear.inFeatures * linear.outFeatures, 0);
    const bits = ((modelBytes - floatBytes) * 8) / weights;
    fp32Bits ??= bits;
    emit({
      name: `peft.memory.${label}.${variant}`,
      bits_per_param: Number(bits.toFixed(4)),
      ratio: Number((bits / fp32Bits).toFixed(4)),
      ms: Math.round(ms),
      peak_bytes: modelBytes,
      base_weights: weights,
    });
    model.dispose();
  }
}

function batch(V, B, T, seed) {
  const random = new lib.Random(seed);
  // Sequences that follow a rule (x[t+1] = x[t] + step mod V) so there is something to learn.
  const rows = [];
  for (let b = 0; b < B; b++) {
    const step = 1 + random.int(0, 4);
    let x = random.int(0, V);
    const row = [];
    for (let t = 0; t <= T; t++) {
      row.push(x);
      x = (x + step) % V;
    }
    rows.push(row);
  }
  return {
    inputs: tf.tensor2d(
      rows.map((r) => r.slice(0, T)),
      [B, T],
      "int32",
    ),
    targets: tf.tensor2d(
      rows.map((r) => r.slice(1)),
      [B, T],
      "int32",
    ),
  };
}

/**
 * Bytes per parameter of a training step's persistent state, by the arithmetic (no activations): full
 * fine-tuning 16 (float32 weight 4 + gradient 4 + Adam's two moments 8); LoRA 4 per frozen float weight +
 * 16 per adapter weight; QLoRA the 4-bit storage (≈ 4.127 bits ≈ 0.52 bytes with double quantization)
 * per quantized weight + 4 per weight left in float (embeddings, head, norms) + 16 per adapter weight.
 * `simple` is the textbook figure per base parameter (16 / ≈4 / ≈0.6, adapters included); `model` the
 * same arithmetic on this model's actual composition.
 */
function arithmetic(variant, model, trainable, quantizedBytes, quantizedParams) {
  const total = model.parameterCount(); // float parameters (quantized weights are not parameters)
  const base = variant === "full" ? total : total - trainable + (variant === "qlora" ? quantizedParams : 0);
  if (variant === "full") return { simple: 16, modelBytes: 16 * total, base };
  const frozenFloat = total - trainable; // float weights that get no gradient
  const modelBytes = 4 * frozenFloat + quantizedBytes + 16 * trainable;
  const adapters = (16 * trainable) / base;
  return { simple: (variant === "lora" ? 4 : 4.127 / 8) + adapters, modelBytes, base };
}

/**
 * Training steps of full fine-tuning, LoRA and QLoRA on one model and batch: median step time and the peak
 * of the engine's buffer accounting during a step (weights + gradients + optimizer state + activations),
 * next to the bytes-per-parameter arithmetic.
 */
async function steps(label, config, { batch: B, length: T, measured }) {
  lib.startMemoryMeter(); // before anything of the variant exists: its weights count
  const { inputs, targets } = batch(config.vocabSize, B, T, 1);
  let reference; // full fine-tuning's median step and peak
  let loraMs;
  for (const variant of ["full", "lora", "qlora"]) {
    const before = lib.bufferBytes(); // what lives outside this variant
    const model = new lib.LlamaForCausalLM(config);
    if (variant === "qlora") await lib.quantize(model, { type: "nf4", doubleQuant: true });
    if (variant !== "full")
      lib.getLoraModel(model, {
        r: 8,
        alpha: 16,
        targetModules: ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"],
      });
    const optimizer = new lib.AdamW({ learningRate: 1e-4 });
    const variables = model.trainableParameters();
    const trainable = variables.reduce((sum, v) => sum + v.size, 0);
    const step = () => optimizer.minimize(() => lib.crossEntropy(model.apply(inputs), targets), variables);
    const weightBytes = lib.bufferBytes() - before;
    step().dispose(); // warm up: the optimizer's moments exist after this
    const times = [];
    let peak = 0;
    let loss;
    for (let i = 0; i < measured; i++) {
      const t0 = performance.now();
      const { peakBytes } = await lib.measurePeakBytes(async () => {
        const value = step();
        loss = (await value.data())[0];
        value.dispose();
      });
      times.push(performance.now() - t0);
      peak = Math.max(peak, peakBytes - before);
    }
    times.sort((a, b) => a - b);
    const ms = times[Math.floor(times.length / 2)];
    reference ??= { ms, peak };
    if (variant === "lora") loraMs = ms;
    const linears = quantizableLinears(model);
    const quantized = linears.filter(([, linear]) => linear.quantizedWeight);
    const quantizedBytes = quantized.reduce((sum, [, linear]) => sum + linear.quantizedWeight.bytes, 0);
    const quantizedParams = quantized.reduce((sum, [, linear]) => sum + linear.inFeatures * linear.outFeatures, 0);
    const bytes = linears.reduce(
      (sum, [, linear]) => sum + (linear.quantizedWeight ? linear.quantizedWeight.bytes : linear.weight.size * 4),
      0,
    );
    const weights = linears.reduce((sum, [, linear]) => sum + linear.inFeatures * linear.outFeatures, 0);
    const expected = arithmetic(variant, model, trainable, quantizedBytes, quantizedParams);
    reference.expected ??= expected.modelBytes;
    emit({
      name: `peft.step.${variant}`,
      model: label,
      batch: `${B}x${T}`,
      bits_per_param: Number(((bytes * 8) / weights).toFixed(4)),
      ms: Number(ms.toFixed(1)),
      peak_bytes: peak, // the engine's buffer accounting: each buffer once
      ratio_ms: Number((ms / reference.ms).toFixed(3)),
      ratio_peak_bytes: Number((peak / reference.peak).toFixed(3)), // against full fine-tuning, this run
      ...(variant === "qlora" ? { ratio_ms_to_lora: Number((ms / loraMs).toFixed(3)) } : {}),
      peak_bytes_per_param: Number((peak / expected.base).toFixed(3)),
      arithmetic_bytes_per_param: Number(expected.simple.toFixed(3)), // 16 / ≈4 / ≈0.6, per base parameter
      arithmetic_ratio: Number((expected.simple / 16).toFixed(3)),
      model_arithmetic_bytes: expected.modelBytes, // weights + gradients + optimizer state of this model, no activations
      model_arithmetic_ratio: Number((expected.modelBytes / reference.expected).toFixed(3)),
      weight_bytes: weightBytes,
      activation_and_transient_bytes: peak - expected.modelBytes,
      base_params: expected.base,
      trainable_params: trainable,
      total_params: model.parameterCount(),
      loss: Number(loss.toFixed(4)),
      backend: tf.getBackend(),
    });
    optimizer.dispose();
    model.dispose();
  }
  tf.dispose([inputs, targets]);
}

async function perplexity(config) {
  const model = new lib.LlamaForCausalLM(config);
  const optimizer = new lib.AdamW({ learningRate: 3e-3 });
  for (let i = 0; i < 150; i++) {
    const { inputs, targets } = batch(config.vocabSize, 16, 32, 100 + i);
    optimizer.minimize(() => lib.crossEntropy(model.apply(inputs), targets), model.trainableParameters()).dispose();
    tf.dispose([inputs, targets]);
  }
  optimizer.dispose();
  const heldOut = batch(config.vocabSize, 64, 32, 99999);
  const evaluate = async () => {
    const loss = tf.tidy(() => lib.crossEntropy(model.apply(heldOut.inputs), heldOut.targets));
    const value = (await loss.data())[0];
    loss.dispose();
    return Math.exp(value);
  };
  const fp32 = await evaluate();
  emit({
    name: "peft.perplexity.fp32",
    bits_per_param: 32,
    ms: 0,
    peak_bytes: tf.memory().numBytes,
    perplexity: Number(fp32.toFixed(4)),
  });
  const state = model.stateDict();
  const saved = Object.fromEntries(Object.entries(state).map(([k, v]) => [k, v.clone()]));
  for (const variant of ["nf4", "nf4+dq", "fp4"]) {
    const copy = new lib.LlamaForCausalLM(config);
    copy.loadParameters((name) => saved[name].clone(), "trained weights");
    const t0 = performance.now();
    const reports = await lib.quantize(copy, { type: variant === "fp4" ? "fp4" : "nf4", doubleQuant: variant === "nf4+dq" });
    const ms = performance.now() - t0;
    const loss = tf.tidy(() => lib.crossEntropy(copy.apply(heldOut.inputs), heldOut.targets));
    const value = Math.exp((await loss.data())[0]);
    loss.dispose();
    const meanError = reports.reduce((s, r) => s + r.relativeError, 0) / reports.length;
    emit({
      name: `peft.perplexity.${variant}`,
      bits_per_param: Number((reports.reduce((s, r) => s + r.bitsPerParameter, 0) / reports.length).toFixed(4)),
      ms: Math.round(ms),
      peak_bytes: tf.memory().numBytes,
      perplexity: Number(value.toFixed(4)),
      perplexity_ratio: Number((value / fp32).toFixed(4)),
      mean_relative_weight_error: Number(meanError.toFixed(4)),
    });
    copy.dispose();
  }
  tf.dispose(Object.values(saved));
  tf.dispose([heldOut.inputs, heldOut.targets]);
  model.dispose();
}

exports.run = async () => {
  const engine = await lib.initEngine({ verbose: true });
  lib.startMemoryMeter();
  const nano = { vocabSize: 512, ...lib.LLAMA_PRESETS["llama-nano"], seed: 1 };
  const big = { vocabSize: 32000, ...lib.LLAMA_PRESETS["llama-100m"], seed: 1 };
  console.log(
    `# peft on ${engine.backend}: the lab LLM (llama-nano) and llama-100m; ratios against fp32 / full fine-tuning in this run`,
  );
  await memory("llama-nano", nano);
  await memory("llama-100m", big);
  // The measurement: llama-100m, batch 1×64, on the engine's backend.
  await steps("llama-100m", big, { batch: 1, length: 64, measured: 3 });
  // Every backend here, on the lab LLM (tfjs's cpu backend would take minutes a step on llama-100m).
  for (const backend of ["native", "cpu"]) {
    if (!(await tf.setBackend(backend).catch(() => false))) continue;
    await steps("llama-nano", nano, { batch: 8, length: 64, measured: 3 });
  }
  await tf.setBackend(engine.backend);
  await perplexity({ vocabSize: 64, ...lib.LLAMA_PRESETS["llama-nano"], seed: 2 });
};
exports.steps = steps;
