/** LoRA and QLoRA: the behaviours peft and bitsandbytes guarantee, checked on the library's own models. */
import { beforeAll, describe, expect, it } from "vitest";
import * as fs from "node:fs";
import * as path from "node:path";
import * as tf from "@tensorflow/tfjs";
import { registerNativeBackend } from "../src/engine/native/register";
import { maxDifference } from "./helpers/max_difference";
import { LlamaForCausalLM, type LlamaConfig } from "../src/models/llama";
import { LoraModel, getLoraModel } from "../src/peft/lora";
import { quantize } from "../src/peft/quantize";
import { quantize4bit, dequantize4bit, bitsPerParameter, NF4_CODE } from "../src/peft/quantize_4bit";
import { QuantizedWeight4bit } from "../src/peft/quantized_weight";
import { createNormalMap } from "../src/peft/normal_map";
import { normalQuantile } from "../src/util/normal";
import { dequantizeComposite, bytesToWords } from "../src/kernels/dequantize";
import { crossEntropy } from "../src/train/loss";
import { AdamW } from "../src/train/adamw";
import { SafetensorsFile } from "../src/io/safetensors";
import { scratchFolders } from "./helpers/scratch";

/** Temporary folders, removed after this file's tests (test/helpers/scratch.ts). */
const scratch = scratchFolders();

const CONFIG: LlamaConfig = {
  vocabSize: 40,
  hiddenSize: 32,
  intermediateSize: 64,
  numLayers: 2,
  numHeads: 4,
  numKeyValueHeads: 2,
  seed: 5,
};
const TARGETS = ["q_proj", "v_proj", "down_proj"];

beforeAll(async () => {
  registerNativeBackend();
  await tf.setBackend("native");
});

const ids = () =>
  tf.tensor2d(
    [
      [1, 5, 9, 13, 17, 21],
      [2, 4, 6, 8, 10, 12],
    ],
    [2, 6],
    "int32",
  );

describe("LoRA", () => {
  it("a zero-initialised adapter leaves the outputs unchanged; only adapters are trainable", async () => {
    const model = new LlamaForCausalLM(CONFIG);
    const input = ids();
    const before = model.apply(input);
    const lora = getLoraModel(model, { r: 4, alpha: 8, targetModules: TARGETS });
    const after = model.apply(input);
    expect(await maxDifference(before, after)).toBe(0);
    const trainable = model
      .namedParameters()
      .filter(([, variable]) => variable.trainable)
      .map(([name]) => name);
    expect(trainable).toHaveLength(2 * 3 * CONFIG.numLayers);
    expect(trainable.every((name) => /\.(q_proj|v_proj|down_proj)\.lora_[AB]\.default\.weight$/.test(name))).toBe(true);
    expect(lora.layers.size).toBe(3 * CONFIG.numLayers);
    tf.dispose([input, before, after]);
    model.dispose();
  });

  it("gradients reach only the adapters", () => {
    const model = new LlamaForCausalLM(CONFIG);
    const lora = getLoraModel(model, { r: 4, alpha: 8, targetModules: TARGETS, initLoraWeights: false });
    const input = ids();
    const { grads, value } = tf.variableGrads(() => crossEntropy(model.apply(input), input));
    const names = new Set(lora.trainableParameters().map((variable) => variable.name));
    expect(Object.keys(grads).length).toBe(names.size);
    for (const name of Object.keys(grads)) expect(names.has(name)).toBe(true);
    tf.dispose([input, value, ...Object.values(grads)]);
    model.dispose();
  });

  it("merge then unmerge restores the weights; merged outputs equal adapter outputs", async () => {
    const model = new LlamaForCausalLM(CONFIG);
    const lora = getLoraModel(model, { r: 4, alpha: 16, useRslora: true, targetModules: TARGETS, initLoraWeights: false });
    const input = ids();
    const original = model.model.layers[0].selfAttention.queryProjection.weight.clone();
    const adapted = model.apply(input);
    await lora.merge();
    const merged = model.apply(input);
    expect(await maxDifference(adapted, merged)).toBeLessThan(1e-5);
    lora.unmerge();
    expect(await maxDifference(original, model.model.layers[0].selfAttention.queryProjection.weight)).toBeLessThan(1e-6);
    lora.setAdaptersEnabled(false);
    const plain = model.apply(input);
    lora.setAdaptersEnabled(true);
    expect(await maxDifference(plain, adapted)).toBeGreaterThan(1e-3);
    tf.dispose([input, original, adapted, merged, plain]);
    model.dispose();
  });

  it("saves in peft's format and loads back to the same outputs", async () => {
    const model = new LlamaForCausalLM(CONFIG);
    const lora = getLoraModel(model, { r: 2, alpha: 4, targetModules: TARGETS, initLoraWeights: false, seed: 9 });
    const directory = scratch("adapter-");
    await lora.save(directory);
    const config = JSON.parse(fs.readFileSync(path.join(directory, "adapter_config.json"), "utf8"));
    expect(config).toMatchObject({ peft_type: "LORA", r: 2, lora_alpha: 4, target_modules: TARGETS });
    const file = SafetensorsFile.open(path.join(directory, "adapter_model.safetensors"));
    expect(file.keys()).toContain("base_model.model.model.layers.1.mlp.down_proj.lora_B.weight");
    file.close();
    const input = ids();
    const expected = model.apply(input);
    const fresh = new LlamaForCausalLM(CONFIG);
    new LoraModel(fresh).loadAdapter(directory);
    const got = fresh.apply(input);
    expect(await maxDifference(expected, got)).toBe(0);
    tf.dispose([input, expected, got]);
    model.dispose();
    fresh.dispose();
  });

  it("several adapters: switch between them", async () => {
    const model = new LlamaForCausalLM(CONFIG);
    const lora = getLoraModel(model, { r: 2, targetModules: ["q_proj"], initLoraWeights: false, seed: 1 });
    lora.addAdapter("second", { r: 2, targetModules: ["q_proj"], initLoraWeights: false, seed: 2 });
    const input = ids();
    const second = model.apply(input);
    lora.setActiveAdapters(["default"]);
    const first = model.apply(input);
    expect(await maxDifference(first, second)).toBeGreaterThan(1e-4);
    expect(() => getLoraModel(new LlamaForCausalLM(CONFIG), { targetModules: ["nothing_here"] })).toThrow(/match no layer/);
    tf.dispose([input, first, second]);
    model.dispose();
  });
});

describe("NF4 / QLoRA", () => {
  it("dequantization error is bounded by half the widest code gap times the block absmax", () => {
    const values = Float32Array.from({ length: 4096 + 37 }, (_, i) => (Math.sin(i * 12.9898) * 43758.5453) % 1);
    const state = quantize4bit(values, [values.length], { blockSize: 128 });
    const restored = dequantize4bit(state);
    let widest = 0;
    for (let i = 1; i < 16; i++) widest = Math.max(widest, NF4_CODE[i] - NF4_CODE[i - 1]);
    for (let i = 0; i < values.length; i++)
      expect(Math.abs(values[i] - restored[i])).toBeLessThanOrEqual((widest / 2) * state.absmax![Math.floor(i / 128)] + 1e-7);
  });

  it("stores 4.5 bits per weight, ≈ 4.127 with double quantization", () => {
    const values = Float32Array.from({ length: 256 * 64 * 4 }, (_, i) => Math.cos(i));
    expect(bitsPerParameter(quantize4bit(values, [values.length]))).toBeCloseTo(4.5, 6);
    const double = bitsPerParameter(quantize4bit(values, [values.length], { doubleQuant: true }));
    expect(double).toBeGreaterThan(4.12);
    expect(double).toBeLessThan(4.13);
  });

  it("the kernel, the composite ops and the JS reference agree; double quantization stays close", async () => {
    const weight = tf.randomNormal([48, 40], 0, 0.05, "float32", 3);
    const values = (await weight.data()) as Float32Array;
    const state = quantize4bit(values, [48, 40]);
    const reference = dequantize4bit(state);
    const quantized = new QuantizedWeight4bit(state);
    const kernel = quantized.dequantize();
    expect(Array.from(await kernel.data())).toEqual(Array.from(reference));
    const composite = tf.tidy(() =>
      dequantizeComposite(tf.tensor1d(bytesToWords(state.packed), "int32"), tf.tensor1d(NF4_CODE), tf.tensor1d(state.absmax!), {
        bits: 4,
        count: 48 * 40,
        blockSize: 64,
      }),
    );
    expect(Array.from(await composite.data())).toEqual(Array.from(reference));
    const double = new QuantizedWeight4bit(quantize4bit(values, [48, 40], { doubleQuant: true }));
    const doubleValues = double.dequantize();
    expect(await maxDifference(doubleValues, kernel)).toBeLessThan(0.01);
    tf.dispose([weight, kernel, composite, doubleValues]);
    quantized.dispose();
    double.dispose();
  });

  it("a QLoRA layer's forward equals the dequantized-weight forward plus the adapter", async () => {
    const model = new LlamaForCausalLM(CONFIG);
    const reports = await quantize(model, { type: "nf4", doubleQuant: true });
    expect(reports.length).toBe(7 * CONFIG.numLayers); // lm_head stays in float
    expect(reports.every((report) => report.relativeError < 0.2 && report.bitsPerParameter < 4.6)).toBe(true);
    const lora = getLoraModel(model, { r: 4, targetModules: TARGETS, initLoraWeights: false });
    const layer = model.model.layers[0].selfAttention.queryProjection;
    const x = tf.randomNormal([5, CONFIG.hiddenSize], 0, 1, "float32", 4);
    const got = layer.apply(x);
    const expected = tf.tidy(() => {
      const w = layer.dequantizedWeight();
      const { A, B, scale } = lora.layers.get("model.layers.0.self_attn.q_proj")!.weights("default");
      return tf.matMul(x, w, false, true).add(tf.matMul(tf.matMul(x, A, false, true), B, false, true).mul(scale));
    });
    expect(await maxDifference(got, expected)).toBeLessThan(1e-5);
    expect(() => layer.weight).toThrow(/quantized/);
    tf.dispose([x, got, expected]);
    model.dispose();
  });

  it("100 QLoRA training steps: the loss falls, only adapters change, no tensor leaks", async () => {
    const model = new LlamaForCausalLM(CONFIG);
    await quantize(model, { doubleQuant: true });
    const lora = getLoraModel(model, { r: 4, alpha: 8, dropout: 0.05, targetModules: TARGETS });
    lora.setTraining(true);
    const optimizer = new AdamW({ learningRate: 0.01, weightDecay: 0 });
    const input = ids();
    const head = model.lmHead!.weight.clone();
    const losses: number[] = [];
    let before = -1;
    for (let step = 0; step < 100; step++) {
      const loss = optimizer.minimize(() => crossEntropy(model.apply(input), input), lora.trainableParameters());
      losses.push((await loss.data())[0]);
      loss.dispose();
      if (step === 0) before = tf.memory().numTensors;
    }
    expect(tf.memory().numTensors).toBe(before);
    // The frozen random head limits how far a rank-4 adapter can go; it still learns.
    expect(losses[99]).toBeLessThan(losses[0] - 0.3);
    expect(await maxDifference(head, model.lmHead!.weight)).toBe(0);
    tf.dispose([input, head]);
    optimizer.dispose();
    model.dispose();
  });
});

describe("NF4's code values from normal quantiles", () => {
  it("normalQuantile matches hand-computed quantiles (AS241, ~1e-15)", () => {
    // Φ⁻¹ values from the literature / CPython's statistics.NormalDist().inv_cdf (the same algorithm in C).
    const known: [number, number][] = [
      [0.5, 0],
      [0.975, 1.959963984540054],
      [0.025, -1.959963984540054],
      [0.3, -0.5244005127080407],
      [0.999, 3.090232306167813],
      [0.02, -2.0537489106318225],
      [1e-10, -6.361340902404056],
      [1 - 1e-12, 7.0344869100478356],
    ];
    for (const [p, x] of known) expect(Math.abs(normalQuantile(p) - x), `Φ⁻¹(${p})`).toBeLessThan(1e-12);
    expect(normalQuantile(0)).toBe(-Infinity);
    expect(normalQuantile(1)).toBe(Infinity);
    expect(() => normalQuantile(1.5)).toThrow(/1\.5/);
    expect(() => normalQuantile(Number.NaN)).toThrow(/NaN/);
  });

  it("createNormalMap reproduces bitsandbytes' NF4 table; without the extra value it is symmetric", () => {
    const code = createNormalMap();
    expect(code.length).toBe(16);
    for (let i = 0; i < 16; i++) expect(Math.abs(code[i] - NF4_CODE[i]), `code value ${i}`).toBeLessThanOrEqual(1e-6);
    expect(code[0]).toBe(-1);
    expect(code[15]).toBe(1);
    expect(code[7]).toBe(0);
    const symmetric = createNormalMap(0.9677083, false);
    expect(symmetric.length).toBe(15);
    for (let i = 0; i < 15; i++) expect(symmetric[i]).toBeCloseTo(-symmetric[14 - i], 7);
    expect(() => createNormalMap(1)).toThrow(/offset.*1/);
  });
});
