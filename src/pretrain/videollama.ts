/**
 * `npm run pretrain -- videollama`: lab 03's VideoLLaMA bridges between the
 * frozen vision, audio and language backbones. First an object tracker learns
 * the generated clips' exact tracks by identity on the tower's whole patch grid
 * (stage O; its tracks fill the code tokens), and the video Q-Former learns
 * them through a track head (stage T, as BLIP-2's stage 1 teaches its Q-Former
 * before an LLM sees it; the measurements that call for both are
 * docs/lab03-plan.md's). Then, in Video-LLaMA's order, the
 * video branch alone (stage A: the clips' questions, derived order questions
 * and captions, through the projection and the code tokens, the
 * Q-Former and the tracker frozen), the audio branch alone (stage B: "what makes the sound?"
 * on sound events and soundtracks), then both together (stage C:
 * audio-visual questions on clips whose soundtrack holds one of their two
 * objects, with the video and audio questions mixed in) — and its evaluation
 * against the lab's baselines: the same model shown a single middle frame or
 * the frames shuffled, stage A's bridge without sound ("video only"), the
 * final model without sound ("without sound") or without frames ("audio
 * only"), the blind LLM and chance. Open questions are answered greedily,
 * those that offer two candidates as multiple choice.
 *
 * Paper: Zhang, Li & Bing, "Video-LLaMA" (EMNLP 2023 demo), §2.3 (the
 * branches trained separately, then on audio-visual instructions).
 * Reference: DAMO-NLP-SG/Video-LLaMA `train_configs/` (stage 1 on video
 * captions, the audio branch trained on visual data through ImageBind's
 * shared space). Here each branch trains on its own modality's data, which
 * the world has. The plan and its measurements: docs/lab03-plan.md.
 *
 * The checkpoint holds the bridges only (`video_bridge.*`, `video_track_head.*`,
 * `video_object_tracker.*`, `audio_bridge.*`) and `video_only.safetensors` (what stage A trained: the video
 * projection and the code tokens' map); config.json names the backbone folders,
 * as lab 01's BLIP-2 bridge does.
 */
import * as fs from "fs";
import * as path from "path";
import * as tf from "@tensorflow/tfjs";
import { Module } from "../nn/module";
import { VideoLlamaForConditionalGeneration, VIDEO_LLAMA_PRESETS, type VideoLlamaBackbones } from "../models/video_llama";
import { slotPermutations } from "../models/video_track_head";
import type { VideoObjectTrackerConfig } from "../models/video_object_tracker";
import { videoLlamaConfigFromHF, videoLlamaConfigToHF } from "../models/video_llama_spec";
import type { LlamaForCausalLM } from "../models/llama";
import { loadCLIPVision, loadAudioEncoder, loadLlama, loadWeights } from "../io/pretrained";
import { readHFConfig } from "../io/hf_config";
import { Checkpoint, SafetensorsFile, saveCheckpoint } from "../io/safetensors";
import { loadTokenizer, type TextTokenizer } from "../tokenizer/tokenizer";
import { languageText } from "../pipelines/blip2";
import { openSplit, readClip, toChannelsFirst, videoTensor } from "../data/loaders";
import { sampleVideo, type Track, type VideoClip } from "../data/video";
import {
  disposeTrackTargets,
  gatherIdentityTargets,
  gatherTrackTargets,
  identityTargetArrays,
  trackTargetArrays,
  worldTrackAttributes,
} from "../data/video_tracks";
import { sceneSvg, svgToRgb } from "../data/scene";
import { soundEventClip, videoSoundtrack } from "../data/audio";
import { COLOR_NAMES, SHAPE_NAMES } from "../data/vocabulary";
import { orderQuestions, audioVisualQuestions, trackTimings, offeredCandidates } from "../data/video_questions";
import { segmentLogMel, shuffledFrameOrder, singleMiddleFrame } from "../data/temporal_sampling";
import { videoQaAccuracyByType, videoQuestionType, type VideoQuestionType } from "../metrics/video_qa";
import { audioEventAccuracy } from "../metrics/modality_answers";
import { ciderD } from "../metrics/cider";
import { vqaAccuracy, type VqaPair } from "../data/vqa";
import { AdamW } from "../train/adamw";
import { shiftedTokenLogLikelihoods } from "../models/blip2_losses";
import { Random } from "../util/random";
import {
  learningRateAt,
  machineRecord,
  writeCheckpoint,
  baselineTableMarkdown,
  cardMarkdown,
  type CheckpointCard,
} from "./common";
import type { PretrainArgs } from "./vision";

/** The frozen backbones, relative to the checkpoint folder. */
export const VIDEOLLAMA_BACKBONES = { vision: "../vision", audio: "../audio", language: "../language" } as const;

/** The text prompt of every question (the language corpus's own format). */
export const videoQuestionPrompt = (question: string): string => `question: ${question} answer:`;
/** The caption request. */
export const VIDEO_CAPTION_QUESTION = "what happens in the clip?";
/** The sound-event request (audio only). */
export const SOUND_QUESTION = "what makes the sound?";

/** How `npm run pretrain -- videollama` trains and measures. */
export interface VideoLlamaPlan {
  /**
   * Optimiser steps of stage O (the object tracker learns the fresh clips' exact tracks by identity), stage T (the
   * video Q-Former and its track head learn them by slot), stage A (the video branch answers, its Q-Former frozen),
   * B (audio branch), C (both).
   */
  readonly steps: {
    readonly objects: number;
    readonly tracks: number;
    readonly video: number;
    readonly audio: number;
    readonly joint: number;
  };
  /**
   * The object tracker whose tracks fill the code tokens (`VideoLlamaConfig.objectTracker`), trained in stage O on
   * the tower's whole patch grid; undefined: the code tokens read the track head's slots, and there is no stage O.
   */
  readonly objectTracker?: VideoObjectTrackerConfig;
  /** Clips per step of stage O. */
  readonly objectBatchSize: number;
  /** Peak learning rate of stages T, B and C (warm-up then cosine, `learningRateAt`). */
  readonly learningRate: number;
  /** Peak learning rate of stage A, where only the video projection and the code tokens' map learn. */
  readonly videoLearningRate: number;
  /** Stage A draws this many batches of direction questions for every `mixtureWeight` batches of the whole mixture (questions, order questions, captions). */
  readonly directionWeight: number;
  /** Stage A draws this many batches of order questions (derived from the tracks) for every `mixtureWeight` batches of the whole mixture. */
  readonly orderWeight: number;
  /** Stage A's cycle holds this many batches of the whole mixture (questions, order questions, captions), after the direction and order batches. */
  readonly mixtureWeight: number;
  /**
   * Stage C's cycle of batches (step k draws from the k mod length-th): the audio-visual questions (frames + sound), the
   * sound events (sound only), and, without sound, the direction questions, stage A's whole mixture or the captions.
   */
  readonly jointCycle: readonly JointBatch[];
  /**
   * Which of stage C's batches train the video projection and the code tokens' map (the batches with sound always train
   * the audio bridge): `"all"` every batch with frames; `"sound-less"` only the batches without sound, so the
   * audio-visual batches train the audio bridge alone; `"none"` none, the video branch answers as stage A left it.
   * The plan's is `"none"`, with a cycle of audio-visual and sound batches: with the object tracker's code tokens,
   * `"sound-less"` (the cycle audio-visual, sound ×2, direction, audio-visual, sound ×2, mixture) kept stage A's
   * direction (0.831) but lost "is the X there at first?" from 0.934 to 0.728, and order with it from 0.782 to 0.640,
   * under the target; it raised the captions (CIDEr-D 0.963 → 1.243) as much as from the middle frame (0.922 → 1.236)
   * (docs/lab03-plan.md, "Twelfth round"). Before the tracker (the query reader's code tokens; "Ninth round", "Tenth
   * round"): `"sound-less"` with that cycle lost 0.034 of stage A's direction, `"all"` 0.047, and `"none"` kept it but
   * left the captions under the middle frame's.
   */
  readonly jointVideoTraining: "all" | "sound-less" | "none";
  /** The code tokens add the LLM's embeddings of the predicted direction, colour and shape words (`TrackAttribute.tokenIds`). */
  readonly codeWords: boolean;
  /** The code tokens hold each slot's visibility and position in every frame (`VideoTrackHeadConfig.codeTimeline`). */
  readonly codeTimeline: boolean;
  readonly batchSize: number;
  /** Clips drawn fresh by the world's generator for training (seed + 17), added to the train split; their tracks teach stage T. */
  readonly freshClips: number;
  /** Two-object clips whose soundtrack holds one object (seed + 18), for the audio-visual questions. */
  readonly audioVisualClips: number;
  /** Sound events drawn fresh (seed + 21), added to the audio train split's events. */
  readonly freshSoundEvents: number;
  /** Fresh clips added to the stored test split for evaluation (seed + 27). */
  readonly testClips: number;
  /** Fresh audio-visual clips for evaluation (seed + 28). */
  readonly testAudioVisualClips: number;
  /** Fresh clips that carry order questions, for evaluation (seed + 31): their order questions only, beside the test clips'. */
  readonly testOrderClips: number;
  /** Stored training clips used (default all 160; tests use fewer). */
  readonly storedTrainClips?: number;
  /** Stored training sound events used (default all; tests use fewer). */
  readonly storedSoundEvents?: number;
}

export const VIDEOLLAMA_PLAN: VideoLlamaPlan = {
  steps: { objects: 4000, tracks: 3000, video: 3000, audio: 400, joint: 600 },
  objectTracker: { hiddenSize: 128, window: 3 },
  objectBatchSize: 16,
  learningRate: 1e-3,
  videoLearningRate: 3e-3,
  directionWeight: 2,
  orderWeight: 1,
  mixtureWeight: 2,
  jointCycle: ["audio-visual", "sound"],
  jointVideoTraining: "none",
  codeWords: true,
  codeTimeline: true,
  batchSize: 32,
  freshClips: 6000,
  audioVisualClips: 600,
  freshSoundEvents: 400,
  testClips: 200,
  testAudioVisualClips: 150,
  testOrderClips: 400,
};

/** A batch of stage C's cycle (`VideoLlamaPlan.jointCycle`). */
export type JointBatch = "audio-visual" | "sound" | "direction" | "mixture" | "captions";
const JOINT_BATCHES: readonly JointBatch[] = ["audio-visual", "sound", "direction", "mixture", "captions"];

/** What the card says stage C's batches train, for each `VideoLlamaPlan.jointVideoTraining`. */
const JOINT_VIDEO_TRAINING: Record<VideoLlamaPlan["jointVideoTraining"], string> = {
  all: "the video projections learn from every batch with frames",
  "sound-less":
    "the video projections learn only from the batches without sound, so the audio-visual ones train the audio bridge alone",
  none: "the video branch stays as stage A left it",
};

/** One question about a clip of a {@link ClipSet}. */
export interface ClipQuestion {
  /** Row of the set's features. */
  readonly clip: number;
  readonly question: string;
  readonly answer: string;
  readonly answers: readonly string[];
}

/** Clips with their frozen features, questions and captions. */
export interface ClipSet {
  /** [N, F, K, Dv] frame features (empty F for sound-only sets). */
  readonly frames?: tf.Tensor4D;
  /**
   * [N, F, I, 3] the object tracker's detections of every frame (`VideoObjectTracker.frameDetections`), when the model
   * has a tracker: they travel with the frames, so a view that shuffles or repeats frames shows its reader the same order.
   */
  readonly detections?: tf.Tensor4D;
  /**
   * [N, F, 1 + G², Dv] the tower's whole patch grid (`frameTokens`), kept only while the object tracker learns from it
   * (stage O): {@link withDetections} turns it into `detections`.
   */
  readonly frameTokens?: tf.Tensor4D;
  /** [N, S, Ka, Da] audio segment features. */
  readonly segments?: tf.Tensor4D;
  readonly questions: readonly ClipQuestion[];
  /** One caption per clip (clip sets). */
  readonly captions: readonly string[];
  /** Per row, the sounding object (sound sets). */
  readonly sounds?: readonly { readonly color: string; readonly shape: string }[];
  /** Per row, the generator's exact tracks (clips drawn fresh; undefined for stored records, which keep no positions). */
  readonly tracks?: readonly (readonly Track[] | undefined)[];
  /** The side of the frames the tracks' positions are pixels of. */
  readonly trackCanvas?: number;
}

export function disposeClipSet(set: ClipSet): void {
  tf.dispose([set.frames, set.segments, set.detections, set.frameTokens].filter((t): t is tf.Tensor4D => t !== undefined));
}

/** The frames of a clip set, as its builders make them. */
export interface FrameInputs {
  /** [N, F, K, Dv] the pooled features the video Q-Former reads. */
  readonly frames: tf.Tensor4D;
  /** [N, F, I, 3] with an object tracker (unless `frameTokens` are kept instead). */
  readonly detections?: tf.Tensor4D;
  /** [N, F, 1 + G², Dv] when asked for (`keepFrameTokens`). */
  readonly frameTokens?: tf.Tensor4D;
}

/** How a clip set's builder treats the frames. */
export interface FrameOptions {
  /**
   * Keep the tower's whole patch grid (`ClipSet.frameTokens`) instead of the tracker's detections: for the training
   * sets, whose detections can be made only once stage O has trained the tracker. Default false.
   */
  readonly keepFrameTokens?: boolean;
}

/** Accumulates {@link FrameInputs} chunk by chunk: each chunk's pixels go through the tower once. */
class FrameInputsBuilder {
  private readonly parts: { frames: tf.Tensor[]; detections: tf.Tensor[]; frameTokens: tf.Tensor[] } = {
    frames: [],
    detections: [],
    frameTokens: [],
  };

  constructor(
    private readonly model: VideoLlamaForConditionalGeneration,
    private readonly options: FrameOptions & { readonly detections?: boolean },
  ) {}

  /** pixels: [B, F, 3, S, S] (not disposed) */
  add(pixels: tf.Tensor): void {
    const { model, options, parts } = this;
    const out = tf.tidy(() => {
      const tokens = model.frameTokens(pixels); // [B, F, 1 + G², Dv]
      return {
        frames: model.poolFrameTokens(tokens),
        detections:
          !options.keepFrameTokens && options.detections !== false && model.videoObjectTracker
            ? model.frameDetections(tokens)
            : undefined,
        frameTokens: options.keepFrameTokens ? tokens : undefined,
      };
    });
    parts.frames.push(out.frames);
    if (out.detections) parts.detections.push(out.detections);
    if (out.frameTokens) parts.frameTokens.push(out.frameTokens);
  }

  /** Every chunk's inputs joined (the chunks are disposed). */
  build(): FrameInputs {
    const join = (list: tf.Tensor[]) => {
      if (list.length === 0) return undefined;
      const joined = tf.concat(list, 0) as tf.Tensor4D;
      tf.dispose(list);
      return joined;
    };
    const frames = join(this.parts.frames)!;
    const detections = join(this.parts.detections);
    const frameTokens = join(this.parts.frameTokens);
    return { frames, ...(detections ? { detections } : {}), ...(frameTokens ? { frameTokens } : {}) };
  }
}

const FEATURE_CHUNK = 16;

/** Soundtracks → segment features [N, S, Ka, Da] (0.2 s segments, the frozen audio encoder). */
function soundFeatures(model: VideoLlamaForConditionalGeneration, soundtracks: readonly Float32Array[]): tf.Tensor4D {
  const parts: tf.Tensor[] = [];
  for (let start = 0; start < soundtracks.length; start += FEATURE_CHUNK) {
    const chunk = soundtracks.slice(start, start + FEATURE_CHUNK).map((samples) => segmentLogMel(samples));
    const { segments, melBins, frames } = chunk[0];
    const values = new Float32Array(chunk.length * segments * melBins * frames);
    chunk.forEach((c, k) => {
      if (c.segments !== segments)
        throw new Error(`videollama: soundtracks of ${c.segments} and ${segments} segments in one batch`);
      values.set(c.values, k * segments * melBins * frames);
    });
    parts.push(
      tf.tidy(() => model.segmentFeatures(tf.tensor4d(values, [chunk.length, segments, melBins, frames]))), // [B, S, Ka, Da]
    );
  }
  const out = tf.concat(parts, 0) as tf.Tensor4D;
  tf.dispose(parts);
  return out;
}

/** Clips drawn by the generator → frame features [N, F, K, Dv], rendered in memory. */
export async function renderedFrameFeatures(
  model: VideoLlamaForConditionalGeneration,
  clips: readonly VideoClip[],
): Promise<tf.Tensor4D> {
  return (await renderedFrameInputs(model, clips, { detections: false })).frames; // features alone: no tracker pass
}

/**
 * Clips drawn by the generator → their {@link FrameInputs} (features, and detections or the whole grid), rendered in
 * memory; `detections: false` skips the tracker (features alone).
 */
export async function renderedFrameInputs(
  model: VideoLlamaForConditionalGeneration,
  clips: readonly VideoClip[],
  options: FrameOptions & { readonly detections?: boolean } = {},
): Promise<FrameInputs> {
  const builder = new FrameInputsBuilder(model, options);
  const size = clips[0].frames[0].canvas;
  const F = clips[0].frames.length;
  const frameSize = 3 * size * size;
  for (let start = 0; start < clips.length; start += FEATURE_CHUNK) {
    const chunk = clips.slice(start, start + FEATURE_CHUNK);
    const values = new Float32Array(chunk.length * F * frameSize);
    for (let k = 0; k < chunk.length; k++) {
      const images = await Promise.all(chunk[k].frames.map((scene) => svgToRgb(sceneSvg(scene))));
      images.forEach((image, f) => toChannelsFirst(image, 0, size, "clip", values, (k * F + f) * frameSize));
    }
    const pixels = tf.tensor5d(values, [chunk.length, F, 3, size, size]);
    builder.add(pixels);
    pixels.dispose();
  }
  return builder.build();
}

/** Each clip's questions, flattened with the clip's row. */
function clipQuestions(perClip: readonly (readonly VqaPair[])[]): ClipQuestion[] {
  return perClip.flatMap((pairs, clip) =>
    pairs.map((q) => ({ clip, question: q.question, answer: q.answer, answers: q.answers })),
  );
}

/** A stored split of `videos` (the first `limit` clips): features of its filmstrips and soundtracks, its questions plus the derived order questions, its captions. */
export async function storedClipSet(
  model: VideoLlamaForConditionalGeneration,
  world: string,
  split: "train" | "val" | "test",
  limit?: number,
  options: FrameOptions = {},
): Promise<ClipSet> {
  const all = openSplit(world, "videos", split);
  const records = limit === undefined ? all.records : all.records.slice(0, limit);
  const builder = new FrameInputsBuilder(model, options);
  for (let start = 0; start < records.length; start += FEATURE_CHUNK) {
    const chunk = records.slice(start, start + FEATURE_CHUNK);
    const pixels = await videoTensor(
      chunk.map((r) => path.join(all.dir, r.video)),
      chunk[0].frames,
    );
    builder.add(pixels);
    pixels.dispose();
  }
  const frameInputs = builder.build();
  const segments = soundFeatures(
    model,
    records.map((r) => readClip(path.join(all.dir, r.audio))),
  );
  const questions = clipQuestions(records.map((r) => [...r.vqa, ...orderQuestions(trackTimings(r.tracks), r.frames)]));
  return { ...frameInputs, segments, questions, captions: records.map((r) => r.caption) };
}

/**
 * `count` clips drawn fresh by the world's generator (12 frames, their soundtracks unless `sound` is false, questions,
 * order questions, captions and exact tracks).
 */
export async function freshClipSet(
  model: VideoLlamaForConditionalGeneration,
  count: number,
  seed: number,
  options: { sound?: boolean } & FrameOptions = {},
): Promise<ClipSet> {
  const random = new Random(seed);
  const clips = Array.from({ length: count }, () => sampleVideo(random, 12));
  const soundtracks = options.sound === false ? undefined : clips.map((clip) => videoSoundtrack(clip, random));
  const questions = clipQuestions(clips.map((c) => [...c.questions, ...orderQuestions(c.tracks, c.frames.length)]));
  return {
    ...(await renderedFrameInputs(model, clips, options)),
    ...(soundtracks ? { segments: soundFeatures(model, soundtracks) } : {}),
    questions,
    captions: clips.map((c) => c.caption),
    tracks: clips.map((c) => c.tracks),
    trackCanvas: clips[0]?.frames[0].canvas,
  };
}

/**
 * `count` fresh clips that each carry at least one order question (`orderQuestions`: few clips do, since the questions
 * are asked only where the frames' order decides them), with those questions alone: no sound, no captions, no tracks.
 * The test clips hold too few order questions to measure them on their own.
 */
export async function orderClipSet(model: VideoLlamaForConditionalGeneration, count: number, seed: number): Promise<ClipSet> {
  const random = new Random(seed);
  const clips: VideoClip[] = [];
  const questions: VqaPair[][] = [];
  while (clips.length < count) {
    const clip = sampleVideo(random, 12);
    const order = orderQuestions(clip.tracks, clip.frames.length);
    if (order.length === 0) continue;
    clips.push(clip);
    questions.push(order);
  }
  return { ...(await renderedFrameInputs(model, clips)), questions: clipQuestions(questions), captions: [] };
}

/** Two-object clips whose soundtrack holds only one object's sound, with the audio-visual questions. */
export async function audioVisualClipSet(
  model: VideoLlamaForConditionalGeneration,
  count: number,
  seed: number,
  options: FrameOptions = {},
): Promise<ClipSet> {
  const random = new Random(seed);
  const clips: VideoClip[] = [];
  const heard: number[] = [];
  while (clips.length < count) {
    const clip = sampleVideo(random, 12);
    if (clip.tracks.length !== 2) continue;
    clips.push(clip);
    heard.push(random.int(0, 2));
  }
  const soundtracks = clips.map((clip, k) => videoSoundtrack({ ...clip, tracks: [clip.tracks[heard[k]]] }, random));
  const questions = clipQuestions(clips.map((c, k) => audioVisualQuestions(c.tracks, heard[k])));
  return {
    ...(await renderedFrameInputs(model, clips, options)),
    segments: soundFeatures(model, soundtracks),
    questions,
    captions: clips.map((c) => c.caption),
    sounds: clips.map((c, k) => c.tracks[heard[k]].object),
  };
}

/** Sound events: the audio set's event clips of `split` (the first `limit`, default all) plus `fresh` ones drawn with `seed`; the question "what makes the sound?". */
export function soundEventSet(
  model: VideoLlamaForConditionalGeneration,
  world: string,
  split: "train" | "val" | "test",
  fresh: number,
  seed: number,
  limit?: number,
): ClipSet {
  const stored = openSplit(world, "audio", split);
  const events = stored.records.filter((r) => r.kind === "event").slice(0, limit);
  const random = new Random(seed);
  const drawn = Array.from({ length: fresh }, () => ({
    color: COLOR_NAMES[random.int(0, COLOR_NAMES.length)],
    shape: SHAPE_NAMES[random.int(0, SHAPE_NAMES.length)],
  }));
  const soundtracks = [
    ...events.map((r) => readClip(path.join(stored.dir, r.audio))),
    ...drawn.map((d) => soundEventClip(random, d.color, d.shape)),
  ];
  const sounds = [...events.map((r) => ({ color: r.color as string, shape: r.shape as string })), ...drawn];
  return {
    segments: soundFeatures(model, soundtracks),
    questions: sounds.map((s, clip) => {
      const answer = `${s.color} ${s.shape}`;
      return { clip, question: SOUND_QUESTION, answer, answers: new Array<string>(10).fill(answer) };
    }),
    captions: [],
    sounds,
  };
}

/**
 * Two clip sets as one (the inputs are disposed). A modality only one of them has (frames, sound) is not kept: the joined
 * set has it for every row or not at all. Tracks are kept, undefined for the rows that have none.
 */
export function joinClipSets(a: ClipSet, b: ClipSet): ClipSet {
  const offset = a.frames?.shape[0] ?? a.segments?.shape[0] ?? 0;
  const rowsOfB = b.frames?.shape[0] ?? b.segments?.shape[0] ?? 0;
  for (const [set, rows] of [
    [a, offset],
    [b, rowsOfB],
  ] as const)
    if (set.tracks && set.tracks.length !== rows)
      throw new Error(`videollama: a clip set of ${rows} rows has tracks for ${set.tracks.length}`);
  const join = (x?: tf.Tensor4D, y?: tf.Tensor4D) => (x && y ? (tf.concat([x, y], 0) as tf.Tensor4D) : undefined);
  if (a.trackCanvas !== undefined && b.trackCanvas !== undefined && a.trackCanvas !== b.trackCanvas)
    throw new Error(`videollama: clip sets of ${a.trackCanvas}- and ${b.trackCanvas}-pixel frames cannot be joined`);
  for (const key of ["detections", "frameTokens"] as const)
    if (a.frames && b.frames && !a[key] !== !b[key])
      throw new Error(`videollama: one clip set has ${key} and the other not; they cannot be joined`);
  const out: ClipSet = {
    frames: join(a.frames, b.frames),
    segments: join(a.segments, b.segments),
    detections: join(a.detections, b.detections),
    frameTokens: join(a.frameTokens, b.frameTokens),
    questions: [...a.questions, ...b.questions.map((q) => ({ ...q, clip: q.clip + offset }))],
    captions: [...a.captions, ...b.captions],
    ...(a.tracks || b.tracks
      ? {
          tracks: [
            ...(a.tracks ?? new Array<undefined>(offset).fill(undefined)),
            ...(b.tracks ?? new Array<undefined>(rowsOfB).fill(undefined)),
          ],
          trackCanvas: a.trackCanvas ?? b.trackCanvas,
        }
      : {}),
  };
  disposeClipSet(a);
  disposeClipSet(b);
  return out;
}

/** What the model is shown of a clip: its frames (in an order), its sound, both; or, for `"blind"`, neither. */
export interface ViewArgs {
  /** Frames: every frame in order, shuffled (seeded), the middle frame repeated, or none. Default "all". */
  readonly frames?: "all" | "shuffled" | "middle" | "none";
  /** Include the sound. Default false. */
  readonly sound?: boolean;
  /** Seed of the shuffled order. Default 11. */
  readonly shuffleSeed?: number;
}

/** What {@link viewInputs} gathers for a batch: the model's inputs besides the text. */
type ViewInputs = {
  frameFeatures?: tf.Tensor;
  frameDetections?: tf.Tensor;
  segmentFeatures?: tf.Tensor;
  instructionIds?: tf.Tensor;
};

const disposeViewInputs = (inputs: ViewInputs): void =>
  tf.dispose(
    [inputs.frameFeatures, inputs.frameDetections, inputs.segmentFeatures, inputs.instructionIds].filter(
      (t): t is tf.Tensor => t !== undefined,
    ),
  );

/**
 * The prompts as the instruction the object tracker's slots follow (`VideoLlamaInputs.instructionIds`): [B, Ti] int32
 * token ids, −1 where padded; undefined for a model without a tracker or for inputs without frames.
 */
function instructionInputs(
  model: VideoLlamaForConditionalGeneration,
  tokenizer: TextTokenizer,
  prompts: readonly string[],
  view: ViewArgs,
): { instructionIds?: tf.Tensor } {
  if (!model.videoObjectTracker || (view.frames ?? "all") === "none") return {};
  const rows = prompts.map((prompt) => tokenizer.encode(prompt));
  const width = Math.max(1, ...rows.map((row) => row.length));
  const ids = rows.map((row) => [...row, ...new Array<number>(width - row.length).fill(-1)]);
  return { instructionIds: tf.tensor2d(ids, [rows.length, width], "int32") };
}

/** The inputs of a batch of questions: features (and detections) gathered by clip, frames permuted as `view` says. */
function viewInputs(set: ClipSet, clips: readonly number[], view: ViewArgs, orders?: readonly (readonly number[])[]): ViewInputs {
  return tf.tidy(() => {
    const out: ViewInputs = {};
    const frames = view.frames ?? "all";
    if (frames !== "none") {
      if (!set.frames) throw new Error("videollama: this set has no frames");
      const [N, F, K, D] = set.frames.shape;
      const rows = clips.flatMap((clip) => (orders ? orders[clip] : [...Array(F).keys()]).map((f) => clip * F + f));
      out.frameFeatures = tf.gather(set.frames.reshape([N * F, K, D]), rows).reshape([clips.length, F, K, D]); // [B, F, K, D]
      if (set.detections) {
        const [, , I, P] = set.detections.shape;
        out.frameDetections = tf.gather(set.detections.reshape([N * F, I, P]), rows).reshape([clips.length, F, I, P]); // [B, F, I, 3]: the same frames in the same order
      }
    }
    if (view.sound) {
      if (!set.segments) throw new Error("videollama: this set has no sound");
      out.segmentFeatures = tf.gather(set.segments, clips as number[]);
    }
    return out;
  });
}

/** Per clip, the frame order a view shows (undefined: in order). */
function frameOrders(set: ClipSet, view: ViewArgs): number[][] | undefined {
  if (!set.frames || (view.frames ?? "all") === "all" || view.frames === "none") return undefined;
  const [N, F] = set.frames.shape;
  const identity = [...Array(F).keys()];
  const random = new Random(view.shuffleSeed ?? 11);
  return Array.from({ length: N }, () =>
    view.frames === "shuffled" ? shuffledFrameOrder(identity, random) : singleMiddleFrame(identity),
  );
}

const decodeAnswer = (tokenizer: TextTokenizer, row: readonly number[]): string =>
  tokenizer
    .decode(row.includes(tokenizer.eosTokenId) ? row.slice(0, row.indexOf(tokenizer.eosTokenId)) : row, {
      skipSpecialTokens: true,
    })
    .trim();

/**
 * Answers to `questions` (each about a clip of `set`) under a view; `"none"` frames and no sound = the blind LLM.
 * An open question is answered greedily (at most `maxNewTokens`). A question that offers its candidates ("…, the A or
 * the B?": `offeredCandidates`) is, with `multipleChoice` (the default), answered by the candidate the model finds
 * likelier (`candidateLogLikelihoods`), as lm-evaluation-harness scores a multiple-choice task and SEED-Bench an
 * MLLM's choices: the test is whether the model prefers the right one of the two, not whether it spells either.
 */
export async function answerClipQuestions(
  model: VideoLlamaForConditionalGeneration,
  tokenizer: TextTokenizer,
  set: ClipSet,
  questions: readonly Pick<ClipQuestion, "clip" | "question">[],
  view: ViewArgs = {},
  options: { maxNewTokens?: number; batchSize?: number; multipleChoice?: boolean } = {},
): Promise<string[]> {
  const offered = questions.map((q) => (options.multipleChoice === false ? undefined : offeredCandidates(q.question)));
  const open = questions.filter((_, k) => !offered[k]);
  const generated = await generateClipAnswers(model, tokenizer, set, open, view, options);
  const rows = questions.flatMap((q, k) =>
    (offered[k] ?? []).map((candidate) => ({ clip: q.clip, question: q.question, candidate })),
  );
  const likelihoods = await candidateLogLikelihoods(model, tokenizer, set, rows, view, options);
  let nextOpen = 0;
  let nextRow = 0;
  return questions.map((_, k) => {
    const candidates = offered[k];
    if (!candidates) return generated[nextOpen++];
    const scores = likelihoods.slice(nextRow, nextRow + candidates.length);
    nextRow += candidates.length;
    if (scores.some((score) => !Number.isFinite(score)))
      throw new Error(
        `answerClipQuestions: the candidates of ${JSON.stringify(questions[k].question)} have log-likelihoods ${JSON.stringify(scores)}; expected finite numbers`,
      );
    return candidates[scores.indexOf(Math.max(...scores))]; // a tie goes to the first named
  });
}

/** Greedy answers (at most `maxNewTokens` tokens, default 4), batch by batch. */
async function generateClipAnswers(
  model: VideoLlamaForConditionalGeneration,
  tokenizer: TextTokenizer,
  set: ClipSet,
  questions: readonly Pick<ClipQuestion, "clip" | "question">[],
  view: ViewArgs,
  options: { maxNewTokens?: number; batchSize?: number },
): Promise<string[]> {
  const orders = frameOrders(set, view);
  const blind = view.frames === "none" && !view.sound;
  const batchSize = options.batchSize ?? 64;
  const out: string[] = [];
  for (let start = 0; start < questions.length; start += batchSize) {
    const batch = questions.slice(start, start + batchSize);
    const text = languageText(
      tokenizer,
      batch.map((q) => videoQuestionPrompt(q.question)),
      undefined,
      "left",
    );
    try {
      let rows: number[][];
      if (blind) {
        const full = await model.languageModel.generate(text.inputIds, {
          attentionMask: text.attentionMask,
          maxNewTokens: options.maxNewTokens ?? 4,
        });
        rows = full.map((row) => row.slice(text.inputIds.shape[1]));
      } else {
        const inputs = {
          ...viewInputs(
            set,
            batch.map((q) => q.clip),
            view,
            orders,
          ),
          ...instructionInputs(
            model,
            tokenizer,
            batch.map((q) => videoQuestionPrompt(q.question)),
            view,
          ),
        };
        try {
          rows = await model.generate(
            { ...inputs, inputIds: text.inputIds, attentionMask: text.attentionMask },
            { maxNewTokens: options.maxNewTokens ?? 4 },
          );
        } finally {
          disposeViewInputs(inputs);
        }
      }
      out.push(...rows.map((row) => decodeAnswer(tokenizer, row)));
    } finally {
      tf.dispose([text.inputIds, text.attentionMask, text.labels]);
    }
  }
  return out;
}

/**
 * The log-likelihood of each row's candidate answer (` candidate` and the end token, summed over their tokens) after
 * the row's question, under a view (`"none"` frames and no sound: the blind LLM). Teacher-forced, batch by batch.
 */
export async function candidateLogLikelihoods(
  model: VideoLlamaForConditionalGeneration,
  tokenizer: TextTokenizer,
  set: ClipSet,
  rows: readonly { clip: number; question: string; candidate: string }[],
  view: ViewArgs = {},
  options: { batchSize?: number } = {},
): Promise<number[]> {
  const orders = frameOrders(set, view);
  const blind = view.frames === "none" && !view.sound;
  const batchSize = options.batchSize ?? 64;
  const out: number[] = [];
  for (let start = 0; start < rows.length; start += batchSize) {
    const batch = rows.slice(start, start + batchSize);
    const text = languageText(
      tokenizer,
      batch.map((r) => videoQuestionPrompt(r.question)),
      batch.map((r) => ` ${r.candidate}`),
    ); // right-padded: the soft prompt, then each row's text from its first position
    let inputs: ViewInputs = {};
    try {
      if (!blind)
        inputs = {
          ...viewInputs(
            set,
            batch.map((r) => r.clip),
            view,
            orders,
          ),
          ...instructionInputs(
            model,
            tokenizer,
            batch.map((r) => videoQuestionPrompt(r.question)),
            view,
          ),
        };
      const scores = tf.tidy(() => {
        const logits = blind
          ? model.languageModel.forward({ inputIds: text.inputIds, attentionMask: text.attentionMask }).logits
          : model.forward({ ...inputs, inputIds: text.inputIds, attentionMask: text.attentionMask }).logits; // [R, P + T, V]
        const [R, width, V] = logits.shape as [number, number, number];
        const T = text.inputIds.shape[1];
        const textLogits = logits.slice([0, width - T, 0], [R, T, V]); // [R, T, V]: after the soft prompt (none when blind)
        return shiftedTokenLogLikelihoods(textLogits, text.labels); // [R]: log p(answer | clip, question)
      });
      out.push(...(await scores.data()));
      scores.dispose();
    } finally {
      tf.dispose([text.inputIds, text.attentionMask, text.labels]);
      disposeViewInputs(inputs);
    }
  }
  return out;
}

/** One training task: what a step's batch is drawn from and what the model sees of it. */
export interface TrainingTask {
  readonly name: string;
  readonly set: ClipSet;
  /** Prompt/target pairs with their clip. */
  readonly items: readonly { clip: number; prompt: string; target: string }[];
  readonly view: ViewArgs;
  /** The variables this task's batches train, when not all of the stage's (those outside the stage's stay frozen). */
  readonly trains?: readonly tf.Variable[];
}

/** The items of a clip set: its questions, and its captions when `captions` is set. */
export function trainingItems(set: ClipSet, captions = false): { clip: number; prompt: string; target: string }[] {
  const items = set.questions.map((q) => ({ clip: q.clip, prompt: videoQuestionPrompt(q.question), target: ` ${q.answer}` }));
  if (captions)
    set.captions.forEach((caption, clip) =>
      items.push({ clip, prompt: videoQuestionPrompt(VIDEO_CAPTION_QUESTION), target: ` ${caption}` }),
    );
  return items;
}

/** Every 50 steps and at the last: the mean loss of the last 50 steps and the seconds since `started`. */
function logProgress(
  log: ((line: string) => void) | undefined,
  label: string,
  losses: readonly number[],
  steps: number,
  started: number,
): void {
  const done = losses.length;
  if (!log || (done % 50 !== 0 && done !== steps)) return;
  const recent = losses.slice(-50);
  const mean = recent.reduce((sum, loss) => sum + loss, 0) / recent.length;
  log(`videollama ${label} step ${done}/${steps}: loss ${mean.toFixed(4)} (${((Date.now() - started) / 1000).toFixed(0)} s)`);
}

/**
 * Trains `variables` for `steps` steps, cycling through the tasks (step k uses task k mod tasks; a task with `trains`
 * updates only those of `variables` it names); returns the loss per step.
 */
export async function trainBridges(
  model: VideoLlamaForConditionalGeneration,
  tokenizer: TextTokenizer,
  tasks: readonly TrainingTask[],
  args: {
    steps: number;
    learningRate: number;
    batchSize: number;
    seed: number;
    variables: tf.Variable[];
    label: string;
    log?: (line: string) => void;
  },
): Promise<number[]> {
  if (tasks.length === 0 || tasks.some((t) => t.items.length === 0))
    throw new Error(`videollama ${args.label}: a task has no items`);
  const random = new Random(args.seed);
  const optimizer = new AdamW({ learningRate: args.learningRate, weightDecay: 0 });
  const losses: number[] = [];
  const started = Date.now();
  try {
    for (let step = 0; step < args.steps; step++) {
      const task = tasks[step % tasks.length];
      const batch = Array.from({ length: args.batchSize }, () => task.items[random.int(0, task.items.length)]);
      const text = languageText(
        tokenizer,
        batch.map((i) => i.prompt),
        batch.map((i) => i.target),
      );
      const inputs = {
        ...viewInputs(
          task.set,
          batch.map((i) => i.clip),
          task.view,
        ),
        ...instructionInputs(
          model,
          tokenizer,
          batch.map((i) => i.prompt),
          task.view,
        ),
      };
      optimizer.learningRate = learningRateAt(step, args.steps, args.learningRate, Math.min(50, Math.ceil(args.steps / 10)));
      const loss = optimizer.minimize(
        () => model.forward({ ...inputs, inputIds: text.inputIds, attentionMask: text.attentionMask, labels: text.labels }).loss!,
        task.trains ? args.variables.filter((v) => task.trains!.includes(v)) : args.variables,
      );
      losses.push((await loss.data())[0]);
      tf.dispose([loss, text.inputIds, text.attentionMask, text.labels]);
      disposeViewInputs(inputs);
      logProgress(args.log, args.label, losses, args.steps, started);
    }
  } finally {
    optimizer.dispose();
  }
  return losses;
}

/** Whole clips from frames stored as rows: flat [N·F, K, D], the clips' rows → [B, F, K, D]. */
function gatherClips(flat: tf.Tensor, clips: readonly number[], frames: number): tf.Tensor {
  const [, K, D] = flat.shape;
  return tf.tidy(() =>
    tf
      .gather(
        flat,
        clips.flatMap((clip) => [...Array(frames).keys()].map((f) => clip * frames + f)),
      )
      .reshape([clips.length, frames, K, D]),
  );
}

/**
 * Stage T: the video Q-Former (queries, frame positions, layers) and the track head learn the exact tracks of the
 * set's generated clips with the head's set loss alone (video_track_head.ts), as BLIP-2's stage 1 teaches its
 * Q-Former before any LLM sees it. Returns the loss per step.
 */
export async function trainTrackHead(
  model: VideoLlamaForConditionalGeneration,
  set: ClipSet,
  args: {
    steps: number;
    learningRate: number;
    batchSize: number;
    seed: number;
    /** AdamW's decoupled weight decay. Default 0 (the plan's). */
    weightDecay?: number;
    log?: (line: string) => void;
  },
): Promise<number[]> {
  const head = model.videoTrackHead;
  if (!head) throw new Error("videollama stage T: the model has no track head (config.trackHead)");
  const weightDecay = args.weightDecay ?? 0;
  if (!(weightDecay >= 0)) throw new Error(`videollama stage T: weightDecay must be ≥ 0, got ${String(args.weightDecay)}`);
  if (!set.frames || !set.tracks || set.trackCanvas === undefined)
    throw new Error("videollama stage T: the clip set has no frames or no tracks (only generated clips have tracks)");
  const rows = set.tracks.flatMap((tracks, row) => (tracks ? [row] : []));
  if (rows.length === 0) throw new Error("videollama stage T: no clip of the set has tracks");
  const targets = trackTargetArrays(
    rows.map((row) => set.tracks![row]!),
    { slots: head.config.slots, frames: head.config.frames, canvas: set.trackCanvas },
  );
  const projection = new Set(model.videoBridge.projection.trainableParameters());
  const variables = [
    ...model.videoBridge.trainableParameters().filter((v) => !projection.has(v)), // the LLM-side projection learns in stage A
    ...head.predictor.trainableParameters(),
  ];
  const [N, F, K, D] = set.frames.shape;
  const flatFrames = set.frames.reshape([N * F, K, D]); // [N·F, K, D]: frames as rows, to gather a batch's clips
  const random = new Random(args.seed);
  const optimizer = new AdamW({ learningRate: args.learningRate, weightDecay });
  const losses: number[] = [];
  const started = Date.now();
  try {
    for (let step = 0; step < args.steps; step++) {
      const picked = Array.from({ length: args.batchSize }, () => random.int(0, rows.length)); // rows of `targets`
      const frames = gatherClips(
        flatFrames,
        picked.map((k) => rows[k]),
        F,
      );
      const batchTargets = gatherTrackTargets(targets, picked);
      try {
        optimizer.learningRate = learningRateAt(step, args.steps, args.learningRate, Math.min(50, Math.ceil(args.steps / 10)));
        const loss = optimizer.minimize(
          () => head.setLoss(head.predict(model.videoPrompt(frames).queryOutput), batchTargets).loss.mean() as tf.Scalar,
          variables,
        );
        losses.push((await loss.data())[0]);
        loss.dispose();
      } finally {
        frames.dispose();
        disposeTrackTargets(batchTargets);
      }
      logProgress(args.log, "stage T (tracks)", losses, args.steps, started);
    }
  } finally {
    optimizer.dispose();
    flatFrames.dispose();
  }
  return losses;
}

/**
 * Stage O: the object tracker learns the exact tracks of the set's generated clips by identity (its detection,
 * position and motion losses: video_object_tracker.ts) from the tower's whole patch grid (`set.frameTokens`). Its
 * batches hold `batchSize` clips. Returns the total loss per step.
 */
export async function trainObjectTracker(
  model: VideoLlamaForConditionalGeneration,
  set: ClipSet,
  args: { steps: number; learningRate: number; batchSize: number; seed: number; log?: (line: string) => void },
): Promise<number[]> {
  const tracker = model.videoObjectTracker;
  if (!tracker) throw new Error("videollama stage O: the model has no object tracker (config.objectTracker)");
  if (!set.frameTokens || !set.tracks || set.trackCanvas === undefined)
    throw new Error(
      "videollama stage O: the clip set has no whole-grid frame tokens or no tracks (build it with keepFrameTokens; only generated clips have tracks)",
    );
  const rows = set.tracks.flatMap((tracks, row) => (tracks ? [row] : []));
  if (rows.length === 0) throw new Error("videollama stage O: no clip of the set has tracks");
  const [N, F, K, D] = set.frameTokens.shape;
  const targets = identityTargetArrays(
    rows.map((row) => set.tracks![row]!),
    { frames: F, canvas: set.trackCanvas },
  );
  const flatTokens = set.frameTokens.reshape([N * F, K, D]); // [N·F, 1 + G², Dv]: frames as rows, to gather a batch's clips
  const random = new Random(args.seed);
  const optimizer = new AdamW({ learningRate: args.learningRate, weightDecay: 0 });
  const variables = tracker.trainableParameters();
  const losses: number[] = [];
  const started = Date.now();
  try {
    for (let step = 0; step < args.steps; step++) {
      const picked = Array.from({ length: args.batchSize }, () => random.int(0, rows.length)); // rows of `targets`
      const tokens = gatherClips(
        flatTokens,
        picked.map((k) => rows[k]),
        F,
      );
      const batch = gatherIdentityTargets(targets, picked);
      try {
        optimizer.learningRate = learningRateAt(step, args.steps, args.learningRate, Math.min(50, Math.ceil(args.steps / 10)));
        const loss = optimizer.minimize(() => tracker.loss(tracker.track(tokens), batch).total, variables);
        losses.push((await loss.data())[0]);
        loss.dispose();
      } finally {
        tokens.dispose();
        tf.dispose([batch.visible, batch.position, batch.present, ...batch.motion]);
      }
      logProgress(args.log, "stage O (objects)", losses, args.steps, started);
    }
  } finally {
    optimizer.dispose();
    flatTokens.dispose();
  }
  return losses;
}

/**
 * The set with the trained tracker's detections of every frame in place of its whole-grid tokens (which are
 * disposed, with the set they came in; the other tensors move to the returned set).
 */
export function withDetections(model: VideoLlamaForConditionalGeneration, set: ClipSet): ClipSet {
  if (!set.frameTokens) throw new Error("videollama: the clip set holds no whole-grid frame tokens to detect objects in");
  const { frameTokens, ...rest } = set;
  const parts: tf.Tensor[] = [];
  for (let start = 0; start < frameTokens.shape[0]; start += 64) {
    const size = Math.min(64, frameTokens.shape[0] - start);
    parts.push(tf.tidy(() => model.frameDetections(frameTokens.slice([start, 0, 0, 0], [size, -1, -1, -1]))));
  }
  const detections = tf.concat(parts, 0) as tf.Tensor4D; // [N, F, I, 3]
  tf.dispose(parts);
  frameTokens.dispose();
  return { ...rest, detections };
}

/** How well the track head reads a set of generated clips (see {@link trackHeadAccuracy}). */
export interface TrackHeadAccuracy {
  /** Objects whose first direction the head names (argmax of its slot), over all objects. */
  readonly direction: number;
  /** The same over the objects of one-object clips (NaN when there is none). */
  readonly directionOneObject: number;
  /** The same over the objects of two-object clips (NaN when there is none). */
  readonly directionTwoObjects: number;
  /** Mean distance in pixels between the predicted and true position of every object in the frames it is visible. */
  readonly positionErrorPx: number;
  /** Objects scored (every object of every clip with tracks). */
  readonly objects: number;
}

/**
 * The track head on the clips of `set` that have tracks, shown as `view` says (frames in order, shuffled or the
 * middle frame): each slot is matched to an object by where and when (positions and visibility, not the labels being
 * scored), then its direction is compared.
 */
export async function trackHeadAccuracy(
  model: VideoLlamaForConditionalGeneration,
  set: ClipSet,
  view: ViewArgs = {},
): Promise<TrackHeadAccuracy> {
  const head = model.videoTrackHead;
  if (!head) throw new Error("trackHeadAccuracy: the model has no track head (config.trackHead)");
  if (!set.frames || !set.tracks || set.trackCanvas === undefined)
    throw new Error("trackHeadAccuracy: the clip set has no tracks");
  if (view.frames === "none") throw new Error('trackHeadAccuracy: the head reads frames; view.frames "none" shows none');
  const rows = set.tracks.flatMap((tracks, row) => (tracks ? [row] : []));
  if (rows.length === 0) throw new Error("trackHeadAccuracy: no clip of the set has tracks (only generated clips have them)");
  const { slots: S, frames: F } = head.config;
  const targets = trackTargetArrays(
    rows.map((row) => set.tracks![row]!),
    { slots: S, frames: F, canvas: set.trackCanvas },
  );
  const orders = frameOrders(set, view);
  const permutations = slotPermutations(S);
  let right = 0;
  let objects = 0;
  const byCount = new Map<number, [number, number]>(); // objects in the clip → [right, scored]
  let distance = 0;
  let visibleFrames = 0;
  for (let start = 0; start < rows.length; start += 64) {
    const picked = [...Array(Math.min(64, rows.length - start)).keys()].map((k) => start + k); // rows of `targets`
    const inputs = viewInputs(
      set,
      picked.map((k) => rows[k]),
      { frames: view.frames ?? "all" },
      orders,
    );
    const batch = gatherTrackTargets(targets, picked);
    let values: tf.TypedArray[];
    try {
      const outputs = tf.tidy(() => {
        const predicted = head.predict(model.videoPrompt(inputs.frameFeatures!).queryOutput);
        const { assignment } = head.setLoss(predicted, batch);
        return [predicted.attributes[0].argMax(2), predicted.position, assignment]; // [B, S], [B, S, F, 2], [B]
      });
      values = await Promise.all(outputs.map((t) => t.data()));
      tf.dispose(outputs);
    } finally {
      disposeViewInputs(inputs);
      disposeTrackTargets(batch);
    }
    const [guess, where, chosen] = values;
    picked.forEach((k, b) => {
      const permutation = permutations[chosen[b]]; // object permutation[s] sits in slot s
      const count = set.tracks![rows[k]]!.length;
      permutation.forEach((object, slot) => {
        const j = k * S + object;
        if (!targets.exists[j]) return;
        const ok = guess[b * S + slot] === targets.attributes[0][j] ? 1 : 0;
        right += ok;
        objects++;
        const tally = byCount.get(count) ?? [0, 0];
        byCount.set(count, [tally[0] + ok, tally[1] + 1]);
        for (let f = 0; f < F; f++) {
          if (!targets.visible[j * F + f]) continue;
          const dx = where[((b * S + slot) * F + f) * 2] - targets.position[(j * F + f) * 2];
          const dy = where[((b * S + slot) * F + f) * 2 + 1] - targets.position[(j * F + f) * 2 + 1];
          distance += Math.hypot(dx, dy) * (set.trackCanvas! / 2);
          visibleFrames++;
        }
      });
    });
  }
  const rate = (tally?: [number, number]) => (tally ? tally[0] / tally[1] : NaN);
  return {
    direction: right / objects,
    directionOneObject: rate(byCount.get(1)),
    directionTwoObjects: rate(byCount.get(2)),
    positionErrorPx: distance / Math.max(1, visibleFrames),
    objects,
  };
}

/** How well the object tracker reads a set of generated clips (see {@link objectTrackerAccuracy}). */
export interface ObjectTrackerAccuracy {
  /** Objects whose first direction the tracker names from their own identity's track, over all objects. */
  readonly direction: number;
  /** The same over the objects of one-object clips (NaN when there is none). */
  readonly directionOneObject: number;
  /** The same over the objects of two-object clips (NaN when there is none). */
  readonly directionTwoObjects: number;
  /** Objects whose identity is among the S the tracker finds likeliest in their clip: those the code tokens carry. */
  readonly found: number;
  /** Mean distance in pixels between the tracked and true position of every object in the frames it is visible. */
  readonly positionErrorPx: number;
  /** Objects scored (every object of every clip with tracks). */
  readonly objects: number;
}

/**
 * The object tracker on the clips of `set` that have tracks, shown as `view` says (frames in order, shuffled or the
 * middle frame): each object is read from its own identity's track (a question names the identity: "the red
 * circle"), and whether its identity is among the S the code tokens carry. Positions are compared with the truth of
 * the frame shown at each place.
 */
export async function objectTrackerAccuracy(
  model: VideoLlamaForConditionalGeneration,
  set: ClipSet,
  view: ViewArgs = {},
): Promise<ObjectTrackerAccuracy> {
  const tracker = model.videoObjectTracker;
  if (!tracker) throw new Error("objectTrackerAccuracy: the model has no object tracker (config.objectTracker)");
  if (!set.detections || !set.tracks || set.trackCanvas === undefined)
    throw new Error("objectTrackerAccuracy: the clip set has no detections or no tracks (build it with a tracking model)");
  if (view.frames === "none") throw new Error('objectTrackerAccuracy: the tracker reads frames; view.frames "none" shows none');
  const rows = set.tracks.flatMap((tracks, row) => (tracks ? [row] : []));
  if (rows.length === 0) throw new Error("objectTrackerAccuracy: no clip of the set has tracks (only generated clips have them)");
  const F = tracker.config.frames;
  const I = tracker.identities;
  const S = model.videoTrackHead?.config.slots ?? 2;
  const targets = identityTargetArrays(
    rows.map((row) => set.tracks![row]!),
    { frames: F, canvas: set.trackCanvas },
  );
  const orders = frameOrders(set, view);
  const tally = { right: 0, found: 0, objects: 0, distance: 0, visibleFrames: 0 };
  const byCount = new Map<number, [number, number]>(); // objects in the clip → [right, scored]
  for (let start = 0; start < rows.length; start += 64) {
    const picked = [...Array(Math.min(64, rows.length - start)).keys()].map((k) => start + k); // rows of `targets`
    const inputs = viewInputs(
      set,
      picked.map((k) => rows[k]),
      { frames: view.frames ?? "all" },
      orders,
    );
    let values: tf.TypedArray[];
    try {
      const outputs = tf.tidy(() => {
        const tracks = tracker.readDetections(inputs.frameDetections!);
        return [tracks.motion[0].argMax(2), tracker.likeliestIdentities(tracks.visibility, S), tracks.position]; // [B, I], [B, S], [B, I, F, 2]
      });
      values = await Promise.all(outputs.map((t) => t.data()));
      tf.dispose(outputs);
    } finally {
      disposeViewInputs(inputs);
    }
    const [guess, chosen, where] = values;
    picked.forEach((k, b) => {
      const count = set.tracks![rows[k]]!.length;
      const order = orders?.[rows[k]] ?? [...Array(F).keys()];
      for (let i = 0; i < I; i++) {
        const j = k * I + i;
        if (!targets.present[j]) continue;
        const ok = guess[b * I + i] === targets.motion[0][j] ? 1 : 0;
        tally.right += ok;
        tally.objects++;
        if (Array.from(chosen.subarray(b * S, (b + 1) * S)).includes(i)) tally.found++;
        const counted = byCount.get(count) ?? [0, 0];
        byCount.set(count, [counted[0] + ok, counted[1] + 1]);
        order.forEach((shown, f) => {
          if (!targets.visible[j * F + shown]) return;
          const dx = where[((b * I + i) * F + f) * 2] - targets.position[(j * F + shown) * 2];
          const dy = where[((b * I + i) * F + f) * 2 + 1] - targets.position[(j * F + shown) * 2 + 1];
          tally.distance += Math.hypot(dx, dy) * (set.trackCanvas! / 2);
          tally.visibleFrames++;
        });
      }
    });
  }
  const rate = (counted?: [number, number]) => (counted ? counted[0] / counted[1] : NaN);
  return {
    direction: tally.right / tally.objects,
    directionOneObject: rate(byCount.get(1)),
    directionTwoObjects: rate(byCount.get(2)),
    found: tally.found / tally.objects,
    positionErrorPx: tally.distance / Math.max(1, tally.visibleFrames),
    objects: tally.objects,
  };
}

/** What learns once the Q-Former has learnt the tracks: the video projection and, with code tokens, their map. */
export function videoAnswerVariables(model: VideoLlamaForConditionalGeneration): tf.Variable[] {
  return [
    ...model.videoBridge.projection.trainableParameters(),
    ...(model.videoTrackHead?.codeProjection?.trainableParameters() ?? []),
  ];
}

/** The checkpoint's trained part: the bridges (both, or the video one alone for video_only.safetensors), named as in the whole model. */
class VideoLlamaBridges extends Module {
  constructor(model: VideoLlamaForConditionalGeneration, parts: { audio: boolean } = { audio: true }) {
    super();
    this.module("video_bridge", model.videoBridge);
    if (model.videoTrackHead) this.module("video_track_head", model.videoTrackHead);
    if (model.videoObjectTracker) this.module("video_object_tracker", model.videoObjectTracker);
    if (parts.audio) this.module("audio_bridge", model.audioBridge);
  }
}

/** A loaded checkpoint: the model over its frozen backbones, stage A's video-only twin (same backbones), the tokenizer. */
export interface LoadedVideoLlama {
  readonly model: VideoLlamaForConditionalGeneration;
  /** Stage A's video bridge in a model sharing the backbones (the video-only baseline); absent when the folder has no video_only.safetensors. */
  readonly videoOnly?: VideoLlamaForConditionalGeneration;
  readonly tokenizer: TextTokenizer;
  dispose(): void;
}

function loadBridgeWeights(module: Module, file: string): void {
  const checkpoint = Checkpoint.open(file);
  try {
    loadWeights(module, checkpoint);
  } finally {
    checkpoint.close();
  }
}

/** A bridge-only model sharing another's backbones: frees only what is its own. */
function disposeBridges(model: VideoLlamaForConditionalGeneration): void {
  model.videoBridge.dispose();
  model.videoTrackHead?.dispose();
  model.videoObjectTracker?.dispose();
  model.audioBridge.dispose();
}

/** Loads `data/checkpoints/videollama` (or a folder like it): the bridges over the backbones its config.json names. */
export function loadVideoLlama(directory: string): LoadedVideoLlama {
  const config = readHFConfig(directory);
  const labs = config.json.mllm_labs;
  if (
    config.json.model_type !== "mllm_video_llama" ||
    !labs?.vision_checkpoint ||
    !labs?.audio_checkpoint ||
    !labs?.language_checkpoint
  )
    throw new Error(
      `loadVideoLlama: ${config.where} is not an mllm-labs VideoLLaMA bridge checkpoint (expected model_type "mllm_video_llama" with mllm_labs.vision_checkpoint, audio_checkpoint and language_checkpoint)`,
    );
  const resolved = videoLlamaConfigFromHF(config);
  const backbones = {
    vision: loadCLIPVision(path.resolve(directory, labs.vision_checkpoint)),
    audio: loadAudioEncoder(path.resolve(directory, labs.audio_checkpoint)),
    language: loadLlama(path.resolve(directory, labs.language_checkpoint)),
  };
  const model = new VideoLlamaForConditionalGeneration(resolved, backbones);
  let videoOnly: VideoLlamaForConditionalGeneration | undefined;
  try {
    loadBridgeWeights(new VideoLlamaBridges(model), directory);
    const videoOnlyFile = path.join(directory, labs.video_only ?? "video_only.safetensors");
    if (labs.video_only && !fs.existsSync(videoOnlyFile))
      throw new Error(`loadVideoLlama: ${config.where} names ${labs.video_only}, which is missing from ${directory}`);
    if (fs.existsSync(videoOnlyFile)) {
      videoOnly = new VideoLlamaForConditionalGeneration(resolved, backbones);
      // With a track head the file holds what stage A trained (the projections; the Q-Former and the head were frozen
      // after stage T, so the rest is model.safetensors'); without one, the whole video bridge.
      let stageA: SafetensorsFile | undefined;
      let full: Checkpoint | undefined;
      try {
        stageA = SafetensorsFile.open(videoOnlyFile);
        full = Checkpoint.open(directory);
        const parts = new VideoLlamaBridges(videoOnly, { audio: false });
        const names = new Set(parts.namedParameters().map(([name]) => name));
        const stray = stageA.keys().filter((key) => !names.has(key));
        if (stray.length)
          throw new Error(
            `loadVideoLlama: ${videoOnlyFile} holds ${stray.length} tensors the video bridge has no place for (${stray.slice(0, 3).join(", ")})`,
          );
        const answer = new Set(videoAnswerVariables(videoOnly));
        const required = videoOnly.videoTrackHead
          ? new Set(
              parts
                .namedParameters()
                .filter(([, variable]) => answer.has(variable))
                .map(([name]) => name),
            )
          : names;
        const missing = [...required].filter((name) => !stageA!.has(name));
        if (missing.length)
          throw new Error(
            `loadVideoLlama: ${videoOnlyFile} lacks ${missing.length} of stage A's tensors (${missing.slice(0, 3).join(", ")}); expected ${[...required].join(", ")}`,
          );
        parts.loadParameters(
          (name) => (stageA!.has(name) ? stageA!.tensor(name) : full!.has(name) ? full!.tensor(name) : undefined),
          videoOnlyFile,
        );
      } finally {
        stageA?.close();
        full?.close();
      }
    }
  } catch (error) {
    if (videoOnly) disposeBridges(videoOnly);
    model.dispose();
    throw error;
  }
  const tokenizer = loadTokenizer(directory);
  return {
    model,
    videoOnly,
    tokenizer,
    dispose() {
      if (videoOnly) disposeBridges(videoOnly);
      model.dispose();
    },
  };
}

/** What one evaluation measures and against what. */
export interface VideoLlamaEvaluation {
  readonly metrics: Record<string, number>;
  readonly baselines: Record<string, Record<string, number>>;
  /** Questions per metric (the binomial error of a rate p is √(p(1 − p)/n)). */
  readonly counts: Record<string, number>;
}

const TYPE_KEYS: Partial<Record<VideoQuestionType, string>> = {
  direction: "video_qa_direction",
  speed: "video_qa_speed",
  bounce: "video_qa_bounce",
  "appear/disappear": "video_qa_appear_disappear",
  order: "video_qa_order",
  count: "video_qa_count",
};

/** Per-type accuracy of answers to the video questions, as metric keys. */
function videoQaMetrics(questions: readonly ClipQuestion[], predictions: readonly string[]): Record<string, number> {
  const scored = videoQaAccuracyByType(
    questions.map((q, k) => ({ question: q.question, prediction: predictions[k], answers: q.answers })),
  );
  const out: Record<string, number> = { video_qa_overall: scored.overall.accuracy };
  for (const [type, key] of Object.entries(TYPE_KEYS)) {
    const entry = scored.perType[type as VideoQuestionType];
    if (entry) out[key] = entry.accuracy;
  }
  // The two kinds of order question apart: presence at the start (yes or no) and which bounces first (two names).
  for (const [key, kind] of Object.entries(ORDER_KINDS)) {
    const picked = questions.map((q, k) => [q, k] as const).filter(([q]) => kind.test(q.question));
    if (picked.length) out[key] = picked.reduce((sum, [q, k]) => sum + vqaAccuracy(predictions[k], q.answers), 0) / picked.length;
  }
  return out;
}

/** The order questions' two kinds (`orderQuestions`), as metric keys. */
const ORDER_KINDS: Record<string, RegExp> = {
  video_qa_order_there_at_first: /^is the [a-z ]+ there at first\?$/,
  video_qa_order_bounces_first: /^which bounces first, /,
};

/** Audio-visual accuracy overall and per question form. */
function audioVisualMetrics(questions: readonly ClipQuestion[], predictions: readonly string[]): Record<string, number> {
  const score = (test: (q: ClipQuestion) => boolean) => {
    const picked = questions.map((q, k) => [q, k] as const).filter(([q]) => test(q));
    return picked.reduce((sum, [q, k]) => sum + vqaAccuracy(predictions[k], q.answers), 0) / picked.length;
  };
  return {
    audio_visual: score(() => true),
    audio_visual_source: score((q) => q.question.startsWith("which object do you hear")),
    audio_visual_motion: score((q) => q.question.startsWith("which way does the object you hear")),
  };
}

/** Chance per metric: uniform guessing over each question's possible answers. */
export const VIDEOLLAMA_CHANCE: Record<string, number> = {
  video_qa_direction: 1 / 4,
  video_qa_speed: 1 / 2,
  video_qa_bounce: 1 / 2,
  video_qa_appear_disappear: 1 / 2,
  video_qa_order: 1 / 2,
  video_qa_order_there_at_first: 1 / 2,
  video_qa_order_bounces_first: 1 / 2,
  video_qa_count: 1 / 3,
  audio_visual: (1 / 2 + 1 / 4) / 2,
  audio_visual_source: 1 / 2,
  audio_visual_motion: 1 / 4,
  audio_event_accuracy: 1 / 30,
};

/**
 * The card's quick eval: the first 8 stored test clips, 8 fresh clips, 8 fresh audio-visual clips and 8 fresh order
 * clips, every metric and baseline — what the lab and the tests reproduce in seconds (the full eval takes minutes).
 */
export const VIDEOLLAMA_QUICK_EVAL = { storedLimit: 8, testClips: 8, testAudioVisualClips: 8, testOrderClips: 8 } as const;

export interface EvaluateVideoLlamaArgs {
  /** Fresh clips added to the stored test split (seed + 27). Default the plan's. */
  readonly testClips?: number;
  /** Fresh audio-visual clips (seed + 28). Default the plan's. */
  readonly testAudioVisualClips?: number;
  /** Fresh clips whose order questions join the test clips' (seed + 31). Default the plan's. */
  readonly testOrderClips?: number;
  /** Stored test clips used (default all). */
  readonly storedLimit?: number;
  /** Stored test sound events used (default all). */
  readonly soundEventLimit?: number;
  /** Skip captions (CIDEr-D). Default false. */
  readonly skipCaptions?: boolean;
  readonly seed?: number;
  readonly log?: (line: string) => void;
}

/**
 * Measures a loaded model on the world's test clips (stored + fresh, seeded
 * apart), fresh audio-visual clips and the audio set's test events, beside
 * its baselines. Video questions are answered from the frames alone (so the
 * soundtrack's timing cannot stand in for the frames' order).
 */
export async function evaluateVideoLlama(
  loaded: Pick<LoadedVideoLlama, "model" | "videoOnly" | "tokenizer">,
  world: string,
  args: EvaluateVideoLlamaArgs = {},
): Promise<VideoLlamaEvaluation> {
  const { model, videoOnly, tokenizer } = loaded;
  const seed = args.seed ?? 0;
  const log = args.log ?? (() => {});
  const clips = joinClipSets(
    await storedClipSet(model, world, "test", args.storedLimit),
    await freshClipSet(model, args.testClips ?? VIDEOLLAMA_PLAN.testClips, seed + 27),
  );
  const audioVisual = await audioVisualClipSet(
    model,
    args.testAudioVisualClips ?? VIDEOLLAMA_PLAN.testAudioVisualClips,
    seed + 28,
  );
  const events = soundEventSet(model, world, "test", 0, seed + 29, args.soundEventLimit);
  const order = await orderClipSet(model, args.testOrderClips ?? VIDEOLLAMA_PLAN.testOrderClips, seed + 31);
  try {
    const answer = (m: VideoLlamaForConditionalGeneration, set: ClipSet, view: ViewArgs, maxNewTokens = 4) =>
      answerClipQuestions(m, tokenizer, set, set.questions, view, { maxNewTokens });
    // The video questions: the test clips' and the order clips' (their order questions), each answered from `view`.
    const videoQuestions = [...clips.questions, ...order.questions];
    const videoQa = async (m: VideoLlamaForConditionalGeneration, view: ViewArgs) =>
      videoQaMetrics(videoQuestions, [...(await answer(m, clips, view)), ...(await answer(m, order, view))]);
    const captionCider = async (view: ViewArgs) => {
      const predictions = await answerClipQuestions(
        model,
        tokenizer,
        clips,
        clips.captions.map((_, clip) => ({ clip, question: VIDEO_CAPTION_QUESTION })),
        view,
        { maxNewTokens: 24 },
      );
      return ciderD(
        predictions,
        clips.captions.map((c) => [c]),
      );
    };
    const eventScore = async (m: VideoLlamaForConditionalGeneration, view: ViewArgs) => {
      const predictions = await answer(m, events, view);
      return audioEventAccuracy(
        predictions.map((p, k) => ({ answer: p, color: events.sounds![k].color, shape: events.sounds![k].shape })),
      ).accuracy;
    };
    const metrics: Record<string, number> = {
      ...(await videoQa(model, { frames: "all" })),
      ...audioVisualMetrics(audioVisual.questions, await answer(model, audioVisual, { frames: "all", sound: true })),
      audio_event_accuracy: await eventScore(model, { frames: "none", sound: true }),
    };
    log("videollama eval: model done");
    if (!args.skipCaptions) metrics.caption_cider_d = await captionCider({ frames: "all" });
    const baselines: Record<string, Record<string, number>> = {
      single_middle_frame: await videoQa(model, { frames: "middle" }),
      shuffled_frames: await videoQa(model, { frames: "shuffled", shuffleSeed: seed + 11 }),
      ...(videoOnly
        ? {
            video_only: {
              ...(await videoQa(videoOnly, { frames: "all" })),
              ...audioVisualMetrics(audioVisual.questions, await answer(videoOnly, audioVisual, { frames: "all" })),
            },
          }
        : {}),
      audio_only: audioVisualMetrics(audioVisual.questions, await answer(model, audioVisual, { frames: "none", sound: true })),
      // The same weights shown the frames without the sound: what the sound adds to the audio-visual answers.
      without_sound: audioVisualMetrics(audioVisual.questions, await answer(model, audioVisual, { frames: "all" })),
      blind: {
        ...(await videoQa(model, { frames: "none" })),
        ...audioVisualMetrics(audioVisual.questions, await answer(model, audioVisual, { frames: "none" })),
        audio_event_accuracy: await eventScore(model, { frames: "none" }),
      },
      chance: VIDEOLLAMA_CHANCE,
    };
    if (!args.skipCaptions) {
      baselines.single_middle_frame.caption_cider_d = await captionCider({ frames: "middle" });
      baselines.blind.caption_cider_d = await captionCider({ frames: "none" });
    }
    log("videollama eval: baselines done");
    const counts: Record<string, number> = {
      audio_visual: audioVisual.questions.length,
      audio_event_accuracy: events.questions.length,
    };
    for (const q of videoQuestions) {
      const key = TYPE_KEYS[videoQuestionType(q.question)];
      if (key) counts[key] = (counts[key] ?? 0) + 1;
      for (const [kindKey, kind] of Object.entries(ORDER_KINDS))
        if (kind.test(q.question)) counts[kindKey] = (counts[kindKey] ?? 0) + 1;
    }
    counts.video_qa_overall = videoQuestions.length;
    counts.caption_cider_d = clips.captions.length;
    return { metrics, baselines, counts };
  } finally {
    disposeClipSet(clips);
    disposeClipSet(audioVisual);
    disposeClipSet(events);
    disposeClipSet(order);
  }
}

/** Loads a checkpoint folder, evaluates it, disposes it (`mllm-labs eval`). */
export async function evaluateVideoLlamaCheckpoint(directory: string, world: string): Promise<VideoLlamaEvaluation> {
  const loaded = loadVideoLlama(directory);
  try {
    return await evaluateVideoLlama(loaded, world);
  } finally {
    loaded.dispose();
  }
}

/** The README's last section, the metrics beside every baseline (written by the pretraining and by a rescoring). */
const baselinesSection = (evaluation: VideoLlamaEvaluation): string[] => [
  "## Metrics beside the baselines",
  "",
  ...baselineTableMarkdown(evaluation.metrics, evaluation.baselines),
  "",
];

/**
 * Re-measures a written checkpoint with the current evaluation (its card's seed and quick-eval sizes) and rewrites its
 * card.json and README.md: metrics, baselines, counts, notes and the quick eval, the weights untouched. The card keeps
 * what it said before and why it changed: one entry per rescoring in `rescored` (`reason`, `earlier_metrics`,
 * `earlier_baselines`).
 * Returns what changed: each metric, and each baseline's as `baseline.metric`, with its value before and after. The
 * rescoring must ask the card's questions (its `metric_counts`), so `evaluation` overrides the full eval's sizes for a
 * card made with other ones (tests). (`node scripts/rescore-videollama.js DIR "REASON"`.)
 */
export async function rescoreVideoLlamaCard(
  directory: string,
  world: string,
  reason: string,
  options: { log?: (line: string) => void; evaluation?: EvaluateVideoLlamaArgs } = {},
): Promise<{ changed: Record<string, [number | undefined, number | undefined]> }> {
  const cardFile = path.join(directory, "card.json");
  if (!fs.existsSync(cardFile)) throw new Error(`rescoreVideoLlamaCard: ${cardFile} is missing`);
  let card: CheckpointCard & Record<string, unknown>;
  try {
    card = JSON.parse(fs.readFileSync(cardFile, "utf8"));
  } catch (error) {
    throw new Error(`rescoreVideoLlamaCard: ${cardFile} is not JSON (${(error as Error).message})`);
  }
  if (card.model_type !== "mllm_video_llama")
    throw new Error(`rescoreVideoLlamaCard: ${cardFile} is a ${JSON.stringify(card.model_type)} card, not mllm_video_llama`);
  if (typeof reason !== "string" || reason.trim() === "") throw new Error("rescoreVideoLlamaCard: say why the card is rescored");
  const quickArgs = (card.quick_eval as { args?: EvaluateVideoLlamaArgs } | undefined)?.args;
  if (!quickArgs || typeof quickArgs !== "object")
    throw new Error(`rescoreVideoLlamaCard: ${cardFile} has no quick_eval.args (got ${JSON.stringify(card.quick_eval)})`);
  const loaded = loadVideoLlama(directory);
  let full: VideoLlamaEvaluation;
  let quick: VideoLlamaEvaluation;
  try {
    full = await evaluateVideoLlama(loaded, world, { seed: card.seed, log: options.log, ...options.evaluation });
    quick = await evaluateVideoLlama(loaded, world, { seed: card.seed, ...quickArgs });
  } finally {
    loaded.dispose();
  }
  // The same questions as the card's, or the comparison would say nothing about the evaluation's rules.
  const counts = card.metric_counts as Record<string, number> | undefined;
  if (counts && Object.entries(counts).some(([name, n]) => full.counts[name] !== n))
    throw new Error(
      `rescoreVideoLlamaCard: the rescoring asked ${JSON.stringify(full.counts)} questions, the card ${JSON.stringify(counts)}; pass the card's evaluation sizes`,
    );
  const changed: Record<string, [number | undefined, number | undefined]> = {};
  const compare = (prefix: string, before: Record<string, number> = {}, after: Record<string, number> = {}) => {
    for (const name of new Set([...Object.keys(before), ...Object.keys(after)]))
      if (before[name] !== after[name]) changed[`${prefix}${name}`] = [before[name], after[name]];
  };
  compare("", card.metrics, full.metrics);
  const earlierBaselines = (card.baselines ?? {}) as Record<string, Record<string, number>>;
  for (const baseline of new Set([...Object.keys(earlierBaselines), ...Object.keys(full.baselines)]))
    compare(`${baseline}.`, earlierBaselines[baseline], full.baselines[baseline]);
  const history = [
    ...(Array.isArray(card.rescored) ? (card.rescored as { reason: string }[]) : []),
    { reason, earlier_metrics: card.metrics, earlier_baselines: card.baselines },
  ];
  const rescored: CheckpointCard & Record<string, unknown> = {
    ...card,
    metrics: full.metrics,
    metric_notes: VIDEOLLAMA_METRIC_NOTES,
    baselines: full.baselines,
    metric_counts: full.counts,
    quick_eval: { args: quickArgs, metrics: quick.metrics, baselines: quick.baselines },
    rescored: history,
  };
  const readme = [
    cardMarkdown(rescored),
    "## Rescored after training (the same weights)",
    "",
    ...history.map((entry, k) => `${k + 1}. ${entry.reason}`),
    "",
    ...baselinesSection(full),
  ].join("\n");
  // Both files are written beside their targets first, then renamed: a failure leaves the old pair and no partial file.
  const files = [
    ["card.json", JSON.stringify(rescored, null, 2) + "\n"],
    ["README.md", readme],
  ].map(([name, text]) => ({ target: path.join(directory, name), partial: path.join(directory, `${name}.partial`), text }));
  try {
    for (const file of files) fs.writeFileSync(file.partial, file.text);
    for (const file of files) fs.renameSync(file.partial, file.target);
  } finally {
    for (const file of files) fs.rmSync(file.partial, { force: true });
  }
  return { changed };
}

export const VIDEOLLAMA_METRIC_NOTES: Record<string, string> = {
  video_qa_overall:
    "VQA soft accuracy over the test clips' questions (stored test split + fresh clips seeded apart) and the order questions of the fresh order clips, frames only; open questions greedy (≤ 4 tokens), those that offer two candidates multiple choice (the likelier candidate)",
  video_qa_direction: "'which way does the X move at first?' (chance 1/4)",
  video_qa_order_there_at_first: "the order questions 'is the X there at first?' (multiple choice: yes or no)",
  video_qa_order_bounces_first: "the order questions 'which bounces first, the A or the B?' (multiple choice)",
  video_qa_order:
    "derived from the tracks, asked only where the frames' order decides them (neither a bag of frames nor the middle frame does): 'is the X there at first?' (yes or no; it appears or disappears one frame from the middle) and 'which bounces first, the A or the B?' (both bounce while visible); multiple choice (the likelier of the two candidates; chance 1/2), the model and every baseline alike; the test clips' and those of fresh clips that carry them (seed + 31)",
  audio_visual:
    "fresh two-object clips whose soundtrack holds one object: 'which object do you hear, the A or the B?' (multiple choice: the likelier name) and 'which way does the object you hear move at first?' (greedy), frames + sound",
  audio_event_accuracy:
    "the audio set's test sound events, sound only: 'what makes the sound?' → color and shape both right (chance 1/30)",
  caption_cider_d: "'what happens in the clip?' against the clip's one caption (CIDEr-D, pycocoevalcap's)",
};

/** The backbone folders of a checkpoint at `out`, each checked to exist. */
function backboneFolders(out: string): { vision: string; audio: string; language: string } {
  const folders = {
    vision: path.resolve(out, VIDEOLLAMA_BACKBONES.vision),
    audio: path.resolve(out, VIDEOLLAMA_BACKBONES.audio),
    language: path.resolve(out, VIDEOLLAMA_BACKBONES.language),
  };
  for (const dir of Object.values(folders))
    if (!fs.existsSync(path.join(dir, "config.json")))
      throw new Error(
        `pretrain videollama: the frozen backbone ${dir} is missing (make it with npm run pretrain -- ${path.basename(dir)}); the videollama folder must sit beside it`,
      );
  return folders;
}

/**
 * The model `npm run pretrain -- videollama` trains, before training: the nano bridges with the track head (its code
 * words when `plan.codeWords`, its timeline when `plan.codeTimeline`) between the given frozen backbones, whose own
 * configs replace vision, audio and text, initialised from `seed`.
 */
export function videoLlamaForPlan(
  plan: Pick<VideoLlamaPlan, "codeWords" | "codeTimeline" | "objectTracker">,
  backbones: Required<VideoLlamaBackbones>,
  tokenizer: TextTokenizer,
  seed: number,
): VideoLlamaForConditionalGeneration {
  const preset = VIDEO_LLAMA_PRESETS["video-llama-nano-tracks"];
  return new VideoLlamaForConditionalGeneration(
    {
      ...preset,
      trackHead: {
        ...preset.trackHead,
        attributes: worldTrackAttributes(plan.codeWords ? tokenizer : undefined),
        codeTimeline: plan.codeTimeline,
      },
      ...(plan.objectTracker ? { objectTracker: plan.objectTracker } : {}),
      vision: backbones.vision.config,
      audio: backbones.audio.config,
      text: backbones.language.config,
      seed,
    },
    backbones,
  );
}

/**
 * Trains the bridges (stages A, B, C), evaluates them (`evaluation` overrides the full eval's sizes, for tests) and
 * the quick eval, and writes the checkpoint beside the backbones.
 */
export async function pretrainVideoLlama(
  args: PretrainArgs,
  plan: VideoLlamaPlan = VIDEOLLAMA_PLAN,
  evaluation: EvaluateVideoLlamaArgs = {},
): Promise<{ model: VideoLlamaForConditionalGeneration; card: CheckpointCard }> {
  const log = args.log ?? console.log;
  const seed = args.seed ?? 0;
  const scale = args.steps ? args.steps / plan.steps.video : 1; // --steps N sets stage A's steps, the others in proportion
  const steps = {
    objects: plan.objectTracker ? Math.round(plan.steps.objects * scale) : 0,
    tracks: Math.round(plan.steps.tracks * scale),
    video: Math.round(plan.steps.video * scale),
    audio: Math.round(plan.steps.audio * scale),
    joint: Math.round(plan.steps.joint * scale),
  };
  const batchSize = args.batchSize ?? plan.batchSize;
  for (const key of ["directionWeight", "orderWeight", "mixtureWeight"] as const)
    if (!Number.isInteger(plan[key]) || plan[key] < 0)
      throw new Error(`pretrain videollama: plan.${key} must be a whole number of batches ≥ 0, got ${JSON.stringify(plan[key])}`);
  if (plan.objectTracker && (!Number.isInteger(plan.objectBatchSize) || plan.objectBatchSize < 1))
    throw new Error(
      `pretrain videollama: plan.objectBatchSize must be a positive whole number of clips, got ${JSON.stringify(plan.objectBatchSize)}`,
    );
  const trainings = Object.keys(JOINT_VIDEO_TRAINING);
  if (!trainings.includes(plan.jointVideoTraining))
    throw new Error(
      `pretrain videollama: plan.jointVideoTraining must be one of ${trainings.map((t) => JSON.stringify(t)).join(", ")}, got ${JSON.stringify(plan.jointVideoTraining)}`,
    );
  const cycle: unknown = plan.jointCycle; // checked as given: a plan may come from JSON
  if (!Array.isArray(cycle) || cycle.length === 0 || cycle.some((b) => !JOINT_BATCHES.includes(b)))
    throw new Error(
      `pretrain videollama: plan.jointCycle must list batches among ${JOINT_BATCHES.join(", ")}, got ${JSON.stringify(plan.jointCycle)}`,
    );
  const silent = plan.jointCycle.filter((b) => b !== "audio-visual" && b !== "sound");
  if (plan.jointVideoTraining === "none" && silent.length > 0)
    throw new Error(
      `pretrain videollama: plan.jointCycle holds ${JSON.stringify(silent)} batches, which train nothing when plan.jointVideoTraining is "none"`,
    );
  const folders = backboneFolders(args.out);
  const tokenizerDir = path.join(args.world, "tokenizer");
  const tokenizer = loadTokenizer(tokenizerDir);
  const language: LlamaForCausalLM = loadLlama(folders.language);
  const audio = loadAudioEncoder(folders.audio);
  const vision = loadCLIPVision(folders.vision);
  const model = videoLlamaForPlan(plan, { vision, audio, language }, tokenizer, seed);
  try {
    const started = Date.now();
    const cpuAtStart = process.cpuUsage();
    // With an object tracker the training sets keep the tower's whole grid until stage O has trained it.
    const frameOptions = { keepFrameTokens: model.videoObjectTracker !== undefined };
    const clipsWithTokens = joinClipSets(
      await storedClipSet(model, args.world, "train", plan.storedTrainClips, frameOptions),
      await freshClipSet(model, plan.freshClips, seed + 17, { sound: false, ...frameOptions }), // the clips' questions are asked of their frames alone
    );
    const audioVisualWithTokens = await audioVisualClipSet(model, plan.audioVisualClips, seed + 18, frameOptions);
    const events = soundEventSet(model, args.world, "train", plan.freshSoundEvents, seed + 21, plan.storedSoundEvents);
    const featureSeconds = (Date.now() - started) / 1000;
    log(
      `videollama: features of ${clipsWithTokens.captions.length} clips, ${audioVisualWithTokens.captions.length} audio-visual clips and ${events.questions.length} sound events in ${featureSeconds.toFixed(0)} s`,
    );
    const tObjects = Date.now();
    let objectLosses: number[] = [];
    let clips = clipsWithTokens;
    let audioVisual = audioVisualWithTokens;
    if (model.videoObjectTracker) {
      objectLosses = await trainObjectTracker(model, clipsWithTokens, {
        steps: steps.objects,
        learningRate: plan.learningRate,
        batchSize: plan.objectBatchSize,
        seed: seed + 34,
        log,
      });
      // The tracker is frozen from here on: every frame's detections are computed once, as the features were.
      clips = withDetections(model, clipsWithTokens);
      audioVisual = withDetections(model, audioVisualWithTokens);
    }
    const stageO = (Date.now() - tObjects) / 1000;
    const videoTask: TrainingTask = { name: "video", set: clips, items: trainingItems(clips, true), view: { frames: "all" } };
    const questionsOfType = (type: VideoQuestionType): TrainingTask => ({
      name: type,
      set: clips,
      items: videoTask.items.filter((item) => videoQuestionType(item.prompt) === type),
      view: { frames: "all" },
    });
    const directionTask = questionsOfType("direction");
    const orderTask = questionsOfType("order");
    const soundTask: TrainingTask = {
      name: "sound",
      set: events,
      items: trainingItems(events),
      view: { frames: "none", sound: true },
    };
    // The audio-visual clips' soundtracks name their one sounding object too.
    const soundtrackTask: TrainingTask = {
      name: "soundtrack",
      set: audioVisual,
      items: audioVisual.sounds!.map((s, clip) => ({
        clip,
        prompt: videoQuestionPrompt(SOUND_QUESTION),
        target: ` ${s.color} ${s.shape}`,
      })),
      view: { frames: "none", sound: true },
    };
    const avTask: TrainingTask = {
      name: "audio-visual",
      set: audioVisual,
      items: trainingItems(audioVisual),
      view: { frames: "all", sound: true },
    };
    const train = (
      label: string,
      s: number,
      tasks: TrainingTask[],
      variables: tf.Variable[],
      offset: number,
      learningRate = plan.learningRate,
    ) =>
      trainBridges(model, tokenizer, tasks, {
        steps: s,
        learningRate,
        batchSize,
        seed: seed + offset,
        variables,
        label,
        log,
      });
    const tTracks = Date.now();
    const trackLosses = await trainTrackHead(model, clips, {
      steps: steps.tracks,
      learningRate: plan.learningRate,
      batchSize,
      seed: seed + 30,
      log,
    });
    const stageT = (Date.now() - tTracks) / 1000;
    const t0 = Date.now();
    // From here on the Q-Former and the track head are frozen: the answers learn the projection and the code tokens' map.
    const videoLosses = await train(
      "stage A (video)",
      steps.video,
      [
        ...new Array<TrainingTask>(plan.directionWeight).fill(directionTask),
        ...new Array<TrainingTask>(plan.orderWeight).fill(orderTask),
        ...new Array<TrainingTask>(plan.mixtureWeight).fill(videoTask),
      ],
      videoAnswerVariables(model),
      31,
      plan.videoLearningRate,
    );
    // Stage A's video branch for the video-only baseline: only what stage A trained (the rest stays as stage T left it).
    const answerVariables = new Set(videoAnswerVariables(model));
    const videoOnlyState = Object.fromEntries(
      new VideoLlamaBridges(model, { audio: false })
        .namedParameters()
        .filter(([, v]) => answerVariables.has(v))
        .map(([name, v]) => [name, v.clone()] as const),
    );
    const stageA = (Date.now() - t0) / 1000;
    const audioLosses = await train(
      "stage B (audio)",
      steps.audio,
      [soundTask, soundtrackTask],
      model.audioBridge.trainableParameters(),
      32,
    );
    const stageB = (Date.now() - t0) / 1000 - stageA;
    // Stage C: the batches with sound train the audio bridge; those with frames train the video branch as
    // plan.jointVideoTraining says (a batch with neither role would train nothing, which the plan's check refuses).
    const audioVariables = model.audioBridge.trainableParameters();
    const videoVariables = plan.jointVideoTraining === "none" ? [] : videoAnswerVariables(model);
    const captionTask: TrainingTask = {
      name: "captions",
      set: clips,
      items: videoTask.items.filter((item) => item.prompt === videoQuestionPrompt(VIDEO_CAPTION_QUESTION)),
      view: { frames: "all" },
    };
    const jointTasks: Record<JointBatch, TrainingTask> = {
      "audio-visual": avTask,
      sound: soundTask,
      direction: directionTask,
      mixture: videoTask,
      captions: captionTask,
    };
    const trainsVideo = (task: TrainingTask) =>
      task.view.frames !== "none" &&
      (plan.jointVideoTraining === "all" || (plan.jointVideoTraining === "sound-less" && !task.view.sound));
    const jointCycle = plan.jointCycle.map((batch) => {
      const task = jointTasks[batch];
      return { ...task, trains: [...(task.view.sound ? audioVariables : []), ...(trainsVideo(task) ? videoVariables : [])] };
    });
    const jointLosses = await train(
      "stage C (audio-visual)",
      steps.joint,
      jointCycle,
      [...videoVariables, ...audioVariables],
      33,
    );
    const stageC = (Date.now() - t0) / 1000 - stageA - stageB;
    disposeClipSet(clips);
    disposeClipSet(audioVisual);
    disposeClipSet(events);
    const trainSeconds = (Date.now() - started) / 1000;
    const cpu = process.cpuUsage(cpuAtStart);
    const trainCpuSeconds = (cpu.user + cpu.system) / 1e6;
    log(`videollama: trained in ${trainSeconds.toFixed(0)} s; evaluating`);

    const videoOnly = new VideoLlamaForConditionalGeneration(model.config, {
      vision: model.visionModel,
      audio: model.audioEncoder,
      language: model.languageModel,
    });
    let full: VideoLlamaEvaluation;
    let quick: VideoLlamaEvaluation;
    try {
      const finalState = new VideoLlamaBridges(model, { audio: false }).stateDict();
      new VideoLlamaBridges(videoOnly, { audio: false }).loadParameters(
        (name) => (videoOnlyState[name] ?? finalState[name])?.clone(),
        "stage A's video bridge",
      );
      full = await evaluateVideoLlama({ model, videoOnly, tokenizer }, args.world, { seed, log, ...evaluation });
      quick = await evaluateVideoLlama({ model, videoOnly, tokenizer }, args.world, {
        seed,
        ...VIDEOLLAMA_QUICK_EVAL,
        ...evaluation,
      });
    } finally {
      disposeBridges(videoOnly);
    }
    const losses = [...videoLosses, ...audioLosses, ...jointLosses];
    const every = 25;
    const curveOf = (values: readonly number[]) =>
      Array.from({ length: Math.floor(values.length / every) }, (_, k) => {
        const part = values.slice(k * every, (k + 1) * every);
        return part.reduce((sum, l) => sum + l, 0) / part.length;
      });
    const curve = curveOf(losses);
    const card: CheckpointCard & Record<string, unknown> = {
      name: "videollama",
      title: "mllm-labs VideoLLaMA bridges: video and audio Q-Formers between the frozen tiny CLIP, audio encoder and Llama",
      description:
        `A video Q-Former (2 layers, width 128, ${model.config.numVideoQueryTokens} queries, learned frame positions, cross-attention over 12 frames × ${model.keysPerFrame} keys: each frame's ${model.tokensPerFrame} tokens of the frozen vision backbone merged into one key, and its difference from the previous frame) with a track head (two object slots: each frame's position and visibility, the first direction, colour, shape, speed, and whether it bounces, appears or disappears) whose predictions become two code tokens after the ${model.config.numVideoQueryTokens} projected queries${plan.codeWords ? " (each adding the LLM's own embeddings of its predicted direction, colour and shape words)" : ""}${plan.codeTimeline ? " (holding each slot's visibility and position in every frame)" : ""}, and an audio Q-Former (1 layer, ${model.config.numAudioQueryTokens} queries, segment positions over five 0.2 s segments, one pooled audio-encoder vector each), each projected into the frozen language backbone as a soft prompt [video; audio; text]. ` +
        (model.videoObjectTracker
          ? `An object tracker fills the two code tokens in place of the track head's reading of the queries: on every cell of each frame's ${model.config.vision.imageSize / model.config.vision.patchSize}×${model.config.vision.imageSize / model.config.vision.patchSize} patch grid of the frozen tower, a detector (its ${model.videoObjectTracker.config.window}×${model.videoObjectTracker.config.window} neighbourhood, ${model.videoObjectTracker.config.hiddenSize} hidden units) finds each of the ${model.videoObjectTracker.identities} colour–shape identities, and a reader of each identity's trajectory names its direction, speed, bounces, appearing and disappearing; each code token is one identity: those whose colour and shape words the question names first (the question reaches the bridge, as InstructBLIP's instruction reaches its Q-Former), then those the tracker finds likeliest in the clip, with that identity's colour and shape, and words as loud as the identity is seen. Stage O trains the tracker on the generated clips' exact tracks by identity (${steps.objects} steps of ${plan.objectBatchSize} clips). `
          : "") +
        `Stage T teaches the video Q-Former and the track head the generated clips' exact tracks with a two-slot set loss (${steps.tracks} steps). Stage A trains the video projection and the code tokens' map on the clips' questions, the order questions derived from their tracks and their captions, with ${plan.directionWeight} batches of direction questions${plan.orderWeight ? ` and ${plan.orderWeight} of order questions` : ""} for every ${plan.mixtureWeight} batches of the mixture (${steps.video} steps; the Q-Former and the head frozen from here on); its bridge is kept as video_only.safetensors. Stage B trains the audio branch alone to name what makes the sound (${steps.audio} steps). Stage C trains the audio bridge on the audio-visual questions and the sound events, in a cycle of ${plan.jointCycle.join(", ")} batches; ${JOINT_VIDEO_TRAINING[plan.jointVideoTraining]} (${steps.joint} steps). ` +
        "Video questions are measured from the frames alone; the baselines are the same model shown the middle frame twelve times or the frames shuffled, stage A's bridge without sound, the final model without sound or without frames, the blind LLM and chance; a question that offers two candidates is answered by the likelier one. This file holds only the bridges; the backbones load from the folders named in config.json.",
      model_type: "mllm_video_llama",
      parameters: new VideoLlamaBridges(model).parameterCount(),
      steps: steps.objects + steps.tracks + steps.video + steps.audio + steps.joint,
      batch_size: batchSize,
      train_seconds: Math.round(trainSeconds),
      // CPU time of this process over the same span: on a shared machine the wall time overstates an idle machine's.
      train_cpu_seconds: Math.round(trainCpuSeconds),
      ...machineRecord(),
      seed,
      data: `data/world/videos train split (160 clips) + ${plan.freshClips} clips drawn fresh (seed ${seed + 17}; their exact tracks teach stage T); ${plan.audioVisualClips} two-object clips with one object's sound (seed ${seed + 18}); the audio train split's sound events + ${plan.freshSoundEvents} fresh (seed ${seed + 21}); frame and segment features computed once by the frozen backbones`,
      loss_curve: curve,
      loss_every: every,
      // Stage T's set loss, every 25 steps (loss_curve has stages A, B and C).
      track_loss_curve: curveOf(trackLosses),
      ...(model.videoObjectTracker ? { object_loss_curve: curveOf(objectLosses) } : {}), // stage O's total loss, every 25 steps
      metrics: full.metrics,
      metric_notes: VIDEOLLAMA_METRIC_NOTES,
      command: "npm run pretrain -- videollama",
      baselines: full.baselines,
      metric_counts: full.counts,
      quick_eval: { args: { ...VIDEOLLAMA_QUICK_EVAL, ...evaluation }, metrics: quick.metrics, baselines: quick.baselines },
      stage_seconds: {
        features: Math.round(featureSeconds),
        objects: Math.round(stageO),
        tracks: Math.round(stageT),
        video: Math.round(stageA),
        audio: Math.round(stageB),
        joint: Math.round(stageC),
      },
      stage_steps: steps,
    };
    if (!args.dryRun) {
      const config = {
        ...videoLlamaConfigToHF(model.config),
        mllm_labs: {
          vision_checkpoint: VIDEOLLAMA_BACKBONES.vision,
          audio_checkpoint: VIDEOLLAMA_BACKBONES.audio,
          language_checkpoint: VIDEOLLAMA_BACKBONES.language,
          video_only: "video_only.safetensors",
          note: "model.safetensors holds only the trained bridges (video_bridge.*, video_track_head.*, video_object_tracker.* when the model has one, audio_bridge.*); video_only.safetensors holds what stage A trained (the video projection and the code tokens' map; the rest of the video bridge is model.safetensors'), the video-only baseline; the frozen backbones load from the folders above.",
        },
      };
      await writeCheckpoint(args.out, new VideoLlamaBridges(model), config, card, tokenizerDir);
      await saveCheckpoint(args.out, videoOnlyState, { base: "video_only" });
      fs.appendFileSync(path.join(args.out, "README.md"), baselinesSection(full).join("\n"));
    }
    tf.dispose(Object.values(videoOnlyState));
    return { model, card };
  } catch (error) {
    model.dispose();
    throw error;
  }
}
