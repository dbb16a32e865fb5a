/**
 * The video track head (lab 03's stage T): the assignments it tries, its
 * config's checks, its shapes, a set loss that does not care in which order a
 * clip's objects come and prefers the right assignment, the code tokens in
 * VideoLLaMA's soft prompt, a registry round trip with the head, and the
 * generator's tracks as targets.
 */
import { beforeAll, describe, expect, it } from "vitest";
import * as fs from "node:fs";
import * as path from "node:path";
import * as tf from "@tensorflow/tfjs";
import { registerNativeBackend } from "../src/engine/native/register";
import {
  VideoTrackHead,
  resolveVideoTrackHeadConfig,
  slotPermutations,
  WORLD_TRACK_ATTRIBUTES,
  type TrackPredictions,
  type TrackTargets,
} from "../src/models/video_track_head";
import { VideoLlamaForConditionalGeneration, type VideoLlamaConfig } from "../src/models/video_llama";
import { VIDEO_LLAMA_SPEC } from "../src/models/video_llama_spec";
import {
  disposeTrackTargets,
  gatherTrackTargets,
  trackTargetArrays,
  worldTrackAttributes,
  WORLD_TRACK_CLASS_NAMES,
} from "../src/data/video_tracks";
import { loadTokenizer } from "../src/tokenizer/tokenizer";
import { trainTrackHead } from "../src/pretrain/videollama";
import { sampleVideo } from "../src/data/video";
import { COLOR_NAMES, SHAPE_NAMES } from "../src/data/vocabulary";
import { loadPretrained } from "../src/io/pretrained";
import { saveCheckpoint } from "../src/io/safetensors";
import { Random } from "../src/util/random";
import { maxDifference } from "./helpers/max_difference";
import { scratchFolders } from "./helpers/scratch";

const scratch = scratchFolders();

beforeAll(async () => {
  registerNativeBackend();
  await tf.setBackend("native");
});

const F = 4;
const ATTRIBUTES = [
  { name: "direction", classes: 4 },
  { name: "color", classes: 3 },
];

/** Two clips: the first with objects A and B, the second with one object (slot 1 empty). */
function targets(order: "as given" | "swapped" = "as given"): TrackTargets {
  const A = { position: [-0.5, 0.5], visible: [1, 1, 1, 0], direction: 2, color: 1 };
  const B = { position: [0.25, -0.75], visible: [0, 1, 1, 1], direction: 0, color: 2 };
  const none = { position: [0, 0], visible: [0, 0, 0, 0], direction: 0, color: 0 };
  const clips = [order === "swapped" ? [B, A] : [A, B], [A, none]];
  return {
    position: tf.tensor4d(
      clips.flatMap((objects) => objects.flatMap((o) => Array.from({ length: F }, () => o.position)).flat()),
      [2, 2, F, 2],
    ),
    visible: tf.tensor3d(
      clips.flatMap((objects) => objects.flatMap((o) => o.visible)),
      [2, 2, F],
    ),
    exists: tf.tensor2d([1, 1, 1, 0], [2, 2]),
    attributes: [
      tf.tensor2d(
        clips.flatMap((objects) => objects.map((o) => o.direction)),
        [2, 2],
        "int32",
      ),
      tf.tensor2d(
        clips.flatMap((objects) => objects.map((o) => o.color)),
        [2, 2],
        "int32",
      ),
    ],
  };
}

/** Predictions that say exactly what `truth` holds (logits ±8), slot by slot. */
function predictionsOf(truth: TrackTargets): TrackPredictions {
  return tf.tidy(() => ({
    position: truth.position.clone(),
    visibility: truth.visible.mul(16).sub(8),
    attributes: truth.attributes.map((labels, k) =>
      tf.oneHot(labels.cast("int32"), ATTRIBUTES[k].classes).cast("float32").mul(16).sub(8),
    ),
  }));
}

const disposePredictions = (p: TrackPredictions) => tf.dispose([p.position, p.visibility, ...p.attributes]);

describe("video track head", () => {
  it("tries every assignment of objects to slots, the identity first", () => {
    expect(slotPermutations(1)).toEqual([[0]]);
    expect(slotPermutations(2)).toEqual([
      [0, 1],
      [1, 0],
    ]);
    const three = slotPermutations(3);
    expect(three).toHaveLength(6);
    expect(three[0]).toEqual([0, 1, 2]);
    expect(new Set(three.map((p) => p.join())).size).toBe(6);
  });

  it("resolves its defaults and names a bad value", () => {
    expect(resolveVideoTrackHeadConfig({})).toEqual({
      slots: 2,
      frames: 12,
      attributes: WORLD_TRACK_ATTRIBUTES,
      codeTokens: true,
      positionWeight: 10,
      codeTimeline: false,
    });
    expect(WORLD_TRACK_ATTRIBUTES.map((a) => a.classes)).toEqual([4, COLOR_NAMES.length, SHAPE_NAMES.length, 2, 2, 2, 2]);
    // The data layer's list of the world's attributes (which the model layer may not import) is the head's default.
    expect(worldTrackAttributes()).toEqual(WORLD_TRACK_ATTRIBUTES.map((a) => ({ ...a })));
    expect(() => resolveVideoTrackHeadConfig({ slots: 5 })).toThrow("config.slots must be an integer from 1 to 4, got 5");
    expect(() => resolveVideoTrackHeadConfig({ attributes: [{ name: "color", classes: 1 }] })).toThrow(
      'at least 2 classes, got {"name":"color","classes":1}',
    );
    expect(() => resolveVideoTrackHeadConfig({ attributes: [{ name: "color", classes: 3, tokenIds: [4, 5] }] })).toThrow(
      'attribute "color" needs one token id per class (3), got [4,5]',
    );
  });

  it("predicts positions, visibility and each attribute per slot; the code tokens are one per slot", () => {
    const head = new VideoTrackHead({ frames: F, attributes: ATTRIBUTES }, { queries: 3, queryWidth: 5, outputSize: 7, seed: 1 });
    const queries = tf.randomNormal([2, 3, 5], 0, 1, "float32", 2);
    try {
      const before = tf.memory().numTensors;
      const predicted = head.predict(queries);
      expect(predicted.position.shape).toEqual([2, 2, F, 2]);
      expect(predicted.visibility.shape).toEqual([2, 2, F]);
      expect(predicted.attributes.map((a) => a.shape)).toEqual([
        [2, 2, 4],
        [2, 2, 3],
      ]);
      expect(head.valuesPerSlot).toBe(3 * F + 7);
      expect(head.codeWidth).toBe(4 + 3 + 1);
      const codes = head.codeTokens(predicted);
      expect(codes.shape).toEqual([2, 2, 7]);
      disposePredictions(predicted);
      codes.dispose();
      expect(tf.memory().numTensors).toBe(before);
      expect(() => head.predict(queries.reshape([6, 5]))).toThrow("queries must be [B, Nv, Dq], got [6,5]");
    } finally {
      queries.dispose();
      head.dispose();
    }
  });

  it("the set loss takes the cheapest assignment: the objects' order does not matter, a wrong prediction costs more", async () => {
    const head = new VideoTrackHead({ frames: F, attributes: ATTRIBUTES }, { queries: 1, queryWidth: 1, outputSize: 2, seed: 1 });
    const truth = targets();
    const swapped = targets("swapped");
    const right = predictionsOf(truth);
    // Wrong: the first clip's objects given the other's direction, the second clip's object seen in every frame.
    const wrongTargets = targets("swapped");
    const wrong = predictionsOf({
      ...truth,
      visible: tf.ones([2, 2, F]),
      attributes: [tf.tensor2d([0, 2, 1, 1], [2, 2], "int32"), truth.attributes[1]],
    });
    try {
      const asGiven = head.setLoss(right, truth);
      const reordered = head.setLoss(right, swapped);
      const bad = head.setLoss(wrong, truth);
      const [lossGiven, lossReordered, lossBad] = await Promise.all([
        asGiven.loss.data(),
        reordered.loss.data(),
        bad.loss.data(),
      ]);
      expect([...lossReordered]).toEqual([...lossGiven]);
      for (const loss of lossGiven) expect(loss).toBeLessThan(0.01);
      for (let clip = 0; clip < 2; clip++) expect(lossBad[clip]).toBeGreaterThan(lossGiven[clip] + 1);
      expect([...(await asGiven.assignment.data())]).toEqual([0, 0]);
      expect([...(await reordered.assignment.data())]).toEqual([1, 0]); // the second clip's empty slot stays where it is
      tf.dispose([asGiven.loss, asGiven.assignment, reordered.loss, reordered.assignment, bad.loss, bad.assignment]);
      expect(() => head.setLoss(right, { ...truth, exists: tf.ones([2, 3]) })).toThrow("targets.exists must be [2,2], got [2,3]");
    } finally {
      disposePredictions(right);
      disposePredictions(wrong);
      disposeTrackTargets(truth);
      disposeTrackTargets(swapped);
      disposeTrackTargets(wrongTargets);
      head.dispose();
    }
  });
});

describe("code tokens that speak the LLM's words, and the timeline", () => {
  it("adds the probabilities times the words' embeddings to each slot's token; the timeline widens the code by 3F", async () => {
    const sizes = { queries: 3, queryWidth: 5, outputSize: 7, seed: 1 };
    const speaking = [{ ...ATTRIBUTES[0], tokenIds: [3, 1, 4, 2] }, ATTRIBUTES[1]];
    const plain = new VideoTrackHead({ frames: F, attributes: ATTRIBUTES }, sizes);
    const withWords = new VideoTrackHead({ frames: F, attributes: speaking }, sizes);
    const timeline = new VideoTrackHead({ frames: F, attributes: ATTRIBUTES, codeTimeline: true }, sizes);
    const queries = tf.randomNormal([2, 3, 5], 0, 1, "float32", 2);
    const words = tf.randomNormal([4, 7], 0, 1, "float32", 3); // [classes, Dtext]
    try {
      expect(timeline.codeWidth).toBe(plain.codeWidth + 3 * F);
      const predicted = plain.predict(queries); // same seed: the same predictions from every head
      const [a, b, expected] = tf.tidy(() => [
        plain.codeTokens(predicted),
        withWords.codeTokens(predicted, [words, undefined]),
        plain.codeTokens(predicted).add(tf.softmax(predicted.attributes[0]).reshape([4, 4]).matMul(words).reshape([2, 2, 7])),
      ]);
      expect(await maxDifference(b, expected)).toBeLessThan(1e-5);
      expect(await maxDifference(a, b)).toBeGreaterThan(0.01);
      expect(timeline.codeTokens(predicted).shape).toEqual([2, 2, 7]);
      expect(() => withWords.codeTokens(predicted)).toThrow("1 attributes have token ids but 0 word embeddings were given");
      // Word weights scale each slot's words: slot 1 of clip 0 silent, the others as they were (or halved).
      const weights = tf.tensor2d([1, 0, 0.5, 1], [2, 2]);
      const [weighted, halved] = tf.tidy(() => {
        const perSlot = tf.softmax(predicted.attributes[0]).reshape([4, 4]).matMul(words).reshape([2, 2, 7]);
        return [withWords.codeTokens(predicted, [words, undefined], weights), a.add(perSlot.mul(weights.expandDims(2)))];
      });
      expect(await maxDifference(weighted, halved)).toBeLessThan(1e-5);
      const wrong = tf.ones([2, 3]);
      expect(() => withWords.codeTokens(predicted, [words, undefined], wrong)).toThrow(
        "wordWeights must be [2,2] (one per slot), got [2,3]",
      );
      tf.dispose([a, b, expected, weights, weighted, halved, wrong]);
      disposePredictions(predicted);
    } finally {
      tf.dispose([queries, words]);
      plain.dispose();
      withWords.dispose();
      timeline.dispose();
    }
  });

  it("the world's class words are single tokens of the world tokenizer, in the targets' class order", () => {
    const tokenizer = loadTokenizer(path.join(__dirname, "..", "data", "world", "tokenizer"));
    const attributes = worldTrackAttributes(tokenizer);
    // Direction, colour and shape speak their words; speed, bounces, appears and disappears only enter the learned map.
    expect(attributes.map((a) => a.tokenIds !== undefined)).toEqual([true, true, true, false, false, false, false]);
    attributes.slice(0, 3).forEach((attribute, k) => {
      expect(attribute.tokenIds).toHaveLength(attribute.classes);
      expect(attribute.tokenIds!.map((id) => tokenizer.decode([id]).trim())).toEqual([...WORLD_TRACK_CLASS_NAMES[k]]);
    });
    expect(worldTrackAttributes().every((a) => a.tokenIds === undefined)).toBe(true);
    expect(() => worldTrackAttributes({ encode: () => [1, 2] })).toThrow('" left" is 2 tokens ([1,2]), expected one');
  });
});

describe("the generator's tracks as targets", () => {
  it("fills a clip's objects into its first slots, positions in [−1, 1], visibility from appear/disappear", async () => {
    const random = new Random(4);
    const clips = Array.from({ length: 12 }, () => sampleVideo(random, 12));
    const arrays = trackTargetArrays(
      clips.map((c) => c.tracks),
      { slots: 2, frames: 12, canvas: 64 },
    );
    clips.forEach((clip, n) => {
      expect(arrays.exists[n * 2]).toBe(1);
      expect(arrays.exists[n * 2 + 1]).toBe(clip.tracks.length === 2 ? 1 : 0);
      clip.tracks.forEach((track, k) => {
        const j = n * 2 + k;
        expect(COLOR_NAMES[arrays.attributes[1][j]]).toBe(track.object.color);
        expect(SHAPE_NAMES[arrays.attributes[2][j]]).toBe(track.object.shape);
        expect(WORLD_TRACK_CLASS_NAMES[3][arrays.attributes[3][j]]).toBe(track.speed);
        expect(arrays.attributes[5][j]).toBe(track.appearAt > 0 ? 1 : 0);
        expect(arrays.attributes[6][j]).toBe(track.disappearAt < 12 ? 1 : 0);
        for (let f = 0; f < 12; f++) {
          expect(arrays.visible[j * 12 + f]).toBe(f >= track.appearAt && f < track.disappearAt ? 1 : 0);
          expect(arrays.position[(j * 12 + f) * 2]).toBeCloseTo(track.positions[f][0] / 32 - 1, 5);
        }
      });
    });
    for (const value of arrays.position) expect(Math.abs(value)).toBeLessThanOrEqual(1);
    const gathered = gatherTrackTargets(arrays, [3, 0]);
    expect(gathered.position.shape).toEqual([2, 2, 12, 2]);
    expect([...(await gathered.exists.data())].slice(2)).toEqual([...arrays.exists.slice(0, 2)]);
    disposeTrackTargets(gathered);
    expect(() => gatherTrackTargets(arrays, [12])).toThrow("row 12 of 12 clips");
    expect(() => trackTargetArrays([clips[0].tracks], { slots: 2, frames: 8, canvas: 64 })).toThrow("has 12 frames, expected 8");
    const two = clips.find((c) => c.tracks.length === 2)!;
    expect(() => trackTargetArrays([two.tracks], { slots: 1, frames: 12, canvas: 64 })).toThrow("has 2 objects for 1 slots");
  });
});

describe("VideoLLaMA with a track head", () => {
  const config = (codeTokens: boolean): VideoLlamaConfig => ({
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
    trackHead: {
      frames: 5,
      codeTokens,
      codeTimeline: true,
      attributes: [{ name: "color", classes: 6, tokenIds: [1, 2, 3, 4, 5, 6] }, WORLD_TRACK_ATTRIBUTES[2]],
    },
    seed: 3,
  });
  const pixels = () => tf.randomNormal([2, 5, 3, 16, 16], 0, 1, "float32", 11);
  const ids = () => tf.tensor2d([5, 6, 7, 8, 9, 10, 11, 0], [2, 4], "int32");

  it("puts one code token per slot after the video queries (none without code tokens); the rest of the model is as without a head", async () => {
    const withCodes = new VideoLlamaForConditionalGeneration(config(true));
    const withoutCodes = new VideoLlamaForConditionalGeneration(config(false));
    const noHead = new VideoLlamaForConditionalGeneration({ ...config(false), trackHead: undefined });
    const [frames, inputIds] = [pixels(), ids()];
    try {
      expect(withCodes.videoPromptTokens).toBe(5);
      expect(withoutCodes.videoPromptTokens).toBe(3);
      const out = withCodes.forward({ pixelValues: frames, inputIds });
      expect(out.logits.shape).toEqual([2, 5 + 4, 40]);
      expect(out.videoPrompt!.shape).toEqual([2, 5, 16]);
      const plain = withoutCodes.forward({ pixelValues: frames, inputIds });
      const bare = noHead.forward({ pixelValues: frames, inputIds });
      expect(plain.logits.shape).toEqual([2, 3 + 4, 40]);
      // The head's seed is drawn after the others': the same bridges with and without it.
      expect(await maxDifference(plain.logits, bare.logits)).toBe(0);
      expect(noHead.videoTrackHead).toBeUndefined();
      expect(withCodes.namedParameters().some(([name]) => name === "video_track_head.code_projection.weight")).toBe(true);
      expect(withoutCodes.namedParameters().some(([name]) => name.startsWith("video_track_head.code_projection"))).toBe(false);
      tf.dispose([out.logits, out.attentionMask, out.videoPrompt!, plain.logits, plain.attentionMask, plain.videoPrompt!]);
      tf.dispose([bare.logits, bare.attentionMask, bare.videoPrompt!]);
    } finally {
      tf.dispose([frames, inputIds]);
      withCodes.dispose();
      withoutCodes.dispose();
      noHead.dispose();
    }
  });

  it("saves its head config in config.json and loads back through the registry to the same outputs", async () => {
    const directory = scratch("video-llama-track-head-");
    const model = new VideoLlamaForConditionalGeneration(config(true));
    const [frames, inputIds] = [pixels(), ids()];
    try {
      const document = VIDEO_LLAMA_SPEC.toHF(model.config);
      expect(document.track_head_config).toEqual({
        num_slots: 2,
        num_frames: 5,
        attributes: [
          { name: "color", classes: 6, token_ids: [1, 2, 3, 4, 5, 6] },
          { name: "shape", classes: 5 },
        ],
        code_tokens: true,
        position_weight: 10,
        code_timeline: true,
      });
      fs.writeFileSync(path.join(directory, "config.json"), JSON.stringify(document));
      await saveCheckpoint(directory, model.stateDict());
      const reloaded = loadPretrained(directory).model as VideoLlamaForConditionalGeneration;
      expect(reloaded.config).toEqual({ ...model.config, seed: 0 });
      const a = model.forward({ pixelValues: frames, inputIds }).logits;
      const b = reloaded.forward({ pixelValues: frames, inputIds }).logits;
      expect(await maxDifference(a, b)).toBe(0);
      tf.dispose([a, b]);
      reloaded.dispose();
      fs.writeFileSync(
        path.join(directory, "config.json"),
        JSON.stringify({ ...document, track_head_config: { ...(document.track_head_config as object), num_slots: 9 } }),
      );
      expect(() => loadPretrained(directory)).toThrow("config.slots must be an integer from 1 to 4, got 9");
    } finally {
      tf.dispose([frames, inputIds]);
      model.dispose();
      fs.rmSync(directory, { recursive: true, force: true });
    }
  });

  it("stage T refuses a negative or non-numeric weight decay, quoting it, before it reads the clips", async () => {
    const model = new VideoLlamaForConditionalGeneration(config(true));
    const set = { questions: [], captions: [] }; // no frames or tracks: the weight decay is checked first
    const args = { steps: 1, learningRate: 1e-3, batchSize: 1, seed: 0 };
    try {
      await expect(trainTrackHead(model, set, { ...args, weightDecay: -0.1 })).rejects.toThrow(
        "weightDecay must be ≥ 0, got -0.1",
      );
      await expect(trainTrackHead(model, set, { ...args, weightDecay: Number.NaN })).rejects.toThrow("got NaN");
      await expect(trainTrackHead(model, set, args)).rejects.toThrow("the clip set has no frames or no tracks");
    } finally {
      model.dispose();
    }
  });
});
