/**
 * VideoLLaMA (lab 03): frame sampling and audio segmenting on hand-made cases,
 * the two baselines' input transforms, shapes through both branches, frame
 * positions making the model see order (and the pooling-only variants not),
 * the padding-frame mask, the soft prompt's layout, a save/load round trip
 * through the registry, a few training steps of each branch lowering the
 * loss, and no tensor leaks; the per-type video QA metric.
 */
import { beforeAll, describe, expect, it } from "vitest";
import * as fs from "node:fs";
import * as path from "node:path";
import * as tf from "@tensorflow/tfjs";
import { registerNativeBackend } from "../src/engine/native/register";
import {
  VideoLlamaForConditionalGeneration,
  resolveVideoLlamaConfig,
  VIDEO_LLAMA_PRESETS,
  type TemporalModel,
  type VideoLlamaConfig,
} from "../src/models/video_llama";
import { VIDEO_LLAMA_SPEC, videoLlamaConfigFromHF, videoLlamaConfigToHF } from "../src/models/video_llama_spec";
import { stepKeyMask, meanOverSteps, attentionOverSteps } from "../src/models/qformer_bridge";
import {
  sampleFrameIndices,
  segmentAudio,
  segmentLogMel,
  shuffledFrameOrder,
  singleMiddleFrame,
  selectFrames,
} from "../src/data/temporal_sampling";
import { videoQuestionType, videoQaAccuracyByType } from "../src/metrics/video_qa";
import { loadPretrained } from "../src/io/pretrained";
import { saveCheckpoint } from "../src/io/safetensors";
import { AdamW } from "../src/train/adamw";
import { Random } from "../src/util/random";
import type { Module } from "../src/nn/module";
import { maxDifference } from "./helpers/max_difference";
import { scratchFolders } from "./helpers/scratch";

/** Temporary folders, removed after this file's tests (test/helpers/scratch.ts). */
const scratch = scratchFolders();

beforeAll(async () => {
  registerNativeBackend();
  await tf.setBackend("native");
});

const VOCAB = 40;
/** A tiny VideoLLaMA: 16×16 frames of 4×4 patches (a 4×4 grid, pooled 2×2 → 5 tokens per frame), widths 16/12/16. */
const tinyConfig = (temporalModel: TemporalModel = "positions", seed = 3): VideoLlamaConfig => ({
  vision: { hiddenSize: 16, intermediateSize: 24, numLayers: 1, numHeads: 2, imageSize: 16, patchSize: 4 },
  audio: { hiddenSize: 12, intermediateSize: 16, numLayers: 1, numHeads: 2, numMelBins: 8, maxFrames: 8, framesPerToken: 2 },
  text: { vocabSize: VOCAB, hiddenSize: 16, intermediateSize: 24, numLayers: 1, numHeads: 2, numKeyValueHeads: 1 },
  videoQformer: { hiddenSize: 16, intermediateSize: 24, numHeads: 2 },
  audioQformer: { hiddenSize: 12, intermediateSize: 16, numLayers: 1, numHeads: 2 },
  numVideoQueryTokens: 3,
  numAudioQueryTokens: 2,
  maxFrames: 6,
  maxAudioSegments: 4,
  framePatchPool: 2,
  temporalModel,
  seed,
});

/**
 * Redraws every matrix of `module` from N(0, std²). At the library's 0.02 initialisation a random Q-Former
 * attends almost uniformly and a random LLM's logits are almost flat; trained ones are neither.
 */
function redraw(module: Module, std: number, seed: number): void {
  for (const [, variable] of module.namedParameters())
    if (variable.rank === 2) tf.tidy(() => variable.assign(tf.randomNormal(variable.shape, 0, std, "float32", seed++)));
}

const B = 2;
const F = 5;
const frames = () => tf.randomNormal([B, F, 3, 16, 16], 0, 1, "float32", 11);
const logMel = () => tf.randomNormal([B, 3, 8, 4], 0, 1, "float32", 12); // 3 segments of 4 frames
const ids = () =>
  tf.tensor2d(
    [
      [5, 6, 7, 8],
      [9, 10, 11, 0],
    ],
    [B, 4],
    "int32",
  );

describe("frame sampling and audio segmenting", () => {
  it("samples the middle frame of equal stretches, with positions and times", () => {
    expect(sampleFrameIndices(12, 4)).toEqual({
      indices: [1, 4, 7, 10],
      positions: [0, 1, 2, 3],
      times: [1 / 12, 4 / 12, 7 / 12, 10 / 12],
    });
    expect(sampleFrameIndices(12, 12).indices).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11]);
    expect(sampleFrameIndices(10, 3, 10).indices).toEqual([1, 5, 8]);
    expect(sampleFrameIndices(10, 3, 10).times).toEqual([0.1, 0.5, 0.8]);
    expect(sampleFrameIndices(7, 1).indices).toEqual([3]);
    expect(() => sampleFrameIndices(8, 9)).toThrow(/count must be an integer in 1…8 \(the clip's frames\), got 9/);
    expect(() => sampleFrameIndices(0, 1)).toThrow(/numFrames must be a positive integer, got 0/);
  });

  it("cuts a clip into segments, padding or dropping the short tail", () => {
    const clip = Float32Array.from({ length: 10 }, (_, i) => i + 1);
    const padded = segmentAudio(clip, 4);
    expect(padded.segments.map((s) => Array.from(s))).toEqual([
      [1, 2, 3, 4],
      [5, 6, 7, 8],
      [9, 10, 0, 0],
    ]);
    expect(padded.positions).toEqual([0, 1, 2]);
    expect(padded.starts).toEqual([0, 4, 8]);
    const dropped = segmentAudio(clip, 4, "drop");
    expect(dropped.segments.map((s) => Array.from(s))).toEqual([
      [1, 2, 3, 4],
      [5, 6, 7, 8],
    ]);
    expect(segmentAudio(clip, 5, "pad").segments.length).toBe(2); // an exact multiple has no tail
    expect(() => segmentAudio(clip, 11, "drop")).toThrow(/a clip of 10 samples has no full segment of 11/);
    expect(() => segmentAudio(clip, 0)).toThrow(/segmentLength must be a positive integer of samples, got 0/);
  });

  it("gives each 0.2 s segment of a 1 s clip its own log-mel", () => {
    const second = Float32Array.from({ length: 16000 }, (_, i) => (i >= 3200 && i < 6400 ? Math.sin(i / 5) : 0));
    const { values, segments, melBins, frames: Fs } = segmentLogMel(second);
    expect([segments, melBins, Fs, values.length]).toEqual([5, 80, 20, 5 * 80 * 20]);
    const energy = (k: number) => values.subarray(k * 1600, (k + 1) * 1600).reduce((a, b) => a + b, 0);
    expect(energy(1)).toBeGreaterThan(energy(0)); // the tone sits in segment 1
    expect(energy(1)).toBeGreaterThan(energy(3));
    expect(() => segmentLogMel(second, { segmentSeconds: 0.015 })).toThrow(/whole number of 160-sample hops, got 0\.015/);
  });

  it("shuffles the frame order (never the original) and repeats the middle frame", () => {
    const indices = [0, 1, 2, 3, 4, 5];
    const random = new Random(7);
    for (let trial = 0; trial < 20; trial++) {
      const shuffled = shuffledFrameOrder(indices, random);
      expect([...shuffled].sort((a, b) => a - b)).toEqual(indices);
      expect(shuffled).not.toEqual(indices);
    }
    expect(shuffledFrameOrder([4, 4, 4], random)).toEqual([4, 4, 4]);
    expect(singleMiddleFrame([1, 4, 7, 10])).toEqual([7, 7, 7, 7]);
    expect(singleMiddleFrame([2, 5, 9])).toEqual([5, 5, 5]);
  });

  it("selects frames of each clip, the same list for all rows or one per row", async () => {
    const video = tf.tidy(() =>
      tf
        .range(0, 2 * 4, 1, "float32")
        .reshape([2, 4, 1, 1, 1])
        .tile([1, 1, 3, 2, 2]),
    );
    const same = selectFrames(video, [3, 0]);
    const perRow = selectFrames(video, [
      [1, 1],
      [2, 3],
    ]);
    expect(same.shape).toEqual([2, 2, 3, 2, 2]);
    expect(Array.from(await same.slice([0, 0, 0, 0, 0], [2, 2, 1, 1, 1]).data())).toEqual([3, 0, 7, 4]);
    expect(Array.from(await perRow.slice([0, 0, 0, 0, 0], [2, 2, 1, 1, 1]).data())).toEqual([1, 1, 6, 7]);
    expect(() => selectFrames(video, [4])).toThrow(/frame index 4; the clips have frames 0…3/);
    tf.dispose([video, same, perRow]);
  });
});

describe("VideoLLaMA", () => {
  it("resolves the documented defaults once", () => {
    const resolved = resolveVideoLlamaConfig({
      vision: {},
      audio: { hiddenSize: 8, intermediateSize: 8, numLayers: 1, numHeads: 2 },
      text: tinyConfig().text,
      videoQformer: {},
      audioQformer: {},
    });
    expect(resolveVideoLlamaConfig(resolved)).toEqual(resolved);
    expect([
      resolved.numVideoQueryTokens,
      resolved.numAudioQueryTokens,
      resolved.maxFrames,
      resolved.maxAudioSegments,
      resolved.framePatchPool,
      resolved.temporalModel,
      resolved.audioSegmentTokens,
      resolved.videoQformer.numLayers,
      resolved.videoQformer.crossAttentionFrequency,
      resolved.videoQformer.encoderHiddenSize,
      resolved.audioQformer.encoderHiddenSize,
    ]).toEqual([32, 8, 32, 8, 1, "positions", "pooled", 2, 1, 768, 8]);
    expect(() => resolveVideoLlamaConfig({ ...tinyConfig(), framePatchPool: 3 })).toThrow(
      /framePatchPool \(3\) must divide the 4×4 patch grid/,
    );
    expect(() => resolveVideoLlamaConfig({ ...tinyConfig(), temporalModel: "lstm" as TemporalModel })).toThrow(
      /temporalModel must be one of positions, attention-pool, mean-pool, got "lstm"/,
    );
  });

  it("gives the documented shapes through both branches and into the LLM", async () => {
    const model = new VideoLlamaForConditionalGeneration(tinyConfig());
    const [pixels, mel, inputIds] = [frames(), logMel(), ids()];
    try {
      expect(model.tokensPerFrame).toBe(5);
      const features = model.frameFeatures(pixels);
      expect(features.shape).toEqual([B, F, 5, 16]);
      const video = model.videoPrompt(features, { outputCrossAttentions: true });
      expect(video.queryOutput.shape).toEqual([B, 3, 16]);
      expect(video.languageInputs.shape).toEqual([B, 3, 16]);
      expect(video.crossAttentions!.map((w) => w.shape)).toEqual([
        [B, 2, 3, F * 5],
        [B, 2, 3, F * 5],
      ]); // 2 layers, both cross-attend
      const heatmap = attentionOverSteps(video.crossAttentions![1], F); // the frame-by-query map of the last layer
      expect(heatmap.shape).toEqual([B, 3, F]);
      const rowSums = heatmap.sum(-1);
      for (const total of await rowSums.data()) expect(total).toBeCloseTo(1, 5);
      tf.dispose([heatmap, rowSums]);
      const segments = model.segmentFeatures(mel);
      expect(segments.shape).toEqual([B, 3, 1, 12]);
      const audio = model.audioPrompt(segments);
      expect(audio.languageInputs.shape).toEqual([B, 2, 16]);
      const both = model.forward({ pixelValues: pixels, audioLogMel: mel, inputIds });
      expect(both.logits.shape).toEqual([B, 3 + 2 + 4, VOCAB]);
      expect(both.attentionMask.shape).toEqual([B, 9]);
      const videoOnly = model.forward({ frameFeatures: features, inputIds });
      expect(videoOnly.logits.shape).toEqual([B, 3 + 4, VOCAB]);
      expect(videoOnly.audioPrompt).toBeUndefined();
      const audioOnly = model.forward({ segmentFeatures: segments, inputIds });
      expect(audioOnly.logits.shape).toEqual([B, 2 + 4, VOCAB]);
      expect(() => model.forward({ inputIds })).toThrow(/give the clip's frames, its sound, or both/);
      expect(() => model.frameFeatures(tf.zeros([1, 7, 3, 16, 16]))).toThrow(/7 frames exceed config.maxFrames 6/);
      tf.dispose([features, video, segments, audio, both, videoOnly, audioOnly]);
    } finally {
      tf.dispose([pixels, mel, inputIds]);
      model.dispose();
    }
  });

  it("with both branches, the prompt is [video queries; audio queries; text]", async () => {
    const model = new VideoLlamaForConditionalGeneration(tinyConfig());
    const [pixels, mel] = [frames(), logMel()];
    try {
      const { prompt, videoPrompt, audioPrompt } = model.softPrompt({ pixelValues: pixels, audioLogMel: mel });
      expect(prompt.shape).toEqual([B, 5, 16]);
      expect(await maxDifference(prompt.slice([0, 0, 0], [B, 3, 16]), videoPrompt!)).toBe(0);
      expect(await maxDifference(prompt.slice([0, 3, 0], [B, 2, 16]), audioPrompt!)).toBe(0);
      tf.dispose([prompt, videoPrompt!, audioPrompt!]);
    } finally {
      tf.dispose([pixels, mel]);
      model.dispose();
    }
  });

  it("frame positions make the output depend on frame order; the pooling-only variants do not", async () => {
    const permutation = [4, 2, 0, 3, 1];
    const differences: Record<TemporalModel, number> = { positions: 0, "attention-pool": 0, "mean-pool": 0 };
    for (const temporalModel of ["positions", "attention-pool", "mean-pool"] as const) {
      const model = new VideoLlamaForConditionalGeneration(tinyConfig(temporalModel));
      redraw(model.videoBridge, 0.3, 21); // attention that is not uniform (a uniform average ignores order whatever the keys hold)
      const pixels = frames();
      const permuted = selectFrames(pixels, permutation);
      try {
        const a = model.videoPrompt(model.frameFeatures(pixels)).languageInputs;
        const b = model.videoPrompt(model.frameFeatures(permuted)).languageInputs;
        differences[temporalModel] = await maxDifference(a, b);
        tf.dispose([a, b]);
      } finally {
        tf.dispose([pixels, permuted]);
        model.dispose();
      }
    }
    expect(differences.positions).toBeGreaterThan(1e-3);
    expect(differences["attention-pool"]).toBeLessThan(1e-5);
    expect(differences["mean-pool"]).toBeLessThan(1e-5);
  });

  it("token-slot positions make the output depend on which slot a frame token is in; without them it does not", async () => {
    const differences: Record<string, number> = {};
    for (const frameTokenPositions of [false, true]) {
      const model = new VideoLlamaForConditionalGeneration({ ...tinyConfig(), frameTokenPositions });
      expect(model.videoBridge.tokenPositionEmbedding?.numEmbeddings).toBe(frameTokenPositions ? 5 : undefined);
      redraw(model.videoBridge, 0.3, 21);
      const pixels = frames();
      try {
        const features = model.frameFeatures(pixels); // [B, F, K = 5, D]
        const swapped = tf.tidy(() => tf.gather(features, [0, 2, 1, 3, 4], 2)); // two patch slots exchanged in every frame
        const a = model.videoPrompt(features).languageInputs;
        const b = model.videoPrompt(swapped).languageInputs;
        differences[String(frameTokenPositions)] = await maxDifference(a, b);
        tf.dispose([features, swapped, a, b]);
        // config.json round trip keeps the switch
        expect(
          videoLlamaConfigFromHF({ json: videoLlamaConfigToHF(model.config), where: "round trip" }).frameTokenPositions,
        ).toBe(frameTokenPositions);
      } finally {
        pixels.dispose();
        model.dispose();
      }
    }
    expect(differences.true).toBeGreaterThan(1e-3);
    expect(differences.false).toBeLessThan(1e-5);
  });

  it("merged frame keys: one K·Dv key per frame that keeps the slots apart; frame differences: a second key, the change", async () => {
    const base = new VideoLlamaForConditionalGeneration({ ...tinyConfig(), mergeFrameTokens: false });
    const merged = new VideoLlamaForConditionalGeneration({ ...tinyConfig(), mergeFrameTokens: true });
    const both = new VideoLlamaForConditionalGeneration({ ...tinyConfig(), mergeFrameTokens: true, frameDifferences: true });
    const pixels = frames();
    try {
      expect([base.keysPerFrame, merged.keysPerFrame, both.keysPerFrame]).toEqual([5, 1, 2]);
      expect(merged.config.videoQformer.encoderHiddenSize).toBe(5 * 16); // K = 5 tokens of width 16 side by side
      const features = base.frameFeatures(pixels); // [B = 2, F = 5, K = 5, D = 16]
      const values = await features.data();
      const keys = both.frameKeys(features); // [2, 5, 2, 80]
      expect(keys.shape).toEqual([2, 5, 2, 80]);
      const k = await keys.data();
      // clip 1, frame 2: key 0 = its 5 tokens in slot order; key 1 = those minus frame 1's (frame 0's change is zero)
      const token = (b: number, f: number, slot: number, d: number) => values[((b * 5 + f) * 5 + slot) * 16 + d];
      const key = (b: number, f: number, which: number, j: number) => k[((b * 5 + f) * 2 + which) * 80 + j];
      for (const j of [0, 17, 79]) {
        const [slot, d] = [Math.floor(j / 16), j % 16];
        expect(key(1, 2, 0, j)).toBeCloseTo(token(1, 2, slot, d), 6);
        expect(key(1, 2, 1, j)).toBeCloseTo(token(1, 2, slot, d) - token(1, 1, slot, d), 6);
        expect(key(1, 0, 1, j)).toBe(0);
      }
      // the merged key tells the slots apart: exchanging two slots in every frame changes the prompt
      redraw(merged.videoBridge, 0.3, 21);
      const swapped = tf.tidy(() => tf.gather(features, [0, 2, 1, 3, 4], 2));
      const a = merged.videoPrompt(features).languageInputs;
      const b = merged.videoPrompt(swapped).languageInputs;
      expect(await maxDifference(a, b)).toBeGreaterThan(1e-3);
      // the padding-frame mask covers both keys of a frame
      const padded = both.videoPrompt(features, { frameCounts: [5, 2], outputCrossAttentions: true });
      const weights = await padded.crossAttentions![0].data(); // [2, H, Nv, F·2 = 10]
      const [, H, Nv, keysTotal] = padded.crossAttentions![0].shape;
      expect(keysTotal).toBe(10);
      for (let j = 4; j < 10; j++) expect(weights[((1 * H + 0) * Nv + 0) * 10 + j]).toBeLessThan(1e-6); // frames 2–4 of clip 1
      const round = videoLlamaConfigFromHF({ json: videoLlamaConfigToHF(both.config), where: "round trip" });
      expect([round.mergeFrameTokens, round.frameDifferences, round.videoQformer.encoderHiddenSize]).toEqual([true, true, 80]);
      tf.dispose([features, keys, swapped, a, b, padded.queryOutput, padded.languageInputs, ...padded.crossAttentions!]);
    } finally {
      pixels.dispose();
      [base, merged, both].forEach((m) => m.dispose());
    }
    expect(() => resolveVideoLlamaConfig({ ...tinyConfig("mean-pool"), frameDifferences: true })).toThrow(/mean-pool/);
    expect(() =>
      resolveVideoLlamaConfig({
        ...tinyConfig(),
        mergeFrameTokens: true,
        videoQformer: { hiddenSize: 16, encoderHiddenSize: 16 },
      }),
    ).toThrow(/encoderHiddenSize must be the video keys' width 80/);
  });

  it("masks padding frames: a clip padded with junk frames gives the same prompt as the clip alone", async () => {
    const model = new VideoLlamaForConditionalGeneration(tinyConfig());
    redraw(model.videoBridge, 0.3, 22);
    const clip = tf.randomNormal([1, 3, 3, 16, 16], 0, 1, "float32", 5);
    const junk = tf.randomNormal([1, 2, 3, 16, 16], 0, 1, "float32", 6);
    const padded = tf.concat([clip, junk], 1);
    try {
      const alone = model.videoPrompt(model.frameFeatures(clip)).languageInputs;
      const masked = model.videoPrompt(model.frameFeatures(padded), { frameCounts: [3] }).languageInputs;
      const unmasked = model.videoPrompt(model.frameFeatures(padded)).languageInputs;
      expect(await maxDifference(alone, masked)).toBeLessThan(1e-5);
      expect(await maxDifference(alone, unmasked)).toBeGreaterThan(1e-3);
      tf.dispose([alone, masked, unmasked]);
    } finally {
      tf.dispose([clip, junk, padded]);
      model.dispose();
    }
  });

  it("builds the step key mask and the mean over real steps", async () => {
    const mask = stepKeyMask([1, 2], 2, 2);
    expect(mask.shape).toEqual([2, 1, 1, 4]);
    expect(Array.from(await mask.data())).toEqual([0, 0, -1e9, -1e9, 0, 0, 0, 0]);
    const features = tf.tensor4d([1, 3, 5, 7], [1, 2, 1, 2]); // [B=1, P=2, K=1, D=2]
    expect(Array.from(await meanOverSteps(features).data())).toEqual([3, 5]);
    expect(Array.from(await meanOverSteps(features, [1]).data())).toEqual([1, 3]);
    expect(() => stepKeyMask([3], 2, 1)).toThrow(/lengths\[0\] must be an integer in 1…2, got 3/);
    tf.dispose([mask, features]);
  });

  it("saves and loads back through the registry with the same parameters and outputs", async () => {
    const directory = scratch("video-llama-");
    const model = new VideoLlamaForConditionalGeneration(tinyConfig());
    const [pixels, inputIds] = [frames(), ids()];
    try {
      fs.writeFileSync(path.join(directory, "config.json"), JSON.stringify(VIDEO_LLAMA_SPEC.toHF(model.config)));
      await saveCheckpoint(directory, model.stateDict());
      const loaded = loadPretrained(directory);
      expect(loaded.modelType).toBe("mllm_video_llama");
      const reloaded = loaded.model as VideoLlamaForConditionalGeneration;
      expect(reloaded.config).toEqual({ ...model.config, seed: 0 }); // the seed only initialises: config.json does not keep it
      const a = model.forward({ pixelValues: pixels, inputIds }).logits;
      const b = reloaded.forward({ pixelValues: pixels, inputIds }).logits;
      expect(await maxDifference(a, b)).toBe(0);
      tf.dispose([a, b]);
      reloaded.dispose();
    } finally {
      tf.dispose([pixels, inputIds]);
      model.dispose();
      fs.rmSync(directory, { recursive: true, force: true });
    }
  });

  it("trains only the bridges: a few steps of each branch lower its loss, the backbones stay", async () => {
    const model = new VideoLlamaForConditionalGeneration(tinyConfig());
    redraw(model.languageModel, 0.5, 23); // a frozen LLM whose logits the prompt can move
    const [pixels, mel, inputIds] = [frames(), logMel(), ids()];
    const labels = tf.tensor2d(
      [
        [-100, 6, 7, 8],
        [-100, 10, 11, -100],
      ],
      [B, 4],
      "int32",
    );
    const frozenBefore = await model.languageModel.model.embedTokens.weight.data();
    const trainable = model.trainableParameters();
    const bridges = [...model.videoBridge.namedParameters(), ...model.audioBridge.namedParameters()].map(([, v]) => v);
    expect(trainable.length).toBe(bridges.length);
    expect(trainable.every((variable) => bridges.includes(variable))).toBe(true);
    try {
      const features = model.frameFeatures(pixels); // frozen: computed once, as the pretraining caches them
      const segments = model.segmentFeatures(mel);
      for (const branch of ["video", "audio"] as const) {
        const inputs = branch === "video" ? { frameFeatures: features } : { segmentFeatures: segments };
        const bridge = branch === "video" ? model.videoBridge : model.audioBridge;
        const optimizer = new AdamW({ learningRate: 1e-2, weightDecay: 0 });
        const losses: number[] = [];
        for (let step = 0; step < 10; step++) {
          const loss = optimizer.minimize(
            () => model.forward({ ...inputs, inputIds, labels }).loss!,
            bridge.trainableParameters(),
          );
          losses.push((await loss.data())[0]);
          loss.dispose();
        }
        optimizer.dispose();
        expect(losses[losses.length - 1], `${branch} losses ${losses.map((l) => l.toFixed(2)).join(" ")}`).toBeLessThan(
          losses[0] - 0.3,
        );
      }
      expect(Array.from(await model.languageModel.model.embedTokens.weight.data())).toEqual(Array.from(frozenBefore));
      tf.dispose([features, segments]);
    } finally {
      tf.dispose([pixels, mel, inputIds, labels]);
      model.dispose();
    }
  }, 120_000); // ≈ 6 s on 2 idle cores

  it("leaks no tensors through forward and generate", async () => {
    const model = new VideoLlamaForConditionalGeneration(tinyConfig());
    const [pixels, mel, inputIds] = [frames(), logMel(), ids()];
    try {
      const before = tf.memory().numTensors;
      tf.dispose(model.forward({ pixelValues: pixels, audioLogMel: mel, inputIds, labels: inputIds }));
      const generated = await model.generate({ pixelValues: pixels, audioLogMel: mel, inputIds }, { maxNewTokens: 3 });
      expect(generated.map((row) => row.length)).toEqual([3, 3]);
      expect(tf.memory().numTensors).toBe(before);
    } finally {
      tf.dispose([pixels, mel, inputIds]);
      model.dispose();
    }
  });

  it("the nano preset's bridges have about 0.63M parameters on the labs' 128-wide backbones", () => {
    const backbone = { hiddenSize: 128, intermediateSize: 256, numLayers: 1, numHeads: 4 };
    const model = new VideoLlamaForConditionalGeneration({
      ...VIDEO_LLAMA_PRESETS["video-llama-nano"],
      vision: { ...backbone, imageSize: 64, patchSize: 8 },
      audio: backbone,
      text: { vocabSize: 851, hiddenSize: 128, intermediateSize: 384, numLayers: 1, numHeads: 4, numKeyValueHeads: 2 },
    });
    try {
      const bridges = model.videoBridge.parameterCount() + model.audioBridge.parameterCount();
      expect(bridges).toBeGreaterThan(0.6e6);
      expect(bridges).toBeLessThan(0.67e6);
    } finally {
      model.dispose();
    }
  });
});

describe("video QA by question type", () => {
  it("puts the world's questions in their types", () => {
    expect(videoQuestionType("which way does the red circle move at first?")).toBe("direction");
    expect(videoQuestionType("does the red circle move fast or slow?")).toBe("speed");
    expect(videoQuestionType("does the blue star bounce off a wall?")).toBe("bounce");
    expect(videoQuestionType("does the blue star disappear?")).toBe("appear/disappear");
    expect(videoQuestionType("does the green square appear part way?")).toBe("appear/disappear");
    expect(videoQuestionType("which object appears first, the red circle or the blue star?")).toBe("order");
    expect(videoQuestionType("does the red circle bounce before the blue star appears?")).toBe("order");
    expect(videoQuestionType("how many objects are visible at the end?")).toBe("count");
    expect(videoQuestionType("what sound does the object that appears make?")).toBe("audio-visual");
    expect(videoQuestionType("is it raining?")).toBe("other");
  });

  it("averages VQA accuracy per type", () => {
    const answers = (a: string) => new Array(10).fill(a);
    const result = videoQaAccuracyByType([
      { question: "which way does the red circle move at first?", prediction: "left", answers: answers("left") },
      { question: "which way does the blue star move at first?", prediction: "up", answers: answers("down") },
      { question: "how many objects are visible at the end?", prediction: "two", answers: answers("2") },
    ]);
    expect(result.overall).toEqual({ accuracy: 2 / 3, count: 3 });
    expect(result.perType).toEqual({ direction: { accuracy: 0.5, count: 2 }, count: { accuracy: 1, count: 1 } });
    expect(() => videoQaAccuracyByType([])).toThrow(/no items/);
  });
});
