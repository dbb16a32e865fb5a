/**
 * A small temporal encoder for inertial windows (accelerometer + gyroscope):
 * a strided 1-D convolution turns the raw samples into tokens, learned
 * positions are added, and pre-norm transformer layers (the CLIP encoder layer
 * of clip.ts) mix them; a final LayerNorm; mean pooling; optional heads for
 * pretraining (activity classes).
 *
 * Design after the convolution + transformer encoders of human-activity
 * recognition (e.g. Mahmud et al., "Human Activity Recognition from Wearable
 * Sensor Data Using Self-Attention", ECAI 2020) and the audio encoder of this
 * library (audio_encoder.ts), which treats log-mel frames the same way.
 * Not a Hugging Face architecture: it lives inside `mllm_modality_llm`
 * checkpoints (modality_bridge.ts), parameters named in HF style.
 *
 * The convolution is written as windows + one linear layer (a conv1d with
 * kernel k and stride s is a Linear over each window of k samples × C
 * channels), so it runs on every backend with the library's `Linear`.
 */
import * as tf from "@tensorflow/tfjs";
import { Module } from "../nn/module";
import { Linear } from "../nn/linear";
import { LayerNorm } from "../nn/layer_norm";
import { Embedding } from "../nn/embedding";
import { activation } from "../nn/activations";
import { Random } from "../util/random";
import { tidy } from "../util/tidy";
import { CLIPEncoder } from "./clip";

/** The IMU encoder. Defaults are filled by {@link resolveImuEncoderConfig}. */
export interface ImuEncoderConfig {
  /** Channels C per sample. Default 6 (acc_x, acc_y, acc_z, gyro_x, gyro_y, gyro_z). */
  readonly numChannels?: number;
  /** Samples T per window. Default 200 (4 s at 50 Hz, the world's windows). */
  readonly windowLength?: number;
  /** Convolution kernel k in samples. Default 10 (0.2 s: a fifth of the slowest gait cycle). */
  readonly kernelSize?: number;
  /** Convolution stride s. Default 5 (half a kernel: tokens overlap by half). */
  readonly stride?: number;
  /** Model width D. */
  readonly hiddenSize: number;
  /** MLP width. */
  readonly intermediateSize: number;
  /** Encoder layers. */
  readonly numLayers: number;
  /** Heads H. */
  readonly numHeads: number;
  /** Activation after the convolution and in the MLPs. Default `gelu`. */
  readonly hiddenAct?: string;
  /** LayerNorm epsilon. Default 1e-5. */
  readonly layerNormEps?: number;
  /** Class names of a pretraining head. Default none: no head. */
  readonly labels?: readonly string[];
  /** Initialisation seed. Default 0. */
  readonly seed?: number;
}

export type ResolvedImuEncoderConfig = Required<ImuEncoderConfig>;

/** Fills every default of an {@link ImuEncoderConfig} once and checks the sizes (idempotent). */
export function resolveImuEncoderConfig(config: ImuEncoderConfig): ResolvedImuEncoderConfig {
  const resolved: ResolvedImuEncoderConfig = {
    numChannels: config.numChannels ?? 6,
    windowLength: config.windowLength ?? 200,
    kernelSize: config.kernelSize ?? 10,
    stride: config.stride ?? 5,
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
    "numChannels",
    "windowLength",
    "kernelSize",
    "stride",
    "hiddenSize",
    "intermediateSize",
    "numLayers",
    "numHeads",
  ] as const) {
    if (!Number.isInteger(resolved[key]) || resolved[key] <= 0)
      throw new Error(`ImuEncoder: config.${key} must be a positive integer, got ${JSON.stringify(resolved[key])}`);
  }
  if (resolved.kernelSize > resolved.windowLength)
    throw new Error(`ImuEncoder: kernelSize ${resolved.kernelSize} is longer than the window of ${resolved.windowLength}`);
  if (!resolved.labels.every((label) => typeof label === "string"))
    throw new Error(`ImuEncoder: config.labels must be strings, got ${JSON.stringify(resolved.labels)}`);
  return resolved;
}

/** Tokens per window: ⌊(T − k) / s⌋ + 1. */
export function imuTokenCount(config: ResolvedImuEncoderConfig): number {
  return Math.floor((config.windowLength - config.kernelSize) / config.stride) + 1;
}

/** Named sizes. */
export const IMU_ENCODER_PRESETS = {
  /** ≈ 0.1M parameters: 39 tokens of width 64, 2 layers. */
  "imu-nano": { hiddenSize: 64, intermediateSize: 128, numLayers: 2, numHeads: 4 },
} as const;

export interface ImuEncoderOutput {
  /** [B, Tk, D]: one vector per token (Tk = {@link imuTokenCount}), after the final LayerNorm. */
  lastHiddenState: tf.Tensor;
  /** [B, D]: mean over tokens. */
  pooled: tf.Tensor;
  /** [B, classes] when the config has labels. */
  logits?: tf.Tensor;
}

export class ImuEncoder extends Module {
  /** The convolution: [k·C] → D per window. */
  readonly conv: Linear;
  readonly convNorm: LayerNorm;
  readonly positionEmbedding: Embedding;
  readonly encoder: CLIPEncoder;
  readonly finalLayerNorm: LayerNorm;
  readonly classifier?: Linear;
  readonly config: ResolvedImuEncoderConfig;
  private readonly act: (x: tf.Tensor) => tf.Tensor;

  constructor(options: ImuEncoderConfig) {
    super();
    const config = (this.config = resolveImuEncoderConfig(options));
    const random = new Random(config.seed);
    const D = config.hiddenSize;
    this.act = activation(config.hiddenAct);
    this.conv = this.module(
      "conv",
      new Linear({ inFeatures: config.kernelSize * config.numChannels, outFeatures: D, seed: random.nextSeed() }),
    );
    this.convNorm = this.module("conv_norm", new LayerNorm({ dim: D, eps: config.layerNormEps }));
    this.positionEmbedding = this.module(
      "position_embedding",
      new Embedding({ numEmbeddings: imuTokenCount(config), embeddingDim: D, seed: random.nextSeed() }),
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
    const classifierSeed = random.nextSeed();
    if (config.labels.length)
      this.classifier = this.module(
        "classifier",
        new Linear({ inFeatures: D, outFeatures: config.labels.length, seed: classifierSeed }),
      );
  }

  /** windows: [B, T, C] (T = windowLength) → tokens [B, Tk, D], pooled [B, D] (+ logits) */
  forward(windows: tf.Tensor): ImuEncoderOutput {
    const { windowLength: T, numChannels: C, kernelSize: k, stride: s } = this.config;
    if (windows.rank !== 3 || windows.shape[1] !== T || windows.shape[2] !== C)
      throw new Error(`ImuEncoder: windows must be [B, ${T}, ${C}], got [${windows.shape}]`);
    const B = windows.shape[0];
    const Tk = imuTokenCount(this.config);
    const starts = Array.from({ length: Tk }, (_, t) => t * s);
    const taps = starts.flatMap((start) => Array.from({ length: k }, (_, j) => start + j)); // [Tk·k] sample indices
    return tidy<ImuEncoderOutput>(() => {
      const unfolded = tf.gather(windows, tf.tensor1d(taps, "int32"), 1).reshape([B, Tk, k * C]); // [B, Tk, k·C]: each window's samples side by side
      const tokens = this.act(this.convNorm.apply(this.conv.apply(unfolded))); // [B, Tk, D]
      const x = tokens.add(this.positionEmbedding.apply(tf.range(0, Tk, 1, "int32"))); // + [Tk, D]
      const states = this.encoder.forward(x);
      const lastHiddenState = this.finalLayerNorm.apply(states[states.length - 1]); // [B, Tk, D]
      const pooled = lastHiddenState.mean(1); // [B, D]
      const out: ImuEncoderOutput = { lastHiddenState, pooled };
      if (this.classifier) out.logits = this.classifier.apply(pooled);
      return out;
    });
  }
}
