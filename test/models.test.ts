/**
 * The model library beyond the fixtures: KV-cache decoding equals a full
 * forward; other configurations (MQA, tied head, another θ) save and load;
 * LLaVA's older checkpoint layout and its feature options; generation
 * options; no tensor leaks.
 */
import { beforeAll, describe, expect, it } from "vitest";
import * as fs from "node:fs";
import * as path from "node:path";
import * as tf from "@tensorflow/tfjs";
import { registerNativeBackend } from "../src/engine/native/register";
import { maxDifference } from "./helpers/max_difference";
import { LlamaForCausalLM, type LlamaConfig } from "../src/models/llama";
import { KVCache } from "../src/nn/kv_cache";
import { saveCheckpoint, Checkpoint } from "../src/io/safetensors";
import { loadLlama, loadLlava, loadCLIP, loadBlip2 } from "../src/io/pretrained";
import { LlavaForConditionalGeneration } from "../src/models/llava";
import { Blip2ForConditionalGeneration } from "../src/models/blip2";
import { scratchFolders } from "./helpers/scratch";

/** Temporary folders, removed after this file's tests (test/helpers/scratch.ts). */
const scratch = scratchFolders();

const FIXTURES = path.join(__dirname, "fixtures/hf");

beforeAll(async () => {
  registerNativeBackend();
  await tf.setBackend("native");
});

const MQA: LlamaConfig = {
  vocabSize: 50,
  hiddenSize: 32,
  intermediateSize: 48,
  numLayers: 2,
  numHeads: 4,
  numKeyValueHeads: 1,
  tieWordEmbeddings: true,
  rope: { theta: 500000 },
  rmsNormEps: 1e-6,
  seed: 3,
};

describe("Llama", () => {
  it("decoding with the KV cache gives the logits of a full forward, left padding included", async () => {
    const model = loadLlama(path.join(FIXTURES, "llama/model"));
    const ids = tf.tensor2d(
      [
        [5, 9, 17, 33, 2, 64, 7, 8],
        [0, 0, 0, 11, 12, 13, 14, 15],
      ],
      [2, 8],
      "int32",
    );
    const mask = tf.tensor2d(
      [
        [1, 1, 1, 1, 1, 1, 1, 1],
        [0, 0, 0, 1, 1, 1, 1, 1],
      ],
      [2, 8],
      "int32",
    );
    const before = tf.memory().numTensors;
    const full = model.forward({ inputIds: ids, attentionMask: mask }).logits; // [2, 8, V]
    const cache = new KVCache(model.config.numLayers);
    const steps: tf.Tensor[] = [];
    // prompt of 3, then one token at a time
    for (const [start, size] of [
      [0, 3],
      [3, 1],
      [4, 1],
      [5, 1],
      [6, 1],
      [7, 1],
    ]) {
      steps.push(
        tf.tidy(
          () =>
            model.forward({
              inputIds: ids.slice([0, start], [2, size]),
              attentionMask: mask.slice([0, 0], [2, start + size]),
              cache,
            }).logits,
        ),
      );
    }
    const incremental = tf.concat(steps, 1);
    // Row 1's padded positions see no key at all; compare real positions.
    const [row0, full0, row1, full1] = tf.tidy(() => [
      incremental.slice([0, 0, 0], [1, 8, -1]),
      full.slice([0, 0, 0], [1, 8, -1]),
      incremental.slice([1, 3, 0], [1, 5, -1]),
      full.slice([1, 3, 0], [1, 5, -1]),
    ]);
    expect(await maxDifference(row0, full0)).toBeLessThan(1e-4);
    expect(await maxDifference(row1, full1)).toBeLessThan(1e-4);
    tf.dispose([row0, full0, row1, full1]);
    expect(cache.length).toBe(8);
    cache.dispose();
    tf.dispose([full, incremental, ...steps]);
    expect(tf.memory().numTensors).toBe(before);
    tf.dispose([ids, mask]);
    model.dispose();
  });

  it("multi-query attention, a tied head and another θ save, load and give the same logits", async () => {
    const model = new LlamaForCausalLM(MQA);
    expect(model.namedParameters().some(([name]) => name.startsWith("lm_head"))).toBe(false);
    const directory = scratch("llama-");
    await saveCheckpoint(directory, model.stateDict());
    fs.writeFileSync(
      path.join(directory, "config.json"),
      JSON.stringify({
        model_type: "llama",
        vocab_size: 50,
        hidden_size: 32,
        intermediate_size: 48,
        num_hidden_layers: 2,
        num_attention_heads: 4,
        num_key_value_heads: 1,
        tie_word_embeddings: true,
        rope_theta: 500000,
        rms_norm_eps: 1e-6,
        hidden_act: "silu",
      }),
    );
    const loaded = loadLlama(directory);
    const ids = tf.tensor2d([[1, 2, 3, 4, 5]], [1, 5], "int32");
    const a = model.apply(ids);
    const b = loaded.apply(ids);
    expect(await maxDifference(a, b)).toBe(0);
    const cached = await loaded.generate(ids, { maxNewTokens: 6, stopTokens: [] });
    const uncached = await loaded.generate(ids, { maxNewTokens: 6, stopTokens: [], useCache: false });
    expect(cached).toEqual(uncached);
    tf.dispose([ids, a, b]);
    model.dispose();
    loaded.dispose();
  });

  it("sampling is seeded; top-k 1 is greedy; a stop token ends a row and pads it", async () => {
    const model = new LlamaForCausalLM(MQA);
    const ids = tf.tensor2d(
      [
        [1, 2, 3],
        [4, 5, 6],
      ],
      [2, 3],
      "int32",
    );
    const greedy = await model.generate(ids, { maxNewTokens: 5, stopTokens: [] });
    expect(await model.generate(ids, { maxNewTokens: 5, temperature: 1, topK: 1, stopTokens: [] })).toEqual(greedy);
    const first = await model.generate(ids, { maxNewTokens: 8, temperature: 1.5, topP: 0.9, seed: 7, stopTokens: [] });
    expect(await model.generate(ids, { maxNewTokens: 8, temperature: 1.5, topP: 0.9, seed: 7, stopTokens: [] })).toEqual(first);
    const stop = greedy[0][3]; // row 0's first new token
    const stopped = await model.generate(ids, { maxNewTokens: 5, stopTokens: [stop] });
    // Row 0 ends at the stop token, then holds padding (id 0) while row 1 runs on.
    expect(stopped[0]).toEqual([...greedy[0].slice(0, 4), ...new Array(stopped[0].length - 4).fill(0)]);
    expect(stopped[1].length).toBe(stopped[0].length);
    ids.dispose();
    model.dispose();
  });
});

describe("LLaVA", () => {
  it("loads the current in-memory key layout as well as the saved one", async () => {
    const source = path.join(FIXTURES, "llava/model");
    const directory = scratch("llava-");
    fs.copyFileSync(path.join(source, "config.json"), path.join(directory, "config.json"));
    const checkpoint = Checkpoint.open(source);
    const renamed: Record<string, tf.Tensor> = {};
    for (const key of checkpoint.keys()) {
      const current = key
        .replace(/^language_model\.model\./, "model.language_model.")
        .replace(/^language_model\.lm_head\./, "lm_head.")
        .replace(/^vision_tower\./, "model.vision_tower.vision_model.")
        .replace(/^multi_modal_projector\./, "model.multi_modal_projector.");
      renamed[current] = checkpoint.tensor(key);
    }
    checkpoint.close();
    await saveCheckpoint(directory, renamed);
    tf.dispose(Object.values(renamed));
    const a = loadLlava(source);
    const b = loadLlava(directory);
    for (const [name, variable] of a.namedParameters()) {
      expect(await maxDifference(variable, b.stateDict()[name]), name).toBe(0);
    }
    a.dispose();
    b.dispose();
  });

  it("`full` keeps the class token and several feature layers concatenate", async () => {
    const base = loadLlava(path.join(FIXTURES, "llava/model"));
    const model = new LlavaForConditionalGeneration({
      ...base.config,
      visionFeatureSelectStrategy: "full",
      visionFeatureLayers: [-1, -3],
    });
    base.dispose();
    expect(model.imageTokensPerImage).toBe(17);
    expect(model.projector.linear1.inFeatures).toBe(128);
    const pixels = tf.randomNormal([1, 3, 32, 32], 0, 1, "float32", 1);
    const features = model.imageFeatures(pixels);
    expect(features.shape).toEqual([1, 17, 64]);
    const ids = tf.tensor2d([[3, ...new Array(17).fill(129), 4]], [1, 19], "int32");
    await model.checkInputs({ inputIds: ids, pixelValues: pixels });
    const short = tf.tensor2d([[3, 129, 4]], [1, 3], "int32");
    await expect(model.checkInputs({ inputIds: short, pixelValues: pixels })).rejects.toThrow(
      /holds 1 image token\(s\) \(id 129; per row 1\) but 1 image\(s\) give 17/,
    );
    const generated = await model.generate({ inputIds: ids, pixelValues: pixels }, { maxNewTokens: 3, stopTokens: [] });
    expect(generated[0]).toHaveLength(3);
    tf.dispose([pixels, features, ids, short]);
    model.dispose();
  });
});

describe("no tensor leaks", () => {
  // No tf.tidy around the forward: a tidy would hide the very leak the test looks for.
  const ids = (row: number[]) => tf.tensor2d([row], [1, row.length], "int32");
  it.each([
    [
      "llama",
      () => loadLlama(path.join(FIXTURES, "llama/model")),
      () => ({ inputIds: ids([1, 2, 3]), outputHiddenStates: true }),
    ],
    [
      "clip",
      () => loadCLIP(path.join(FIXTURES, "clip/model")),
      () => ({ pixelValues: tf.zeros([1, 3, 32, 32]), inputIds: ids([5, 6, 2]) }),
    ],
    [
      "llava",
      () => loadLlava(path.join(FIXTURES, "llava/model")),
      () => ({ pixelValues: tf.zeros([1, 3, 32, 32]), inputIds: ids([3, ...new Array(16).fill(129), 4]) }),
    ],
    [
      "blip2",
      () => loadBlip2(path.join(FIXTURES, "blip2/model")),
      () => ({ pixelValues: tf.zeros([1, 3, 32, 32]), inputIds: ids([...new Array(6).fill(129), 4]) }),
    ],
  ] as const)("%s forward: once its inputs and outputs are disposed, no tensor is left", (_, load, makeInputs) => {
    const model = load();
    const before = tf.memory().numTensors;
    const inputs = makeInputs() as any;
    const output = (model as any).forward(inputs);
    tf.dispose(output); // every tensor the forward returned, nested ones included
    tf.dispose(Object.values(inputs).filter((value) => value instanceof tf.Tensor) as tf.Tensor[]);
    expect(tf.memory().numTensors).toBe(before);
    model.dispose();
  });
});

describe("BLIP-2 config", () => {
  it("qkv_bias false gives a fused projection without bias (as a checkpoint without q_bias/v_bias needs)", () => {
    const base = loadBlip2(path.join(FIXTURES, "blip2/model"));
    const withBias = base.namedParameters().filter(([name]) => name.endsWith("self_attn.qkv.bias")).length;
    const model = new Blip2ForConditionalGeneration({ ...base.config, vision: { ...base.config.vision, qkvBias: false } });
    expect(withBias).toBe(base.config.vision.numLayers);
    expect(model.namedParameters().some(([name]) => name.endsWith("self_attn.qkv.bias"))).toBe(false);
    base.dispose();
    model.dispose();
  });
});
