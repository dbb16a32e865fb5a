/**
 * VideoLLaMA: a frozen image encoder per frame → learned frame position
 * embeddings → a video Q-Former (cross-attention in every layer) → a linear
 * projection into a frozen LLM; and an audio branch: a frozen audio encoder
 * per segment of the soundtrack → segment position embeddings → an audio
 * Q-Former → a projection. Each branch's projected queries are a soft prompt;
 * with both, the video's come first, then the audio's, then the text
 * (Video-LLaMA concatenates them the same way for audio-visual input).
 *
 * Paper: Zhang, Li & Bing, "Video-LLaMA: An Instruction-tuned Audio-Visual
 * Language Model for Video Understanding" (EMNLP 2023 demo), §2.
 * Reference: DAMO-NLP-SG/Video-LLaMA `video_llama/models/video_llama.py`
 * (`VideoLLAMA.encode_videoQformer_visual`: `frame_position_embeddings`
 * added to every query token of a frame, `einops.rearrange(..., 'b t q h -> b (t q) h')`,
 * `video_Qformer.bert(query_embeds=video_query_tokens, encoder_hidden_states=...)`,
 * `llama_proj`; `encode_audioQformer`: `audio_position_embedding`,
 * `audio_Qformer`, `audio_llama_proj`; `init_video_Qformer`: 2 layers,
 * `cross_attention_freq = 1`).
 *
 * Per-frame features: Video-LLaMA runs BLIP-2's image Q-Former on each frame
 * (32 queries of a 768-wide Q-Former over 257 EVA-CLIP tokens) and the video
 * Q-Former reads those. Here the video Q-Former reads the frozen CLIP tower's
 * tokens directly (class token + patch grid after the post-LayerNorm, the
 * features lab 01's Q-Former reads), average-pooled over `framePatchPool`²
 * patches. Why, at these sizes: (1) the answers need *where* an object is in
 * each frame (direction, bounces, order); lab 01's image Q-Former was trained
 * to caption and answer color/shape/count questions, so its 8 queries keep what
 * captions need and may drop exact positions, while patch tokens carry the
 * position by construction; (2) BLIP-2 compressed 257 tokens to 32 to keep the
 * video Q-Former's keys few (8 frames × 257 = 2056); the tiny tower has 65
 * tokens per frame, and 2×2 pooling leaves 17, so 12 frames give 204 keys, as
 * many as 25 frames of 8 queries would; (3) one frozen stage less to load and
 * cache. The measurement behind (1) is in docs/lab03-plan.md.
 *
 * Beyond Video-LLaMA, two optional parts (docs/lab03-plan.md measures why):
 * a track head on the video queries whose predictions become code tokens
 * after them (`trackHead`), and an object tracker on the tower's whole patch
 * grid whose tracks fill those code tokens instead (`objectTracker`), the
 * identities the question names first (`instructionIds`, as InstructBLIP
 * hands its Q-Former the instruction: Dai et al., "InstructBLIP", 2023,
 * instruction-aware visual feature extraction).
 *
 * Not a Hugging Face architecture: model_type `mllm_video_llama`, parameters
 * named in HF style (`vision_model.*`, `video_bridge.*`, `audio_encoder.*`,
 * `audio_bridge.*`, `language_model.*`; see qformer_bridge.ts for the bridge's
 * names and their Video-LLaMA counterparts).
 */
import * as tf from "@tensorflow/tfjs";
import { Module } from "../nn/module";
import { Random } from "../util/random";
import { tidy } from "../util/tidy";
import { CLIPVisionTransformer, resolveCLIPVisionConfig, type CLIPVisionConfig, type ResolvedCLIPVisionConfig } from "./clip";
import {
  AudioEncoder,
  resolveAudioEncoderConfig,
  type AudioEncoderConfig,
  type ResolvedAudioEncoderConfig,
} from "./audio_encoder";
import { LlamaForCausalLM, resolveLlamaConfig, type GenerateOptions, type LlamaConfig, type ResolvedLlamaConfig } from "./llama";
import { resolveBlip2QFormerConfig, type Blip2QFormerConfig, type ResolvedBlip2QFormerConfig } from "./blip2";
import { assembleSoftPrompt, shiftedLanguageModelLoss } from "./blip2_losses";
import { QFormerBridge, meanOverSteps, stepKeyMask, type QFormerBridgeOutput } from "./qformer_bridge";
import {
  VideoTrackHead,
  resolveVideoTrackHeadConfig,
  type ResolvedVideoTrackHeadConfig,
  type TrackPredictions,
  type VideoTrackHeadConfig,
} from "./video_track_head";
import {
  VideoObjectTracker,
  resolveVideoObjectTrackerConfig,
  type ResolvedVideoObjectTrackerConfig,
  type VideoObjectTrackerConfig,
} from "./video_object_tracker";

/**
 * How the video branch uses time.
 * - `"positions"`: frame position embeddings + the video Q-Former (Video-LLaMA).
 * - `"attention-pool"`: the same Q-Former without positions: its cross-attention is a weighted sum over every frame's tokens, blind to their order.
 * - `"mean-pool"`: the frames averaged token by token, then the Q-Former over that one averaged frame.
 */
export type TemporalModel = "positions" | "attention-pool" | "mean-pool";
export const TEMPORAL_MODELS: readonly TemporalModel[] = ["positions", "attention-pool", "mean-pool"];

/** What of each audio segment the audio Q-Former reads: its encoder's mean-pooled vector, or all its tokens. */
export type AudioSegmentTokens = "pooled" | "all";

/** VideoLLaMA. Defaults are filled by {@link resolveVideoLlamaConfig}. */
export interface VideoLlamaConfig {
  /** The frozen image encoder (CLIP's vision tower). */
  readonly vision: CLIPVisionConfig;
  /** The frozen audio encoder (the labs' `AudioEncoder`; ImageBind's audio tower in Video-LLaMA). */
  readonly audio: AudioEncoderConfig;
  /** The frozen language model. */
  readonly text: LlamaConfig;
  /** The video Q-Former. Defaults: 2 layers and cross-attention in every layer (Video-LLaMA's `init_video_Qformer`), reading the vision width; the rest BLIP-2's. */
  readonly videoQformer: Blip2QFormerConfig;
  /** The audio Q-Former. Defaults as the video Q-Former's, reading the audio width. */
  readonly audioQformer: Blip2QFormerConfig;
  /** Video queries Nv. Default 32 (Video-LLaMA's `num_video_query_token`). */
  readonly numVideoQueryTokens?: number;
  /** Audio queries Na. Default 8 (Video-LLaMA's `num_audio_query_token`). */
  readonly numAudioQueryTokens?: number;
  /** Rows of the frame position table: the most frames a clip may have. Default 32 (Video-LLaMA's `max_frame_pos`). */
  readonly maxFrames?: number;
  /** Rows of the segment position table: the most audio segments. Default 8 (Video-LLaMA's audio positions). */
  readonly maxAudioSegments?: number;
  /** Average-pool the patch grid of each frame by this factor (1 = every patch). Default 1. Must divide the grid side. */
  readonly framePatchPool?: number;
  /** See {@link TemporalModel}. Default `"positions"`. */
  readonly temporalModel?: TemporalModel;
  /**
   * Learned embeddings of each token slot of a frame (class token, patch k of the pooled grid), added to the keys of the
   * video Q-Former as the frame positions are. Default false (Video-LLaMA has none: its per-frame image Q-Former's 32
   * outputs and EVA-CLIP's deep features carry where things are; the tiny tower's 3 layers keep little of it, and
   * cross-attention cannot tell which slot a key came from).
   */
  readonly frameTokenPositions?: boolean;
  /**
   * One key per frame instead of one per token: the frame's K tokens concatenated (K·Dv wide), as nanoVLM's pixel
   * shuffle folds neighbouring patches into the channels, so the key keeps which slot each feature came from and the
   * Q-Former's key projection reads the frame as a linear probe would. Default false (a key per token, Video-LLaMA's layout).
   */
  readonly mergeFrameTokens?: boolean;
  /**
   * A second key for every frame key: its features minus the previous frame's (zero for the first frame), as TSN's
   * "RGB difference" stream, here on features. An average over frames of differences is the net change, so even
   * uniform attention reads which way things moved; a plain average over frames is blind to their order. Default false.
   * Not with `temporalModel` `"mean-pool"`.
   */
  readonly frameDifferences?: boolean;
  /** See {@link AudioSegmentTokens}. Default `"pooled"` (one embedding per segment, as ImageBind gives Video-LLaMA). */
  readonly audioSegmentTokens?: AudioSegmentTokens;
  /**
   * A track head on the video Q-Former's queries (video_track_head.ts): trained from the clips' exact tracks, and
   * with `codeTokens` one soft token per object slot after the projected video queries. Default none (Video-LLaMA has
   * none; docs/lab03-plan.md measures what it adds).
   */
  readonly trackHead?: VideoTrackHeadConfig;
  /**
   * An object tracker by identity on the frozen tower's full patch grid (video_object_tracker.ts), whose tracks fill
   * the track head's code tokens in place of the head's reading of the queries: each code token is one of the S
   * identities the tracker finds likeliest in the clip, its colour and shape that identity's, its timeline and motion
   * the tracker's. Needs `trackHead` with `codeTokens`; the head's other attributes must be the tracker's motion
   * attributes in order (besides "color" and "shape"). Default none (docs/lab03-plan.md, "Eleventh round", measures it).
   */
  readonly objectTracker?: VideoObjectTrackerConfig;
  /** Initialisation seed. Default 0. */
  readonly seed?: number;
}

export interface ResolvedVideoLlamaConfig {
  readonly vision: ResolvedCLIPVisionConfig;
  readonly audio: ResolvedAudioEncoderConfig;
  readonly text: ResolvedLlamaConfig;
  readonly videoQformer: ResolvedBlip2QFormerConfig;
  readonly audioQformer: ResolvedBlip2QFormerConfig;
  readonly numVideoQueryTokens: number;
  readonly numAudioQueryTokens: number;
  readonly maxFrames: number;
  readonly maxAudioSegments: number;
  readonly framePatchPool: number;
  readonly temporalModel: TemporalModel;
  readonly frameTokenPositions: boolean;
  readonly mergeFrameTokens: boolean;
  readonly frameDifferences: boolean;
  readonly audioSegmentTokens: AudioSegmentTokens;
  readonly trackHead: ResolvedVideoTrackHeadConfig | undefined;
  readonly objectTracker: ResolvedVideoObjectTrackerConfig | undefined;
  readonly seed: number;
}

/** Fills every default of a {@link VideoLlamaConfig} once and checks it (idempotent). */
export function resolveVideoLlamaConfig(config: VideoLlamaConfig): ResolvedVideoLlamaConfig {
  const vision = resolveCLIPVisionConfig(config.vision);
  const audio = resolveAudioEncoderConfig(config.audio);
  const qformer = (q: Blip2QFormerConfig, width: number) =>
    resolveBlip2QFormerConfig({
      ...q,
      numLayers: q.numLayers ?? 2,
      crossAttentionFrequency: q.crossAttentionFrequency ?? 1,
      encoderHiddenSize: q.encoderHiddenSize ?? width,
    });
  const framePatchPool = config.framePatchPool ?? 1;
  const grid = vision.imageSize / vision.patchSize;
  const tokensPerFrame = 1 + (grid / framePatchPool) ** 2;
  const mergeFrameTokens = config.mergeFrameTokens ?? false;
  const resolved: ResolvedVideoLlamaConfig = {
    vision,
    audio,
    text: resolveLlamaConfig(config.text),
    videoQformer: qformer(config.videoQformer, mergeFrameTokens ? tokensPerFrame * vision.hiddenSize : vision.hiddenSize), // the key width
    audioQformer: qformer(config.audioQformer, audio.hiddenSize),
    numVideoQueryTokens: config.numVideoQueryTokens ?? 32,
    numAudioQueryTokens: config.numAudioQueryTokens ?? 8,
    maxFrames: config.maxFrames ?? 32,
    maxAudioSegments: config.maxAudioSegments ?? 8,
    framePatchPool,
    temporalModel: config.temporalModel ?? "positions",
    frameTokenPositions: config.frameTokenPositions ?? false,
    mergeFrameTokens,
    frameDifferences: config.frameDifferences ?? false,
    audioSegmentTokens: config.audioSegmentTokens ?? "pooled",
    trackHead: config.trackHead ? resolveVideoTrackHeadConfig(config.trackHead) : undefined,
    objectTracker: config.objectTracker ? resolveVideoObjectTrackerConfig(config.objectTracker) : undefined,
    seed: config.seed ?? 0,
  };
  for (const key of ["numVideoQueryTokens", "numAudioQueryTokens", "maxFrames", "maxAudioSegments", "framePatchPool"] as const) {
    if (!Number.isInteger(resolved[key]) || resolved[key] <= 0)
      throw new Error(`VideoLLaMA: config.${key} must be a positive integer, got ${JSON.stringify(resolved[key])}`);
  }
  if (grid % resolved.framePatchPool !== 0)
    throw new Error(`VideoLLaMA: config.framePatchPool (${resolved.framePatchPool}) must divide the ${grid}×${grid} patch grid`);
  if (!TEMPORAL_MODELS.includes(resolved.temporalModel))
    throw new Error(
      `VideoLLaMA: config.temporalModel must be one of ${TEMPORAL_MODELS.join(", ")}, got ${JSON.stringify(resolved.temporalModel)}`,
    );
  for (const key of ["frameTokenPositions", "mergeFrameTokens", "frameDifferences"] as const)
    if (typeof resolved[key] !== "boolean")
      throw new Error(`VideoLLaMA: config.${key} must be true or false, got ${JSON.stringify(resolved[key])}`);
  const keyWidth = mergeFrameTokens ? tokensPerFrame * vision.hiddenSize : vision.hiddenSize;
  if (resolved.videoQformer.encoderHiddenSize !== keyWidth)
    throw new Error(
      `VideoLLaMA: config.videoQformer.encoderHiddenSize must be the video keys' width ${keyWidth} (${mergeFrameTokens ? `${tokensPerFrame} tokens × ${vision.hiddenSize}, merged` : "the vision width"}), got ${resolved.videoQformer.encoderHiddenSize}`,
    );
  if (resolved.frameDifferences && resolved.temporalModel === "mean-pool")
    throw new Error(
      'VideoLLaMA: config.frameDifferences needs the frames in order; temporalModel "mean-pool" averages them first',
    );
  if (resolved.audioSegmentTokens !== "pooled" && resolved.audioSegmentTokens !== "all")
    throw new Error(
      `VideoLLaMA: config.audioSegmentTokens must be "pooled" or "all", got ${JSON.stringify(resolved.audioSegmentTokens)}`,
    );
  if (resolved.objectTracker) checkTrackerFillsHead(resolved.objectTracker, resolved.trackHead);
  return resolved;
}

/** The logit of an identity's own colour and shape in the code tokens made from the object tracker (the others: minus it). */
const IDENTITY_LOGIT = 20;

/** The head's attributes that the tracker's identity gives (the rest are its motion attributes, in order). */
const IDENTITY_ATTRIBUTES = ["color", "shape"] as const;

/** Refuses an object tracker whose outputs cannot fill the track head's code tokens. */
function checkTrackerFillsHead(tracker: ResolvedVideoObjectTrackerConfig, head: ResolvedVideoTrackHeadConfig | undefined): void {
  if (!head?.codeTokens)
    throw new Error("VideoLLaMA: config.objectTracker fills the track head's code tokens; give config.trackHead with codeTokens");
  if (head.frames !== tracker.frames)
    throw new Error(
      `VideoLLaMA: config.objectTracker.frames (${tracker.frames}) must equal config.trackHead.frames (${head.frames})`,
    );
  const classesOf = (name: string) => head.attributes.find((a) => a.name === name)?.classes;
  if (classesOf("color") !== tracker.colors || classesOf("shape") !== tracker.shapes)
    throw new Error(
      `VideoLLaMA: config.trackHead needs a "color" attribute of ${tracker.colors} classes and a "shape" attribute of ${tracker.shapes} (the tracker's identities), got ${JSON.stringify(head.attributes.map((a) => [a.name, a.classes]))}`,
    );
  const motion = head.attributes
    .filter((a) => !(IDENTITY_ATTRIBUTES as readonly string[]).includes(a.name))
    .map((a) => a.classes);
  if (motion.join() !== tracker.motionClasses.join())
    throw new Error(
      `VideoLLaMA: config.trackHead's attributes besides color and shape have ${JSON.stringify(motion)} classes; the tracker's motion attributes have ${JSON.stringify(tracker.motionClasses)}`,
    );
}

/**
 * The bridges' sizes for the labs' backbones (vision, audio and language all
 * 128 wide): what `npm run pretrain -- videollama` trains. ≈ 0.63M bridge
 * parameters (video Q-Former 2 layers, audio 1; see test/video_llama.test.ts).
 */
const VIDEO_LLAMA_NANO = {
  videoQformer: { hiddenSize: 128, intermediateSize: 256, numLayers: 2, numHeads: 4 },
  audioQformer: { hiddenSize: 128, intermediateSize: 256, numLayers: 1, numHeads: 4 },
  numVideoQueryTokens: 8,
  numAudioQueryTokens: 4,
  maxFrames: 16,
  maxAudioSegments: 8,
  framePatchPool: 2,
} as const;

export const VIDEO_LLAMA_PRESETS = {
  "video-llama-nano": VIDEO_LLAMA_NANO,
  /**
   * What `npm run pretrain -- videollama` trains: the nano bridges with one merged key per frame and its difference
   * from the previous frame, and a track head whose two code tokens follow the video queries (docs/lab03-plan.md,
   * "Fourth round": the head reads direction in 0.92 of held-out one-object clips, and the frozen LLM answers from it).
   */
  "video-llama-nano-tracks": {
    ...VIDEO_LLAMA_NANO,
    mergeFrameTokens: true,
    frameDifferences: true,
    trackHead: { slots: 2, frames: 12, codeTokens: true },
  },
} as const satisfies Record<string, Omit<VideoLlamaConfig, "vision" | "audio" | "text">>;

/** Frozen backbones to build a model around (their own configs replace `vision`, `audio`, `text`). */
export interface VideoLlamaBackbones {
  readonly vision?: CLIPVisionTransformer;
  readonly audio?: AudioEncoder;
  readonly language?: LlamaForCausalLM;
}

/** The inputs of {@link VideoLlamaForConditionalGeneration.forward}: a clip's frames, its sound, or both, and text. */
export interface VideoLlamaInputs {
  /** [B, F, 3, S, S] CLIP-normalised frames (or give `frameFeatures`). */
  readonly pixelValues?: tf.Tensor;
  /** [B, F, K, Dv] from {@link VideoLlamaForConditionalGeneration.frameFeatures} (cached features). */
  readonly frameFeatures?: tf.Tensor;
  /**
   * [B, F, I, 3] the object tracker's detections of each frame (`frameDetections`), frames in the same order as
   * `frameFeatures`; needed with `frameFeatures` when the model has an object tracker (from `pixelValues` it makes them).
   */
  readonly frameDetections?: tf.Tensor;
  /**
   * [B, Ti] int32 the instruction (the question) in the language model's tokens, −1 where padded: with an object
   * tracker, the identities whose colour and shape words it names take the first code tokens' slots, as InstructBLIP
   * hands its Q-Former the instruction (`qformer_input_ids`) so that what reaches the LLM is what the question asks
   * about. Default none: the likeliest identities.
   */
  readonly instructionIds?: tf.Tensor;
  /** Real frames per row (the rest is padding the Q-Former never sees). Default all F. */
  readonly frameCounts?: readonly number[];
  /** [B, S, M, Fs] log-mel of each audio segment (`segmentLogMel`), or give `segmentFeatures`. */
  readonly audioLogMel?: tf.Tensor;
  /** [B, S, Ka, Da] from {@link VideoLlamaForConditionalGeneration.segmentFeatures}. */
  readonly segmentFeatures?: tf.Tensor;
  /** Real segments per row. Default all S. */
  readonly segmentCounts?: readonly number[];
  /** [B, T] int32 text after the soft prompt. */
  readonly inputIds: tf.Tensor;
  /** [B, T] 1 for real text, 0 for padding. Default all ones. */
  readonly attentionMask?: tf.Tensor;
  /** [B, T] int32 targets, −100 where not to learn (prompt, padding). With them, `loss` is returned. */
  readonly labels?: tf.Tensor;
}

/** What {@link VideoLlamaForConditionalGeneration.forward} returns. */
export interface VideoLlamaOutput {
  /** [B, Nv′ + Na + T, V] (Nv′ = `videoPromptTokens`; Nv′ or Na is 0 when that branch has no input). */
  logits: tf.Tensor;
  /** [B, Nv′ + Na + T] int32: the language model's attention mask (soft prompt always seen). */
  attentionMask: tf.Tensor;
  /** The next-token loss on the labelled text (when labels are given). */
  loss?: tf.Scalar;
  /** [B, Nv′, Dtext] when the clip's frames were given. */
  videoPrompt?: tf.Tensor;
  /** [B, Na, Dtext] when its sound was given. */
  audioPrompt?: tf.Tensor;
}

export class VideoLlamaForConditionalGeneration extends Module {
  readonly visionModel: CLIPVisionTransformer;
  readonly videoBridge: QFormerBridge;
  readonly audioEncoder: AudioEncoder;
  readonly audioBridge: QFormerBridge;
  /** The track head on the video queries (`config.trackHead`), or undefined. */
  readonly videoTrackHead: VideoTrackHead | undefined;
  /** The object tracker whose tracks fill the code tokens (`config.objectTracker`), or undefined. */
  readonly videoObjectTracker: VideoObjectTracker | undefined;
  readonly languageModel: LlamaForCausalLM;
  readonly config: ResolvedVideoLlamaConfig;

  /** Builds the model; given backbones are used as they are (and frozen), the others are initialised from the config. */
  constructor(options: VideoLlamaConfig, backbones: VideoLlamaBackbones = {}) {
    super();
    const config = (this.config = resolveVideoLlamaConfig({
      ...options,
      vision: backbones.vision?.config ?? options.vision,
      audio: backbones.audio?.config ?? options.audio,
      text: backbones.language?.config ?? options.text,
    }));
    const random = new Random(config.seed);
    const seeds = Array.from({ length: 5 }, () => random.nextSeed());
    const Dtext = config.text.hiddenSize;
    this.visionModel = this.module(
      "vision_model",
      backbones.vision ?? new CLIPVisionTransformer({ ...config.vision, seed: seeds[0] }),
    );
    this.videoBridge = this.module(
      "video_bridge",
      new QFormerBridge({
        qformer: config.videoQformer,
        numQueryTokens: config.numVideoQueryTokens,
        maxPositions: config.temporalModel === "positions" ? config.maxFrames : 0,
        maxTokenPositions: config.frameTokenPositions ? this.keysPerFrame : 0,
        outputSize: Dtext,
        seed: seeds[1],
      }),
    );
    this.audioEncoder = this.module("audio_encoder", backbones.audio ?? new AudioEncoder({ ...config.audio, seed: seeds[2] }));
    this.audioBridge = this.module(
      "audio_bridge",
      new QFormerBridge({
        qformer: config.audioQformer,
        numQueryTokens: config.numAudioQueryTokens,
        maxPositions: config.maxAudioSegments,
        outputSize: Dtext,
        seed: seeds[3],
      }),
    );
    this.languageModel = this.module(
      "language_model",
      backbones.language ?? new LlamaForCausalLM({ ...config.text, seed: seeds[4] }),
    );
    const trackHeadSeed = random.nextSeed(); // drawn after the others: models without a head initialise as before
    for (const attribute of config.trackHead?.attributes ?? [])
      for (const id of attribute.tokenIds ?? [])
        if (id >= config.text.vocabSize)
          throw new Error(
            `VideoLLaMA: config.trackHead's "${attribute.name}" token id ${id} is outside the language model's vocabulary (${config.text.vocabSize})`,
          );
    this.videoTrackHead = config.trackHead
      ? this.module(
          "video_track_head",
          new VideoTrackHead(config.trackHead, {
            queries: config.numVideoQueryTokens,
            queryWidth: config.videoQformer.hiddenSize,
            outputSize: Dtext,
            seed: trackHeadSeed,
          }),
        )
      : undefined;
    const trackerSeed = random.nextSeed(); // drawn last, as the head's: models without a tracker initialise as before
    this.videoObjectTracker = config.objectTracker
      ? this.module(
          "video_object_tracker",
          new VideoObjectTracker(config.objectTracker, { visionWidth: config.vision.hiddenSize, seed: trackerSeed }),
        )
      : undefined;
    for (const frozen of [this.visionModel, this.audioEncoder, this.languageModel]) frozen.setTrainable(false);
  }

  /** Soft tokens the video branch gives the LLM: Nv queries, plus one code token per slot with the track head's codes. */
  get videoPromptTokens(): number {
    const head = this.config.trackHead;
    return this.config.numVideoQueryTokens + (head?.codeTokens ? head.slots : 0);
  }

  /**
   * The video branch's part of the soft prompt from its bridge output: the projected queries, then the code tokens
   * when the track head makes them. bridge: queryOutput [B, Nv, Dq], languageInputs [B, Nv, Dtext] → [B, Nv′, Dtext]
   * (Nv′ = {@link videoPromptTokens})
   */
  videoSoftPrompt(bridge: QFormerBridgeOutput, detections?: tf.Tensor, instructionIds?: tf.Tensor): tf.Tensor {
    const head = this.videoTrackHead;
    if (!head?.config.codeTokens) return bridge.languageInputs;
    if (this.videoObjectTracker && !detections)
      throw new Error(
        "VideoLLaMA: this model's code tokens come from its object tracker; give frameDetections with frameFeatures",
      );
    return tf.tidy(() => {
      const words = head.config.attributes.map((a) =>
        a.tokenIds ? this.languageModel.model.embedTokens.apply(tf.tensor1d(a.tokenIds as number[], "int32")) : undefined,
      ); // per speaking attribute [classes, Dtext]: the frozen LLM's own word embeddings
      if (!this.videoObjectTracker)
        return tf.concat([bridge.languageInputs, head.codeTokens(head.predict(bridge.queryOutput), words)], 1); // [B, Nv + S, Dtext]
      const predictions = this.trackerSlotPredictions(detections!, instructionIds);
      // A slot speaks its words as much as its identity is seen at all: a clip of one object leaves the second slot to
      // an identity that is not there, whose words would name a colour, shape and direction the clip does not hold.
      const seen = tf.sigmoid(predictions.visibility).max(2); // [B, S]
      return tf.concat([bridge.languageInputs, head.codeTokens(predictions, words, seen)], 1); // [B, Nv + S, Dtext]
    });
  }

  /**
   * The object tracker's reading of a clip in the track head's form, one slot per identity: those the instruction
   * names (its colour word and its shape word both among `instructionIds`) first, then the likeliest (by their mean
   * probability of being seen); its visibility and position in every frame, its motion attributes' logits, and its
   * colour and shape (the identity's, as logits of ±{@link IDENTITY_LOGIT}). detections: [B, F, I, 3]
   * (`frameDetections`, frames in the order shown); instructionIds: [B, Ti] or none → positions [B, S, F, 2],
   * visibility [B, S, F], attributes [B, S, classes] in the head's order.
   */
  trackerSlotPredictions(detections: tf.Tensor, instructionIds?: tf.Tensor): TrackPredictions {
    const tracker = this.videoObjectTracker;
    const head = this.videoTrackHead;
    if (!tracker || !head) throw new Error("VideoLLaMA: trackerSlotPredictions needs config.objectTracker and config.trackHead");
    const S = head.config.slots;
    const { colors, shapes } = tracker.config;
    return tidy<TrackPredictions>(() => {
      const tracks = tracker.readDetections(detections); // visibility [B, I, F], position [B, I, F, 2], motion [B, I, classes]
      const named = instructionIds ? this.namedIdentities(instructionIds, detections.shape[0]) : undefined; // [B, I]
      const chosen = tracker.likeliestIdentities(tracks.visibility, S, named); // [B, S]
      const pick = (x: tf.Tensor) => tf.gather(x, chosen, 1, 1); // [B, I, …] → [B, S, …]: each clip's own identities
      const identityLogits = (classes: number, of: (identity: tf.Tensor) => tf.Tensor) =>
        tf
          .oneHot(of(chosen).toInt(), classes)
          .toFloat()
          .mul(2 * IDENTITY_LOGIT)
          .sub(IDENTITY_LOGIT); // [B, S, classes]
      let motion = 0;
      const attributes = head.config.attributes.map((a) =>
        a.name === "color"
          ? identityLogits(colors, (i) => i.floorDiv(shapes)) // identity i is colour ⌊i / shapes⌋
          : a.name === "shape"
            ? identityLogits(shapes, (i) => i.mod(shapes))
            : pick(tracks.motion[motion++]),
      );
      return { visibility: pick(tracks.visibility), position: pick(tracks.position), attributes };
    });
  }

  /**
   * Which identities an instruction names: 1 where both the identity's colour word and its shape word (the track
   * head's `tokenIds` of its "color" and "shape" attributes) are among the instruction's tokens.
   * instructionIds: [B, Ti] int32 (−1 padding) → [B, I]
   */
  namedIdentities(instructionIds: tf.Tensor, batch: number): tf.Tensor2D {
    const tracker = this.videoObjectTracker;
    const attributes = this.videoTrackHead?.config.attributes ?? [];
    const colorIds = attributes.find((a) => a.name === "color")?.tokenIds;
    const shapeIds = attributes.find((a) => a.name === "shape")?.tokenIds;
    if (!tracker || !colorIds || !shapeIds)
      throw new Error(
        "VideoLLaMA: instructionIds choose the tracker's identities by their colour and shape words; the model needs config.objectTracker and the track head's color and shape tokenIds",
      );
    if (instructionIds.rank !== 2 || instructionIds.dtype !== "int32" || instructionIds.shape[0] !== batch)
      throw new Error(
        `VideoLLaMA: instructionIds must be int32 [${batch}, Ti] (one row per clip), got ${instructionIds.dtype} [${instructionIds.shape}]`,
      );
    const { colors, shapes } = tracker.config;
    return tf.tidy(() => {
      // identity i is colour ⌊i / shapes⌋ and shape i mod shapes
      const identityColor = Array.from({ length: colors * shapes }, (_, i) => colorIds[Math.floor(i / shapes)]);
      const identityShape = Array.from({ length: colors * shapes }, (_, i) => shapeIds[i % shapes]);
      const mentions = (words: number[]) =>
        instructionIds
          .expandDims(2)
          .equal(tf.tensor1d(words, "int32").reshape([1, 1, -1]))
          .any(1); // [B, I]: the word appears somewhere in the instruction
      return mentions(identityColor).logicalAnd(mentions(identityShape)).toFloat() as tf.Tensor2D;
    });
  }

  /**
   * The object tracker's detections of every frame (see `VideoObjectTracker.frameDetections`).
   * tokens: [B, F, 1 + G², Dv] ({@link frameTokens}) → [B, F, I, 3]
   */
  frameDetections(tokens: tf.Tensor): tf.Tensor4D {
    if (!this.videoObjectTracker) throw new Error("VideoLLaMA: frameDetections needs config.objectTracker");
    const { imageSize, patchSize, hiddenSize: Dv } = this.config.vision;
    const whole = 1 + (imageSize / patchSize) ** 2;
    if (tokens.rank !== 4 || tokens.shape[2] !== whole)
      throw new Error(
        `VideoLLaMA: frameDetections reads the whole patch grid, [B, F, ${whole}, ${Dv}] (frameTokens, not the pooled frameFeatures), got [${tokens.shape}]`,
      );
    return this.videoObjectTracker.frameDetections(tokens);
  }

  /** Tokens per frame the video Q-Former reads: the class token and the pooled patch grid, 1 + (G / pool)². */
  get tokensPerFrame(): number {
    const grid = this.config.vision.imageSize / this.config.vision.patchSize / this.config.framePatchPool;
    return 1 + grid * grid;
  }

  /**
   * Keys per frame the video Q-Former reads ({@link frameKeys}): the frame's tokens, or one merged key
   * (`mergeFrameTokens`), twice that with `frameDifferences`.
   */
  get keysPerFrame(): number {
    return (this.config.mergeFrameTokens ? 1 : this.tokensPerFrame) * (this.config.frameDifferences ? 2 : 1);
  }

  /**
   * What the video Q-Former's keys are made of, frame by frame (before positions): the tokens, merged into one key
   * per frame when `mergeFrameTokens`, followed by their difference from the previous frame when `frameDifferences`.
   * features: [B, F, K, Dv] → [B, F, Kf, Dk] (Kf = {@link keysPerFrame}; Dk = K·Dv merged, else Dv)
   */
  frameKeys(features: tf.Tensor): tf.Tensor4D {
    const [B, F, K, Dv] = features.shape;
    return tf.tidy(() => {
      let keys = this.config.mergeFrameTokens ? features.reshape([B, F, 1, K * Dv]) : features; // [B, F, 1, K·Dv]: a frame's tokens side by side
      if (this.config.frameDifferences) {
        const first = keys.slice([0, 0, 0, 0], [B, 1, -1, -1]); // [B, 1, ·, Dk]
        const previous = F > 1 ? tf.concat([first, keys.slice([0, 0, 0, 0], [B, F - 1, -1, -1])], 1) : first; // frame f−1 (f for f = 0)
        keys = tf.concat([keys, keys.sub(previous)], 2); // [B, F, 2·K′, Dk]: the keys, then their change since the previous frame
      }
      return keys;
    }) as tf.Tensor4D;
  }

  /**
   * The frozen per-frame features: every frame through the image tower, its
   * last layer after the post-LayerNorm, the patch grid average-pooled.
   * pixels: [B, F, 3, S, S] → [B, F, K, Dv] (K = {@link tokensPerFrame})
   */
  frameFeatures(pixels: tf.Tensor): tf.Tensor4D {
    return tf.tidy(() => this.poolFrameTokens(this.frameTokens(pixels)));
  }

  /**
   * Every frame through the frozen image tower, its last layer after the post-LayerNorm, the whole patch grid (what
   * the object tracker reads). pixels: [B, F, 3, S, S] → [B, F, 1 + G², Dv] (G = S / patch size)
   */
  frameTokens(pixels: tf.Tensor): tf.Tensor4D {
    const { imageSize: S, patchSize, hiddenSize: Dv } = this.config.vision;
    if (pixels.rank !== 5 || pixels.shape[3] !== S || pixels.shape[4] !== S)
      throw new Error(`VideoLLaMA: pixelValues must be [B, F, 3, ${S}, ${S}], got [${pixels.shape}]`);
    const [B, F, C] = pixels.shape;
    if (F > this.config.maxFrames) throw new Error(`VideoLLaMA: ${F} frames exceed config.maxFrames ${this.config.maxFrames}`);
    const G = S / patchSize;
    return tf.tidy(() => {
      const frames = pixels.reshape([B * F, C, S, S]); // [B·F, 3, S, S]: frames as a batch of images
      const tokens = this.visionModel.postLayerNorm.apply(this.visionModel.forward(frames).lastHiddenState); // [B·F, 1 + G², Dv]
      return tokens.reshape([B, F, 1 + G * G, Dv]); // [B, F, 1 + G², Dv]
    }) as tf.Tensor4D;
  }

  /**
   * The patch grid of {@link frameTokens} average-pooled by `framePatchPool`, the class token kept.
   * tokens: [B, F, 1 + G², Dv] → [B, F, K, Dv] (K = {@link tokensPerFrame})
   */
  poolFrameTokens(tokens: tf.Tensor): tf.Tensor4D {
    const { imageSize: S, patchSize, hiddenSize: Dv } = this.config.vision;
    const G = S / patchSize;
    if (tokens.rank !== 4 || tokens.shape[2] !== 1 + G * G || tokens.shape[3] !== Dv)
      throw new Error(`VideoLLaMA: frame tokens must be [B, F, ${1 + G * G}, ${Dv}], got [${tokens.shape}]`);
    const [B, F] = tokens.shape;
    const pool = this.config.framePatchPool;
    if (pool === 1) return tokens.clone() as tf.Tensor4D;
    return tf.tidy(() => {
      const rows = tokens.reshape([B * F, 1 + G * G, Dv]); // [B·F, 1 + G², Dv]: frames as rows
      const classToken = rows.slice([0, 0, 0], [B * F, 1, Dv]); // [B·F, 1, Dv]
      const grid = rows.slice([0, 1, 0], [B * F, G * G, Dv]).reshape([B * F, G, G, Dv]) as tf.Tensor4D; // [B·F, G, G, Dv] (NHWC)
      const patches = tf.avgPool(grid, pool, pool, "valid").reshape([B * F, (G / pool) ** 2, Dv]); // [B·F, (G/pool)², Dv]
      return tf.concat([classToken, patches], 1).reshape([B, F, this.tokensPerFrame, Dv]); // [B, F, K, Dv]
    }) as tf.Tensor4D;
  }

  /**
   * The video branch's soft prompt. features: [B, F, K, Dv]; frameCounts: real frames per row (default all)
   * → the bridge's output: queries [B, Nv, Dq], projected [B, Nv, Dtext], cross-attention weights [B, H, Nv, F′·Kf] when asked
   * (F′ = F, or 1 for `"mean-pool"`; Kf = {@link keysPerFrame})
   */
  videoPrompt(
    features: tf.Tensor,
    options: { frameCounts?: readonly number[]; outputCrossAttentions?: boolean } = {},
  ): QFormerBridgeOutput {
    if (features.rank !== 4 || features.shape[2] !== this.tokensPerFrame)
      throw new Error(`VideoLLaMA: frame features must be [B, F, ${this.tokensPerFrame}, Dv], got [${features.shape}]`);
    const [B, F] = features.shape;
    if (options.frameCounts && options.frameCounts.length !== B)
      throw new Error(`VideoLLaMA: ${options.frameCounts.length} frame counts for a batch of ${B}`);
    return tidy<QFormerBridgeOutput>(() => {
      if (this.config.temporalModel === "mean-pool") {
        const pooled = meanOverSteps(features, options.frameCounts).expandDims(1); // [B, 1, K, Dv]
        return this.videoBridge.forward(this.frameKeys(pooled), { outputCrossAttentions: options.outputCrossAttentions });
      }
      const keyMask = options.frameCounts ? stepKeyMask(options.frameCounts, F, this.keysPerFrame) : undefined; // [B, 1, 1, F·Kf]
      return this.videoBridge.forward(this.frameKeys(features), {
        keyMask,
        outputCrossAttentions: options.outputCrossAttentions,
      });
    });
  }

  /**
   * The frozen per-segment audio features. logMel: [B, S, M, Fs] → [B, S, Ka, Da]
   * (Ka = 1 for `"pooled"`, else Fs / framesPerToken)
   */
  segmentFeatures(logMel: tf.Tensor): tf.Tensor4D {
    const M = this.config.audio.numMelBins;
    if (logMel.rank !== 4 || logMel.shape[2] !== M)
      throw new Error(`VideoLLaMA: audioLogMel must be [B, S, ${M}, frames], got [${logMel.shape}]`);
    const [B, S, , Fs] = logMel.shape;
    if (S > this.config.maxAudioSegments)
      throw new Error(`VideoLLaMA: ${S} audio segments exceed config.maxAudioSegments ${this.config.maxAudioSegments}`);
    return tf.tidy(() => {
      const encoded = this.audioEncoder.forward(logMel.reshape([B * S, M, Fs])); // segments as a batch of clips
      if (this.config.audioSegmentTokens === "pooled") return encoded.pooled.reshape([B, S, 1, -1]); // [B, S, 1, Da]
      const [, Ta, Da] = encoded.lastHiddenState.shape;
      return encoded.lastHiddenState.reshape([B, S, Ta, Da]); // [B, S, Ta, Da]
    }) as tf.Tensor4D;
  }

  /** The audio branch's soft prompt. features: [B, S, Ka, Da] → queries [B, Na, Dq], projected [B, Na, Dtext] (+ weights when asked) */
  audioPrompt(
    features: tf.Tensor,
    options: { segmentCounts?: readonly number[]; outputCrossAttentions?: boolean } = {},
  ): QFormerBridgeOutput {
    if (features.rank !== 4) throw new Error(`VideoLLaMA: segment features must be [B, S, Ka, Da], got [${features.shape}]`);
    const [B, S, K] = features.shape;
    if (options.segmentCounts && options.segmentCounts.length !== B)
      throw new Error(`VideoLLaMA: ${options.segmentCounts.length} segment counts for a batch of ${B}`);
    return tidy<QFormerBridgeOutput>(() => {
      const keyMask = options.segmentCounts ? stepKeyMask(options.segmentCounts, S, K) : undefined; // [B, 1, 1, S·Ka]
      return this.audioBridge.forward(features, { keyMask, outputCrossAttentions: options.outputCrossAttentions });
    });
  }

  /** The soft prompt of whatever the inputs hold: [video; audio] → { prompt [B, Nv′ + Na, Dtext], each part } */
  softPrompt(inputs: Omit<VideoLlamaInputs, "inputIds" | "attentionMask" | "labels">): {
    prompt: tf.Tensor;
    videoPrompt?: tf.Tensor;
    audioPrompt?: tf.Tensor;
  } {
    if (inputs.pixelValues && inputs.frameFeatures) throw new Error("VideoLLaMA: give pixelValues or frameFeatures, not both");
    if (inputs.audioLogMel && inputs.segmentFeatures)
      throw new Error("VideoLLaMA: give audioLogMel or segmentFeatures, not both");
    if (inputs.instructionIds && !this.videoObjectTracker)
      throw new Error("VideoLLaMA: instructionIds choose the object tracker's slots; this model has no object tracker");
    if (inputs.pixelValues && inputs.frameDetections)
      throw new Error("VideoLLaMA: frameDetections go with frameFeatures; from pixelValues the model makes its own");
    if (inputs.frameDetections && inputs.frameFeatures && inputs.frameDetections.shape[0] !== inputs.frameFeatures.shape[0])
      throw new Error(
        `VideoLLaMA: frameDetections of ${inputs.frameDetections.shape[0]} clips for frameFeatures of ${inputs.frameFeatures.shape[0]}`,
      );
    return tidy(() => {
      const tokens = inputs.pixelValues ? this.frameTokens(inputs.pixelValues) : undefined; // [B, F, 1 + G², Dv]
      const frames = inputs.frameFeatures ?? (tokens ? this.poolFrameTokens(tokens) : undefined);
      const detections = inputs.frameDetections ?? (tokens && this.videoObjectTracker ? this.frameDetections(tokens) : undefined);
      const segments = inputs.segmentFeatures ?? (inputs.audioLogMel ? this.segmentFeatures(inputs.audioLogMel) : undefined);
      if (!frames && !segments) throw new Error("VideoLLaMA: give the clip's frames, its sound, or both");
      const videoPrompt = frames
        ? this.videoSoftPrompt(this.videoPrompt(frames, { frameCounts: inputs.frameCounts }), detections, inputs.instructionIds)
        : undefined;
      const audioPrompt = segments
        ? this.audioPrompt(segments, { segmentCounts: inputs.segmentCounts }).languageInputs
        : undefined;
      const parts = [videoPrompt, audioPrompt].filter((part): part is tf.Tensor => part !== undefined);
      if (parts.length === 2 && parts[0].shape[0] !== parts[1].shape[0])
        throw new Error(`VideoLLaMA: ${parts[0].shape[0]} clips of frames but ${parts[1].shape[0]} of sound`);
      const prompt = parts.length === 1 ? parts[0] : tf.concat(parts, 1); // [B, Nv′ + Na, Dtext]
      return { prompt, ...(videoPrompt ? { videoPrompt } : {}), ...(audioPrompt ? { audioPrompt } : {}) };
    });
  }

  /** The soft prompt, then the text; the loss on the labelled text when labels are given. */
  forward(inputs: VideoLlamaInputs): VideoLlamaOutput {
    const { inputIds } = inputs;
    if (inputIds.rank !== 2 || inputIds.dtype !== "int32")
      throw new Error(`VideoLLaMA: inputIds must be int32 [B, T], got ${inputIds.dtype} [${inputIds.shape}]`);
    return tidy<VideoLlamaOutput>(() => {
      const { prompt, videoPrompt, audioPrompt } = this.softPrompt(inputs);
      if (prompt.shape[0] !== inputIds.shape[0])
        throw new Error(`VideoLLaMA: ${prompt.shape[0]} clips but ${inputIds.shape[0]} rows of text`);
      const textEmbeds = this.languageModel.model.embedTokens.apply(inputIds); // [B, T, Dtext]
      const textMask = inputs.attentionMask ?? tf.onesLike(inputIds);
      const soft = assembleSoftPrompt(prompt, textEmbeds, textMask, inputs.labels);
      const { logits } = this.languageModel.forward({ inputsEmbeds: soft.inputsEmbeds, attentionMask: soft.attentionMask });
      const out: VideoLlamaOutput = { logits, attentionMask: soft.attentionMask };
      if (soft.labels) out.loss = shiftedLanguageModelLoss(logits, soft.labels);
      if (videoPrompt) out.videoPrompt = videoPrompt;
      if (audioPrompt) out.audioPrompt = audioPrompt;
      return out;
    });
  }

  /** Generates from the soft prompt and a text prompt (left-padded ids [B, T]); returns the new tokens of each row. */
  async generate(inputs: Omit<VideoLlamaInputs, "labels">, options: GenerateOptions = {}): Promise<number[][]> {
    const { inputsEmbeds, attentionMask } = tidy(() => {
      const { prompt } = this.softPrompt(inputs);
      const textEmbeds = this.languageModel.model.embedTokens.apply(inputs.inputIds);
      return assembleSoftPrompt(prompt, textEmbeds, inputs.attentionMask ?? tf.onesLike(inputs.inputIds));
    });
    try {
      return await this.languageModel.generate(undefined, { ...options, inputsEmbeds, attentionMask });
    } finally {
      inputsEmbeds.dispose();
      attentionMask.dispose();
    }
  }
}
