/**
 * The sensor and point-cloud bridges (lab 03): the IMU encoder's windowed
 * convolution equals a real conv1d, the point encoder and its bridge ignore
 * the order of the points, shapes on the world's stored windows and clouds,
 * a save/load round trip of both modalities through the registry, a few
 * training steps lowering the loss with the LLM frozen, no tensor leaks; and
 * the answer metrics (audio events, activity and cadence, solid and color).
 */
import { beforeAll, describe, expect, it } from "vitest";
import * as fs from "node:fs";
import * as path from "node:path";
import * as tf from "@tensorflow/tfjs";
import { registerNativeBackend } from "../src/engine/native/register";
import { ImuEncoder, imuTokenCount, resolveImuEncoderConfig } from "../src/models/imu_encoder";
import { PointEncoder } from "../src/models/point_encoder";
import {
  ModalityLlm,
  resolveModalityLlmConfig,
  MODALITY_LLM_PRESETS,
  type ModalityLlmConfig,
} from "../src/models/modality_bridge";
import { MODALITY_LLM_SPEC } from "../src/models/modality_bridge_spec";
import { loadPretrained } from "../src/io/pretrained";
import { saveCheckpoint } from "../src/io/safetensors";
import { openSplit, storedArray } from "../src/data/loaders";
import { AdamW } from "../src/train/adamw";
import { audioEventAccuracy, parseCadence, pointCloudMetrics, sensorActivityMetrics } from "../src/metrics/modality_answers";
import type { Module } from "../src/nn/module";
import { maxDifference } from "./helpers/max_difference";
import { scratchFolders } from "./helpers/scratch";

/** Temporary folders, removed after this file's tests (test/helpers/scratch.ts). */
const scratch = scratchFolders();

const WORLD = path.join(__dirname, "..", "data", "world");

beforeAll(async () => {
  registerNativeBackend();
  await tf.setBackend("native");
});

/** Redraws every matrix of `module` from N(0, std²) (a random LLM at 0.02 has almost flat logits that no prompt moves). */
function redraw(module: Module, std: number, seed: number): void {
  for (const [, variable] of module.namedParameters())
    if (variable.rank === 2) tf.tidy(() => variable.assign(tf.randomNormal(variable.shape, 0, std, "float32", seed++)));
}

const VOCAB = 40;
const text = { vocabSize: VOCAB, hiddenSize: 16, intermediateSize: 24, numLayers: 1, numHeads: 2, numKeyValueHeads: 1 };
const imuConfig: ModalityLlmConfig = {
  modality: "imu",
  imu: {
    windowLength: 40,
    kernelSize: 8,
    stride: 4,
    hiddenSize: 16,
    intermediateSize: 24,
    numLayers: 1,
    numHeads: 2,
    labels: ["a", "b"],
  },
  qformer: { hiddenSize: 12, intermediateSize: 16, numLayers: 1, numHeads: 2 },
  numQueryTokens: 2,
  text,
  seed: 4,
};
const pointConfig: ModalityLlmConfig = {
  modality: "points",
  points: { hiddenSize: 16, mlpSizes: [8] },
  qformer: { hiddenSize: 12, intermediateSize: 16, numHeads: 2 },
  numQueryTokens: 3,
  text,
  seed: 5,
};
const ids = () =>
  tf.tensor2d(
    [
      [5, 6, 7],
      [8, 9, 0],
    ],
    [2, 3],
    "int32",
  );

describe("IMU encoder", () => {
  it("its windowed linear layer is a strided conv1d", async () => {
    const encoder = new ImuEncoder(imuConfig.imu!);
    const windows = tf.randomNormal([2, 40, 6], 0, 1, "float32", 1);
    try {
      const Tk = imuTokenCount(encoder.config);
      expect(Tk).toBe(9); // ⌊(40 − 8) / 4⌋ + 1
      const B = 2;
      const taps = Array.from({ length: Tk }, (_, t) => Array.from({ length: 8 }, (_, j) => t * 4 + j)).flat();
      const ours = tf.tidy(() => encoder.conv.apply(tf.gather(windows, taps, 1).reshape([B, Tk, 48])));
      // Linear weight [D, k·C] (rows: output) → conv filter [k, C, D]
      const reference = tf.tidy(() => {
        const filter = encoder.conv.weight.reshape([16, 8, 6]).transpose([1, 2, 0]) as tf.Tensor3D;
        return tf.conv1d(windows as tf.Tensor3D, filter, 4, "valid").add(encoder.conv.bias!);
      });
      expect(await maxDifference(ours, reference)).toBeLessThan(1e-4);
      const out = encoder.forward(windows);
      expect([out.lastHiddenState.shape, out.pooled.shape, out.logits!.shape]).toEqual([
        [2, 9, 16],
        [2, 16],
        [2, 2],
      ]);
      expect(() => encoder.forward(tf.zeros([1, 39, 6]))).toThrow(/windows must be \[B, 40, 6\], got \[1,39,6\]/);
      tf.dispose([ours, reference, out]);
    } finally {
      windows.dispose();
      encoder.dispose();
    }
  });

  it("resolves its defaults (the world's 4 s windows at 50 Hz) and names bad fields", () => {
    const resolved = resolveImuEncoderConfig({ hiddenSize: 8, intermediateSize: 8, numLayers: 1, numHeads: 2 });
    expect([resolved.numChannels, resolved.windowLength, resolved.kernelSize, resolved.stride, imuTokenCount(resolved)]).toEqual([
      6, 200, 10, 5, 39,
    ]);
    expect(resolveImuEncoderConfig(resolved)).toEqual(resolved);
    expect(() => resolveImuEncoderConfig({ ...resolved, stride: 0 })).toThrow(/config.stride must be a positive integer, got 0/);
  });
});

describe("point encoder", () => {
  it("is blind to the order of the points, as is the bridge over its features", async () => {
    const model = new ModalityLlm(pointConfig);
    redraw(model.bridge, 0.3, 31); // attention that is not uniform
    const cloud = tf.randomNormal([1, 20, 6], 0, 1, "float32", 2);
    const reversed = tf.reverse(cloud, 1);
    try {
      const encoder = model.encoder as PointEncoder;
      const a = encoder.forward(cloud);
      const b = encoder.forward(reversed);
      expect(a.pointFeatures.shape).toEqual([1, 20, 16]);
      expect(await maxDifference(a.pooled, b.pooled)).toBe(0);
      const promptA = model.softPrompt(cloud);
      const promptB = model.softPrompt(reversed);
      expect(promptA.shape).toEqual([1, 3, 16]);
      expect(await maxDifference(promptA, promptB)).toBeLessThan(1e-5);
      expect(model.features(cloud).shape).toEqual([1, 1, 21, 16]); // pooled first, then every point
      tf.dispose([a, b, promptA, promptB]);
    } finally {
      tf.dispose([cloud, reversed]);
      model.dispose();
    }
  });
});

describe("modality bridges into the LLM", () => {
  it("read the world's stored sensor windows and point clouds with the nano presets", () => {
    const windows = storedArray(openSplit(WORLD, "sensors", "val"), "windows");
    const clouds = storedArray(openSplit(WORLD, "points", "val"), "points");
    const language = { vocabSize: 851, hiddenSize: 128, intermediateSize: 64, numLayers: 1, numHeads: 4 };
    const imu = new ModalityLlm({ ...MODALITY_LLM_PRESETS["imu-llm-nano"], text: language });
    const points = new ModalityLlm({ ...MODALITY_LLM_PRESETS["point-llm-nano"], text: language });
    try {
      expect(windows.shape.slice(1)).toEqual([200, 6]);
      const a = imu.softPrompt(windows.slice([0, 0, 0], [2, 200, 6]));
      const b = points.softPrompt(clouds.slice([0, 0, 0], [2, -1, 6]));
      expect([a.shape, b.shape]).toEqual([
        [2, 4, 128],
        [2, 4, 128],
      ]);
      tf.dispose([a, b]);
    } finally {
      tf.dispose([windows, clouds]);
      imu.dispose();
      points.dispose();
    }
  });

  it.each([
    ["imu", imuConfig],
    ["points", pointConfig],
  ] as const)("%s: saves and loads back through the registry with the same outputs", async (_name, config) => {
    const directory = scratch("modality-llm-");
    const model = new ModalityLlm(config);
    const inputs =
      config.modality === "imu"
        ? tf.randomNormal([2, 40, 6], 0, 1, "float32", 3)
        : tf.randomNormal([2, 12, 6], 0, 1, "float32", 3);
    const inputIds = ids();
    try {
      fs.writeFileSync(path.join(directory, "config.json"), JSON.stringify(MODALITY_LLM_SPEC.toHF(model.config)));
      await saveCheckpoint(directory, model.stateDict());
      const loaded = loadPretrained(directory);
      expect(loaded.modelType).toBe("mllm_modality_llm");
      const reloaded = loaded.model as ModalityLlm;
      expect(reloaded.config).toEqual({ ...resolveModalityLlmConfig(config), seed: 0 }); // config.json keeps no seed
      const a = model.forward({ inputs, inputIds }).logits;
      const b = reloaded.forward({ inputs, inputIds }).logits;
      expect(a.shape).toEqual([2, config.numQueryTokens! + 3, VOCAB]);
      expect(await maxDifference(a, b)).toBe(0);
      tf.dispose([a, b]);
      reloaded.dispose();
    } finally {
      tf.dispose([inputs, inputIds]);
      model.dispose();
      fs.rmSync(directory, { recursive: true, force: true });
    }
  });

  it("train the encoder and bridge with the LLM frozen: a few steps lower the loss", async () => {
    const model = new ModalityLlm(imuConfig);
    redraw(model.languageModel, 0.5, 41);
    const inputs = tf.randomNormal([2, 40, 6], 0, 1, "float32", 6);
    const inputIds = ids();
    const labels = tf.tensor2d(
      [
        [-100, 6, 7],
        [-100, 9, -100],
      ],
      [2, 3],
      "int32",
    );
    const frozen = await model.languageModel.model.embedTokens.weight.data();
    const trainable = model.trainableParameters();
    expect(trainable.length).toBe(model.encoder.namedParameters().length + model.bridge.namedParameters().length);
    const optimizer = new AdamW({ learningRate: 1e-2, weightDecay: 0 });
    try {
      const losses: number[] = [];
      for (let step = 0; step < 10; step++) {
        const loss = optimizer.minimize(() => model.forward({ inputs, inputIds, labels }).loss!, trainable);
        losses.push((await loss.data())[0]);
        loss.dispose();
      }
      expect(losses[losses.length - 1], losses.map((l) => l.toFixed(2)).join(" ")).toBeLessThan(losses[0] - 0.3);
      expect(Array.from(await model.languageModel.model.embedTokens.weight.data())).toEqual(Array.from(frozen));
    } finally {
      optimizer.dispose();
      tf.dispose([inputs, inputIds, labels]);
      model.dispose();
    }
  }, 120_000);

  it("leak no tensors through forward and generate", async () => {
    const model = new ModalityLlm(pointConfig);
    const inputs = tf.randomNormal([2, 12, 6], 0, 1, "float32", 7);
    const inputIds = ids();
    try {
      const before = tf.memory().numTensors;
      tf.dispose(model.forward({ inputs, inputIds, labels: inputIds }));
      const generated = await model.generate({ inputs, inputIds }, { maxNewTokens: 2 });
      expect(generated.map((row) => row.length)).toEqual([2, 2]);
      expect(tf.memory().numTensors).toBe(before);
    } finally {
      tf.dispose([inputs, inputIds]);
      model.dispose();
    }
  });

  it("name a missing encoder config", () => {
    expect(() => resolveModalityLlmConfig({ ...imuConfig, imu: undefined })).toThrow(/modality "imu" needs config.imu/);
    expect(() => resolveModalityLlmConfig({ ...imuConfig, modality: "smell" as "imu" })).toThrow(
      /modality must be one of imu, points, got "smell"/,
    );
  });
});

describe("answer metrics", () => {
  it("scores audio events by color and shape", () => {
    const result = audioEventAccuracy([
      { answer: "the sound of a red triangle", color: "red", shape: "triangle" },
      { answer: "a blue triangle", color: "red", shape: "triangle" },
      { answer: "something", color: "green", shape: "star" },
    ]);
    expect(result.accuracy).toBeCloseTo(1 / 3);
    expect(result.color.accuracy).toBeCloseTo(1 / 3);
    expect(result.shape.accuracy).toBeCloseTo(2 / 3);
  });

  it("reads cadences, per minute or per second", () => {
    expect(parseCadence("the person is walking at a steady pace, about 1.7 steps per second")).toBe(1.7);
    expect(parseCadence("the person is cycling, pedalling about 72 times a minute")).toBeCloseTo(1.2);
    expect(parseCadence("the person is sitting still")).toBeUndefined();
  });

  it("scores activities and the cadence error over windows that state one", () => {
    const result = sensorActivityMetrics([
      { answer: "the person is walking, about 1.5 steps per second", activity: "walking", cadence: 1.75 },
      { answer: "the person is running hard", activity: "running", cadence: 2.7 },
      { answer: "the person is cycling, pedalling about 60 times a minute", activity: "stairs", cadence: 1.5 },
      { answer: "the person is sitting still", activity: "sitting", cadence: 0.3 },
    ]);
    expect(result.activity.accuracy).toBe(0.75);
    expect(result.activity.confusion.stairs.cycling).toBe(1);
    expect(result.cadence.count).toBe(2);
    expect(result.cadence.missing).toBe(1);
    expect(result.cadence.meanAbsoluteError).toBeCloseTo((0.25 + 0.5) / 2);
  });

  it("scores point clouds by solid and color", () => {
    const result = pointCloudMetrics([
      { answer: "a large red sphere", solid: "sphere", color: "red" },
      { answer: "a small red cube", solid: "cone", color: "red" },
    ]);
    expect([result.solid.accuracy, result.color.accuracy, result.both]).toEqual([0.5, 1, 0.5]);
  });
});
