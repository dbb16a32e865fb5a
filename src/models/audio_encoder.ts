/**
 * Audio encoder: a transformer over log-mel frames, the audio tower of the
 * labs (VideoLLaMA's audio branch starts from a frozen audio encoder; this
 * one plays the part of ImageBind's / Whisper's encoder at lab scale).
 *
 * Design after the Audio Spectrogram Transformer (Gong et al., 2021) with
 * time-only patches as in Whisper's encoder (Radford et al., 2022): groups of
 * `framesPerToken` consecutive log-mel frames are one token; learned
 * positions; pre-norm encoder layers (the CLIP encoder layer of clip.ts);
 * final LayerNorm; mean pooling; a linear classifier for pretraining.
 *
 * Not a Hugging Face architecture: its config has model_type
 * "mllm_audio_encoder" and its parameters are named in HF's style.
 */
import * as tf from "@tensorflow/tfjs";
import { Module } from "../nn/module";
import { Linear } from "../nn/linear";
import { LayerNorm } from "../nn/layer_norm";
import { Embedding } from "../nn/embedding";
import { Random } from "../util/random";
import { CLIPEncoder } from "./clip";
import { tidy } from "../util/tidy";

/** The audio encoder's configuration. Defaults are filled by {@link resolveAudioEncoderConfig}. */
export interface AudioEncoderConfig {
  /** Log-mel bins M per frame. Default 80 (Whisper's). */
  readonly numMelBins?: number;
  /** Frames F per clip (100 per second at hop 160 / 16 kHz). Default 100. */
  readonly maxFrames?: number;
  /** Consecutive frames joined into one token. Default 4. */
  readonly framesPerToken?: number;
  /** Model width D. */
  readonly hiddenSize: number;
  /** MLP width. */
  readonly intermediateSize: number;
  /** Encoder layers. */
  readonly numLayers: number;
  /** Heads H. */
  readonly numHeads: number;
  /** MLP activation. Default `gelu`. */
  readonly hiddenAct?: string;
  /** LayerNorm epsilon. Default 1e-5. */
  readonly layerNormEps?: number;
  /** Class names of the pretraining head (its size). Default none: no head. */
  readonly labels?: readonly string[];
  /** Initialisation seed. Default 0. */
  readonly seed?: number;
}

export type ResolvedAudioEncoderConfig = Required<AudioEncoderConfig>;

/** Fills every default of an {@link AudioEncoderConfig} once and checks the sizes (idempotent). */
export function resolveAudioEncoderConfig(config: AudioEncoderConfig): ResolvedAudioEncoderConfig {
  const resolved: ResolvedAudioEncoderConfig = {
    numMelBins: config.numMelBins ?? 80,
    maxFrames: config.maxFrames ?? 100,
    framesPerToken: config.framesPerToken ?? 4,
    hiddenSize: config.hiddenSize,
    intermediateSize: config.intermediateSize,
    numLayers: config.numLayers,
    numHeads: config.numHeads,
    hiddenAct: config.hiddenAct ?? "gelu",
    layerNormEps: config.layerNormEps ?? 1e-5,
    labels: config.labels ?? [],
    seed: config.seed ?? 0,
  };
  for (const key of [
    "numMelBins",
    "maxFrames",
    "framesPerToken",
    "hiddenSize",
    "intermediateSize",
    "numLayers",
    "numHeads",
  ] as const) {
    if (!Number.isInteger(resolved[key]) || resolved[key] <= 0)
      throw new Error(`AudioEncoder: config.${key} must be a positive integer, got ${resolved[key]}`);
  }
  if (resolved.maxFrames % resolved.framesPerToken !== 0)
    throw new Error(
      `AudioEncoder: maxFrames ${resolved.maxFrames} must be a multiple of framesPerToken ${resolved.framesPerToken}`,
    );
  if (!resolved.labels.every((label) => typeof label === "string"))
    throw new Error(`AudioEncoder: config.labels must be strings, got ${JSON.stringify(resolved.labels)}`);
  return resolved;
}

/** Named sizes. */
export const AUDIO_ENCODER_PRESETS = {
  /** ≈ 0.45M parameters (with a 41-class head). */
  "audio-nano": { hiddenSize: 128, intermediateSize: 256, numLayers: 3, numHeads: 4 },
} as const;

export interface AudioEncoderOutput {
  /** [B, Ta, D]: one vector per token (Ta = frames / framesPerToken), after the final LayerNorm. */
  lastHiddenState: tf.Tensor;
  /** [B, D]: mean over tokens. */
  pooled: tf.Tensor;
  /** [B, classes] when the config has labels. */
  logits?: tf.Tensor;
}

export class AudioEncoder extends Module {
  readonly frameProjection: Linear;
  readonly positionEmbedding: Embedding;
  readonly encoder: CLIPEncoder;
  readonly finalLayerNorm: LayerNorm;
  readonly classifier?: Linear;
  readonly melBins: number;
  readonly maxFrames: number;
  readonly framesPerToken: number;
  readonly config: ResolvedAudioEncoderConfig;

  constructor(options: AudioEncoderConfig) {
    super();
    const config = (this.config = resolveAudioEncoderConfig(options));
    this.melBins = config.numMelBins;
    this.maxFrames = config.maxFrames;
    this.framesPerToken = config.framesPerToken;
    const random = new Random(config.seed);
    const D = config.hiddenSize;
    this.frameProjection = this.module(
      "frame_projection",
      new Linear({ inFeatures: this.melBins * this.framesPerToken, outFeatures: D, seed: random.nextSeed() }),
    );
    this.positionEmbedding = this.module(
      "position_embedding",
      new Embedding({ numEmbeddings: this.maxFrames / this.framesPerToken, embeddingDim: D, seed: random.nextSeed() }),
    );
    const sizes = {
      dim: D,
      heads: config.numHeads,
      intermediate: config.intermediateSize,
      hiddenAct: config.hiddenAct,
      eps: config.layerNormEps,
    };
    this.encoder = this.module("encoder", new CLIPEncoder(sizes, config.numLayers, random.nextSeed()));
    this.finalLayerNorm = this.module("final_layer_norm", new LayerNorm({ dim: D, eps: config.layerNormEps }));
    if (config.labels.length)
      this.classifier = this.module(
        "classifier",
        new Linear({ inFeatures: D, outFeatures: config.labels.length, seed: random.nextSeed() }),
      );
  }

  /** logMel: [B, melBins, frames] (Whisper's layout; frames ≤ maxFrames, a multiple of framesPerToken). */
  forward(logMel: tf.Tensor): AudioEncoderOutput {
    if (logMel.rank !== 3 || logMel.shape[1] !== this.melBins)
      throw new Error(`AudioEncoder: logMel must be [B, ${this.melBins}, frames], got [${logMel.shape}]`);
    const [B, , frames] = logMel.shape;
    if (frames > this.maxFrames || frames % this.framesPerToken !== 0)
      throw new Error(`AudioEncoder: frames must be a multiple of ${this.framesPerToken} up to ${this.maxFrames}, got ${frames}`);
    const Ta = frames / this.framesPerToken;
    return tidy(() => {
      // [B, M, F] → [B, F, M] → [B, Ta, framesPerToken·M]: consecutive frames side by side
      const tokens = logMel.transpose([0, 2, 1]).reshape([B, Ta, this.framesPerToken * this.melBins]);
      const positions = this.positionEmbedding.apply(tf.range(0, Ta, 1, "int32")); // [Ta, D]
      const x = this.frameProjection.apply(tokens).add(positions); // [B, Ta, D]
      const states = this.encoder.forward(x); // no mask: every token sees every token
      const lastHiddenState = this.finalLayerNorm.apply(states[states.length - 1]);
      const pooled = lastHiddenState.mean(1); // [B, D]
      const out: AudioEncoderOutput = { lastHiddenState, pooled };
      if (this.classifier) out.logits = this.classifier.apply(pooled);
      return out;
    });
  }
}
