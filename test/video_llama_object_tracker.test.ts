/**
 * VideoLLaMA whose code tokens come from the object tracker (lab 03, docs/lab03-plan.md "Twelfth round"): the config's
 * refusals, the whole-grid tokens and their pooling (the old features exactly), detections that travel with the
 * frames, the tracker's likeliest identities as the slots (their colour and shape, timeline and motion), the same
 * output from pixels as from cached features and detections, the config.json round trip, and no leaks.
 */
import { beforeAll, describe, expect, it } from "vitest";
import * as tf from "@tensorflow/tfjs";
import { registerNativeBackend } from "../src/engine/native/register";
import { VideoLlamaForConditionalGeneration, resolveVideoLlamaConfig, type VideoLlamaConfig } from "../src/models/video_llama";
import { videoLlamaConfigFromHF, videoLlamaConfigToHF } from "../src/models/video_llama_spec";
import { WORLD_TRACK_ATTRIBUTES } from "../src/models/video_track_head";
import { maxDifference } from "./helpers/max_difference";

beforeAll(async () => {
  registerNativeBackend();
  await tf.setBackend("native");
});

const F = 5; // frames
const I = 30; // identities: 6 colours × 5 shapes

/** A tiny VideoLLaMA: 16×16 frames of 4×4 patches (a 4×4 grid; pooled 2×2 for the Q-Former), a head and a tracker. */
const config = (overrides: Partial<VideoLlamaConfig> = {}): VideoLlamaConfig => ({
  vision: { hiddenSize: 16, intermediateSize: 24, numLayers: 1, numHeads: 2, imageSize: 16, patchSize: 4 },
  audio: { hiddenSize: 12, intermediateSize: 16, numLayers: 1, numHeads: 2, numMelBins: 8, maxFrames: 8, framesPerToken: 2 },
  text: { vocabSize: 40, hiddenSize: 16, intermediateSize: 24, numLayers: 1, numHeads: 2, numKeyValueHeads: 1 },
  videoQformer: { hiddenSize: 16, intermediateSize: 24, numHeads: 2 },
  audioQformer: { hiddenSize: 12, intermediateSize: 16, numLayers: 1, numHeads: 2 },
  numVideoQueryTokens: 3,
  numAudioQueryTokens: 2,
  maxFrames: 6,
  framePatchPool: 2,
  mergeFrameTokens: true,
  frameDifferences: true,
  trackHead: { frames: F, codeTokens: true, codeTimeline: true },
  objectTracker: { frames: F, hiddenSize: 8, trajectoryHiddenSize: 8 },
  seed: 3,
  ...overrides,
});
const pixels = () => tf.randomNormal([2, F, 3, 16, 16], 0, 1, "float32", 11);
const ids = () => tf.tensor2d([5, 6, 7, 8, 9, 10, 11, 0], [2, 4], "int32");

describe("VideoLLaMA with an object tracker", () => {
  it("refuses a tracker without code tokens to fill, or whose outputs do not match the head's", () => {
    expect(() => resolveVideoLlamaConfig(config({ trackHead: undefined }))).toThrow(
      "config.objectTracker fills the track head's code tokens; give config.trackHead with codeTokens",
    );
    expect(() => resolveVideoLlamaConfig(config({ trackHead: { frames: F, codeTokens: false } }))).toThrow(
      "give config.trackHead with codeTokens",
    );
    expect(() => resolveVideoLlamaConfig(config({ objectTracker: { frames: 4 } }))).toThrow(
      "config.objectTracker.frames (4) must equal config.trackHead.frames (5)",
    );
    expect(() => resolveVideoLlamaConfig(config({ objectTracker: { frames: F, colors: 5 } }))).toThrow(
      'needs a "color" attribute of 5 classes and a "shape" attribute of 5',
    );
    expect(() =>
      resolveVideoLlamaConfig(config({ trackHead: { frames: F, attributes: WORLD_TRACK_ATTRIBUTES.slice(0, 4) } })),
    ).toThrow("attributes besides color and shape have [4,2] classes; the tracker's motion attributes have [4,2,2,2,2]");
    expect(() => resolveVideoLlamaConfig(config({ objectTracker: { frames: F, window: 2 } }))).toThrow(
      "config.window must be an odd positive integer, got 2",
    );
  });

  it("pools the whole-grid tokens into the old features; the same output from pixels as from features and detections", async () => {
    const model = new VideoLlamaForConditionalGeneration(config());
    const [frames, inputIds] = [pixels(), ids()];
    try {
      const tokens = model.frameTokens(frames);
      expect(tokens.shape).toEqual([2, F, 17, 16]);
      const features = model.poolFrameTokens(tokens);
      expect(features.shape).toEqual([2, F, model.tokensPerFrame, 16]);
      const direct = model.frameFeatures(frames);
      expect(await maxDifference(features, direct)).toBe(0);
      const detections = model.frameDetections(tokens);
      expect(detections.shape).toEqual([2, F, I, 3]);
      // The detector sees one frame at a time: frames reversed, detections reversed.
      const reversedTokens = tf.reverse(tokens, 1);
      const reversedDetections = model.frameDetections(reversedTokens);
      const detectionsReversed = tf.reverse(detections, 1);
      expect(await maxDifference(reversedDetections, detectionsReversed)).toBeLessThan(1e-5);
      const fromPixels = model.forward({ pixelValues: frames, inputIds });
      const fromCache = model.forward({ frameFeatures: features, frameDetections: detections, inputIds });
      expect(fromPixels.logits.shape).toEqual([2, 3 + 2 + 4, 40]);
      expect(await maxDifference(fromPixels.logits, fromCache.logits)).toBe(0);
      // The code tokens read the detections in the order given: the reader sees the trajectory.
      const shuffled = model.forward({ frameFeatures: features, frameDetections: detectionsReversed, inputIds });
      expect(await maxDifference(shuffled.logits, fromCache.logits)).toBeGreaterThan(0);
      expect(() => model.forward({ frameFeatures: features, inputIds })).toThrow("give frameDetections with frameFeatures");
      expect(() => model.forward({ pixelValues: frames, frameDetections: detections, inputIds })).toThrow(
        "frameDetections go with frameFeatures; from pixelValues the model makes its own",
      );
      const oneClip = tf.tidy(() => detections.slice([0, 0, 0, 0], [1, -1, -1, -1]));
      expect(() => model.forward({ frameFeatures: features, frameDetections: oneClip, inputIds })).toThrow(
        "frameDetections of 1 clips for frameFeatures of 2",
      );
      expect(() => model.frameDetections(features)).toThrow(
        "reads the whole patch grid, [B, F, 17, 16] (frameTokens, not the pooled frameFeatures), got [2,5,5,16]",
      );
      tf.dispose([tokens, features, direct, detections, reversedTokens, reversedDetections, detectionsReversed, oneClip]);
      for (const out of [fromPixels, fromCache, shuffled]) tf.dispose([out.logits, out.attentionMask, out.videoPrompt!]);
    } finally {
      tf.dispose([frames, inputIds]);
      model.dispose();
    }
  });

  it("fills the slots with the likeliest identities: their colour and shape, their timeline, their motion", async () => {
    const model = new VideoLlamaForConditionalGeneration(config());
    const before = tf.memory().numTensors;
    try {
      // Clip 0: identity 7 (colour 1, shape 2) seen in every frame, identity 20 (colour 4, shape 0) in 3 of 5, the rest
      // unseen; clip 1: identity 29 alone (seen in 2 frames), identity 0 never.
      const values = new Float32Array(2 * F * I * 3);
      const set = (clip: number, frame: number, identity: number, visibility: number, x: number, y: number) =>
        values.set([visibility, x, y], ((clip * F + frame) * I + identity) * 3);
      for (let clip = 0; clip < 2; clip++) for (let f = 0; f < F; f++) for (let i = 0; i < I; i++) set(clip, f, i, -8, 0, 0);
      for (let f = 0; f < F; f++) set(0, f, 7, 6, -0.5 + 0.2 * f, 0.1);
      for (let f = 0; f < 3; f++) set(0, f, 20, 5, 0.3, -0.2 * f);
      for (let f = 3; f < F; f++) set(1, f, 29, 4, 0.4, 0.4);
      const detections = tf.tensor4d(values, [2, F, I, 3]);
      const slots = model.trackerSlotPredictions(detections);
      const [visibility, position] = await Promise.all([slots.visibility.array(), slots.position.array()]);
      const names = model.videoTrackHead!.config.attributes.map((a) => a.name);
      const argmax = async (name: string) => {
        const best = slots.attributes[names.indexOf(name)].argMax(2);
        const out = (await best.array()) as number[][];
        best.dispose();
        return out;
      };
      expect(await argmax("color")).toEqual([
        [1, 4],
        [5, 0],
      ]);
      expect(await argmax("shape")).toEqual([
        [2, 0],
        [4, 0],
      ]);
      expect((visibility as number[][][])[0][0]).toEqual([6, 6, 6, 6, 6]);
      expect((visibility as number[][][])[0][1]).toEqual([5, 5, 5, -8, -8]);
      expect((position as number[][][][])[0][0][2][0]).toBeCloseTo(-0.1, 6);
      expect((visibility as number[][][])[1][0]).toEqual([-8, -8, -8, 4, 4]);
      // Motion: the reader's logits of the chosen identities, in the head's order (direction first, then speed, …).
      const read = model.videoObjectTracker!.readDetections(detections);
      const direction = tf.tidy(() =>
        tf.stack([read.motion[0].slice([0, 7, 0], [1, 1, 4]), read.motion[0].slice([0, 20, 0], [1, 1, 4])], 1).reshape([1, 2, 4]),
      );
      const chosenDirection = tf.tidy(() => slots.attributes[names.indexOf("direction")].slice([0, 0, 0], [1, 2, 4]));
      expect(await maxDifference(direction, chosenDirection)).toBe(0);
      const likeliest = model.videoObjectTracker!.likeliestIdentities(read.visibility, 2);
      expect(await likeliest.array()).toEqual([
        [7, 20],
        [29, 0],
      ]);
      likeliest.dispose();
      tf.dispose([detections, slots.visibility, slots.position, ...slots.attributes, read.visibility, read.position]);
      tf.dispose([...read.motion, direction, chosenDirection]);
      const wrong = tf.zeros([1, F, I, 2]);
      expect(() => model.videoObjectTracker!.readDetections(wrong)).toThrow(
        `detections must be [B, ${F}, ${I}, 3], got [1,${F},${I},2]`,
      );
      wrong.dispose();
      expect(tf.memory().numTensors).toBe(before);
    } finally {
      model.dispose();
    }
  });

  it("puts the identities the instruction names first (its colour and shape words), then the likeliest", async () => {
    // The head speaks: colour k is token 11 + k, shape k token 21 + k.
    const attributes = WORLD_TRACK_ATTRIBUTES.map((a) =>
      a.name === "color"
        ? { ...a, tokenIds: [11, 12, 13, 14, 15, 16] }
        : a.name === "shape"
          ? { ...a, tokenIds: [21, 22, 23, 24, 25] }
          : a,
    );
    const model = new VideoLlamaForConditionalGeneration(
      config({ trackHead: { frames: F, codeTokens: true, codeTimeline: true, attributes } }),
    );
    const before = tf.memory().numTensors;
    try {
      // Clip 0 sees identity 7 best, then 20; clip 1 sees identity 29 best.
      const values = new Float32Array(2 * F * I * 3).map((_, k) => (k % 3 === 0 ? -8 : 0));
      for (let f = 0; f < F; f++) values[(f * I + 7) * 3] = 6;
      for (let f = 0; f < 3; f++) values[(f * I + 20) * 3] = 5;
      for (let f = 3; f < F; f++) values[((F + f) * I + 29) * 3] = 4;
      const detections = tf.tensor4d(values, [2, F, I, 3]);
      // Clip 0's instruction names colour 3 (token 14) and shape 1 (token 22): identity 3 · 5 + 1 = 16, unseen. Clip 1's
      // holds colour 5's word alone, which names nothing.
      const instruction = tf.tensor2d(
        [
          [5, 14, 22, -1],
          [16, 9, 9, -1],
        ],
        [2, 4],
        "int32",
      );
      const named = model.namedIdentities(instruction, 2);
      const namedRows = (await named.array()) as number[][];
      expect(namedRows[0].flatMap((v, i) => (v ? [i] : []))).toEqual([16]);
      expect(namedRows[1].flatMap((v, i) => (v ? [i] : []))).toEqual([]);
      // Two objects named ("the blue circle or the red star") name the crossed pairs too; present objects rank first.
      const two = tf.tensor2d([[12, 21, 14, 22]], [1, 4], "int32");
      const twoNamed = model.namedIdentities(two, 1);
      expect(((await twoNamed.array()) as number[][])[0].flatMap((v, i) => (v ? [i] : []))).toEqual([5, 6, 15, 16]);
      tf.dispose([two, twoNamed]);
      const slots = model.trackerSlotPredictions(detections, instruction);
      const color = slots.attributes[1].argMax(2);
      const shape = slots.attributes[2].argMax(2);
      expect(await color.array()).toEqual([
        [3, 1],
        [5, 0],
      ]);
      expect(await shape.array()).toEqual([
        [1, 2],
        [4, 0],
      ]); // clip 0: the named identity 16, then the likeliest, 7; clip 1: the likeliest, 29, then 0
      tf.dispose([named, color, shape, slots.visibility, slots.position, ...slots.attributes]);
      const inputIds = ids();
      const features = tf.zeros([2, F, model.tokensPerFrame, 16]);
      const named0 = model.forward({
        frameFeatures: features,
        frameDetections: detections,
        instructionIds: instruction,
        inputIds,
      });
      const plain = model.forward({ frameFeatures: features, frameDetections: detections, inputIds });
      expect(await maxDifference(named0.logits, plain.logits)).toBeGreaterThan(0);
      const short = tf.tensor2d([[14, 22]], [1, 2], "int32");
      expect(() =>
        model.forward({ frameFeatures: features, frameDetections: detections, instructionIds: short, inputIds }),
      ).toThrow("instructionIds must be int32 [2, Ti] (one row per clip), got int32 [1,2]");
      tf.dispose([detections, instruction, inputIds, features, short]);
      for (const out of [named0, plain]) tf.dispose([out.logits, out.attentionMask, out.videoPrompt!]);
      expect(tf.memory().numTensors).toBe(before);
    } finally {
      model.dispose();
    }
    // Without the head's colour and shape words there is nothing to match; without a tracker nothing to choose.
    const silent = new VideoLlamaForConditionalGeneration(config());
    const bare = new VideoLlamaForConditionalGeneration(config({ objectTracker: undefined }));
    const instruction = tf.tensor2d([[14, 22]], [1, 2], "int32");
    const inputIds = tf.tensor2d([[5, 6]], [1, 2], "int32");
    const features = tf.zeros([1, F, 5, 16]);
    try {
      expect(() => silent.namedIdentities(instruction, 1)).toThrow("the track head's color and shape tokenIds");
      expect(() => bare.forward({ frameFeatures: features, instructionIds: instruction, inputIds })).toThrow(
        "instructionIds choose the object tracker's slots; this model has no object tracker",
      );
    } finally {
      tf.dispose([instruction, inputIds, features]);
      silent.dispose();
      bare.dispose();
    }
  });

  it("writes its tracker in config.json and reads it back; a model without one has none", () => {
    const resolved = resolveVideoLlamaConfig(config());
    const document = videoLlamaConfigToHF(resolved);
    expect(document.object_tracker_config).toEqual({
      num_colors: 6,
      num_shapes: 5,
      num_frames: F,
      motion_classes: [4, 2, 2, 2, 2],
      window: 3,
      hidden_size: 8,
      trajectory_hidden_size: 8,
    });
    const back = videoLlamaConfigFromHF({ json: JSON.parse(JSON.stringify(document)), where: "config.json" });
    expect(back.objectTracker).toEqual(resolved.objectTracker);
    const without = videoLlamaConfigToHF(resolveVideoLlamaConfig(config({ objectTracker: undefined })));
    expect(without.object_tracker_config).toBeUndefined();
    expect(() =>
      videoLlamaConfigFromHF({
        json: {
          ...JSON.parse(JSON.stringify(document)),
          object_tracker_config: { ...(document.object_tracker_config as object), motion_classes: 4 },
        },
        where: "config.json",
      }),
    ).toThrow('"motion_classes" must be a list of class counts, got 4');
  });
});
