/**
 * The model registry: every registered architecture's config survives
 * config.json and back, its resolved config carries the documented defaults,
 * and a checkpoint saved from a random model loads back through
 * `loadPretrained` with the same parameters (what "adding a model = adding its
 * spec" promises). Unknown model types are refused with the types known.
 */
import { beforeAll, describe, expect, it } from "vitest";
import * as fs from "node:fs";
import * as path from "node:path";
import * as tf from "@tensorflow/tfjs";
import { registerNativeBackend } from "../src/engine/native/register";
import { MODEL_SPECS, modelSpec, registeredModelTypes } from "../src/models/registry";
import { loadPretrained } from "../src/io/pretrained";
import { saveCheckpoint } from "../src/io/safetensors";
import { readHFConfig } from "../src/io/hf_config";
import { resolveLlamaConfig } from "../src/models/llama";
import { resolveCLIPConfig } from "../src/models/clip";
import { resolveBlip2Config } from "../src/models/blip2";
import { resolveLlavaConfig } from "../src/models/llava";
import { resolveAudioEncoderConfig } from "../src/models/audio_encoder";
import { resolveGPTConfig } from "../src/models/gpt";
import { maxDifference } from "./helpers/max_difference";
import { scratchFolders } from "./helpers/scratch";

/** Temporary folders, removed after this file's tests (test/helpers/scratch.ts). */
const scratch = scratchFolders();

beforeAll(async () => {
  registerNativeBackend();
  await tf.setBackend("native");
});

const llama = {
  vocabSize: 40,
  hiddenSize: 16,
  intermediateSize: 24,
  numLayers: 1,
  numHeads: 2,
  numKeyValueHeads: 1,
  eosTokenIds: [3],
  rope: { theta: 500000, type: "llama3" as const, factor: 4 },
};
const clipVision = { hiddenSize: 16, intermediateSize: 24, numLayers: 1, numHeads: 2, imageSize: 8, patchSize: 4 };
/** A tiny config per registered model type (the test fails when a model is registered without one here). */
const TINY: Record<string, object> = {
  llama,
  clip: {
    text: { vocabSize: 30, hiddenSize: 16, intermediateSize: 24, numLayers: 1, numHeads: 2, maxPositionEmbeddings: 8 },
    vision: clipVision,
    projectionDim: 8,
  },
  llava: {
    vision: clipVision,
    text: llama,
    imageTokenId: 39,
    visionFeatureLayers: [-2, -1],
    visionFeatureSelectStrategy: "full",
  },
  "blip-2": {
    vision: { hiddenSize: 16, intermediateSize: 24, numLayers: 1, numHeads: 2, imageSize: 8, patchSize: 4 },
    qformer: { hiddenSize: 12, intermediateSize: 20, numLayers: 2, numHeads: 2 },
    text: llama,
    numQueryTokens: 3,
    imageTokenId: 39,
  },
  mllm_audio_encoder: {
    hiddenSize: 16,
    intermediateSize: 24,
    numLayers: 1,
    numHeads: 2,
    numMelBins: 8,
    maxFrames: 12,
    framesPerToken: 3,
    labels: ["a", "b"],
  },
  mllm_gpt: { vocabSize: 11, contextLength: 6, dim: 8, layers: 1, heads: 2 },
  mllm_video_llama: {
    vision: clipVision,
    audio: { hiddenSize: 12, intermediateSize: 16, numLayers: 1, numHeads: 2, numMelBins: 8, maxFrames: 8, framesPerToken: 2 },
    text: llama,
    videoQformer: { hiddenSize: 12, intermediateSize: 20, numHeads: 2 },
    audioQformer: { hiddenSize: 12, intermediateSize: 20, numLayers: 1, numHeads: 2 },
    numVideoQueryTokens: 3,
    numAudioQueryTokens: 2,
    maxFrames: 4,
    maxAudioSegments: 3,
    framePatchPool: 2,
  },
  mllm_modality_llm: {
    modality: "imu",
    imu: { windowLength: 20, kernelSize: 4, stride: 2, hiddenSize: 8, intermediateSize: 12, numLayers: 1, numHeads: 2 },
    qformer: { hiddenSize: 8, intermediateSize: 12, numLayers: 1, numHeads: 2 },
    text: llama,
  },
};

describe("model registry", () => {
  it("has a spec per model type, each type once", () => {
    const types = registeredModelTypes();
    expect(new Set(types).size).toBe(types.length);
    expect(MODEL_SPECS.map((spec) => spec.modelType).sort()).toEqual(Object.keys(TINY).sort());
    expect(modelSpec("mistral").modelType).toBe("llama");
    expect(() => modelSpec("gpt_neox", "x/config.json")).toThrow(
      /x\/config\.json has model_type "gpt_neox"; the model registry knows llama, mistral, clip/,
    );
  });

  it.each(MODEL_SPECS.map((spec) => [spec.modelType, spec] as const))(
    "%s: config → config.json → config is the same resolved config",
    (type, spec) => {
      const resolved = spec.fromHF({ json: JSON.parse(JSON.stringify(spec.toHF(TINY[type]))), where: `${type} config` });
      expect(resolved).toEqual(spec.fromHF({ json: JSON.parse(JSON.stringify(spec.toHF(resolved))), where: `${type} config` }));
      expect(spec.toHF(resolved)).toEqual(spec.toHF(TINY[type]));
      expect((spec.toHF(resolved) as { model_type: string }).model_type).toBe(type);
    },
  );

  it.each(MODEL_SPECS.map((spec) => [spec.modelType, spec] as const))(
    "%s: a saved random model loads back through loadPretrained with the same parameters",
    async (type, spec) => {
      const directory = scratch(`registry-${type}-`);
      const model = spec.create(spec.fromHF({ json: spec.toHF({ ...TINY[type] }), where: type }));
      try {
        fs.writeFileSync(path.join(directory, "config.json"), JSON.stringify(spec.toHF(model.config)));
        await saveCheckpoint(directory, model.stateDict());
        const before = tf.memory().numTensors;
        const loaded = loadPretrained(directory);
        expect(loaded.modelType).toBe(type);
        const mine = model.namedParameters();
        const theirs = loaded.model.namedParameters();
        expect(theirs.map(([name]) => name)).toEqual(mine.map(([name]) => name));
        for (let i = 0; i < mine.length; i++) expect(await maxDifference(theirs[i][1], mine[i][1])).toBe(0);
        expect(readHFConfig(directory).json.model_type).toBe(type);
        loaded.model.dispose();
        expect(tf.memory().numTensors).toBe(before);
      } finally {
        model.dispose();
        fs.rmSync(directory, { recursive: true, force: true });
      }
    },
  );
});

describe("the committed checkpoints", () => {
  it.each(["language", "vision", "audio"])("%s: config.json is byte for byte what toHF writes from what fromHF reads", (name) => {
    const directory = path.join(__dirname, "..", "data", "checkpoints", name);
    const config = readHFConfig(directory);
    const spec = modelSpec(config.json.model_type);
    expect(JSON.stringify(spec.toHF(spec.fromHF(config)), null, 2) + "\n").toBe(
      fs.readFileSync(path.join(directory, "config.json"), "utf8"),
    );
  });
});

describe("resolve…Config", () => {
  it("fills the documented defaults, once (resolving twice changes nothing)", () => {
    const cases: [unknown, (config: any) => unknown][] = [
      [TINY.llama, resolveLlamaConfig],
      [TINY.clip, resolveCLIPConfig],
      [TINY["blip-2"], resolveBlip2Config],
      [TINY.llava, resolveLlavaConfig],
      [TINY.mllm_audio_encoder, resolveAudioEncoderConfig],
      [TINY.mllm_gpt, resolveGPTConfig],
    ];
    for (const [config, resolve] of cases) expect(resolve(resolve(config))).toEqual(resolve(config));
    const l = resolveLlamaConfig({ vocabSize: 10, hiddenSize: 8, intermediateSize: 8, numLayers: 1, numHeads: 2 });
    expect([
      l.numKeyValueHeads,
      l.headDim,
      l.rmsNormEps,
      l.rope,
      l.hiddenAct,
      l.maxPositionEmbeddings,
      l.eosTokenIds,
      l.padTokenId,
      l.seed,
    ]).toEqual([2, 4, 1e-6, { theta: 10000, type: "default" }, "silu", 2048, [], null, 0]);
    const b = resolveBlip2Config({
      vision: { hiddenSize: 20, imageSize: 8, patchSize: 4 },
      qformer: {},
      text: TINY.llama as any,
    });
    expect([b.qformer.encoderHiddenSize, b.qformer.layerNormEps, b.vision.numLayers, b.numQueryTokens, b.imageTokenId]).toEqual([
      20,
      1e-12,
      39,
      32,
      undefined,
    ]);
  });

  it("names the bad field and value", () => {
    expect(() => resolveLlamaConfig({ vocabSize: 10, hiddenSize: 8, intermediateSize: 8, numLayers: 1, numHeads: 3 })).toThrow(
      /head dimension must be an even integer, got 2\.66/,
    );
    expect(() => resolveCLIPConfig({ text: {}, vision: { imageSize: 30, patchSize: 4 } })).toThrow(
      /imageSize \(30\) must be a multiple of patchSize \(4\)/,
    );
    expect(() => resolveLlavaConfig({ vision: {}, text: TINY.llama as any, visionFeatureLayers: [] })).toThrow(
      /visionFeatureLayers must be a non-empty list of integers, got \[\]/,
    );
    expect(() => resolveLlamaConfig({ ...(TINY.llama as any), rope: { type: "yarn" } })).toThrow(/unsupported rope_type "yarn"/);
  });
});
