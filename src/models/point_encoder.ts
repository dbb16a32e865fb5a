/**
 * A PointNet-style set encoder for coloured point clouds: one MLP shared by
 * every point (x, y, z, r, g, b → D), then a max over the points, a function
 * of the set that no ordering of the points changes. It returns the per-point
 * features as well as the pooled one, so a Q-Former can read both (as a ViT's
 * patches and class token).
 *
 * Paper: Qi et al., "PointNet: Deep Learning on Point Sets for 3D
 * Classification and Segmentation" (CVPR 2017), §4.2 (symmetric function,
 * shared MLP + max pooling). Reference: charlesq34/pointnet `models/pointnet_cls.py`
 * (conv 1×1 64-64-64-128-1024, max pool); PointLLM (Xu et al., 2023) feeds a
 * point encoder's tokens to an LLM through a projector. Here: no input or
 * feature transform networks (T-Nets; the world's clouds turn only about the
 * vertical axis), LayerNorm in place of BatchNorm (batches of a few clouds).
 */
import * as tf from "@tensorflow/tfjs";
import { Module } from "../nn/module";
import { Linear } from "../nn/linear";
import { LayerNorm } from "../nn/layer_norm";
import { activation } from "../nn/activations";
import { Random } from "../util/random";
import { tidy } from "../util/tidy";

/** The point encoder. Defaults are filled by {@link resolvePointEncoderConfig}. */
export interface PointEncoderConfig {
  /** Values per point. Default 6 (x, y, z, r, g, b). */
  readonly numChannels?: number;
  /** Widths of the shared MLP's hidden layers. Default [64, 128] (PointNet's 64-128 before its 1024). */
  readonly mlpSizes?: readonly number[];
  /** Output width D of the shared MLP. */
  readonly hiddenSize: number;
  /** Activation between layers. Default `relu` (PointNet's). */
  readonly hiddenAct?: string;
  /** LayerNorm epsilon. Default 1e-5. */
  readonly layerNormEps?: number;
  /** Class names of a pretraining head on the pooled feature. Default none: no head. */
  readonly labels?: readonly string[];
  /** Initialisation seed. Default 0. */
  readonly seed?: number;
}

export type ResolvedPointEncoderConfig = Required<PointEncoderConfig>;

/** Fills every default of a {@link PointEncoderConfig} once and checks the sizes (idempotent). */
export function resolvePointEncoderConfig(config: PointEncoderConfig): ResolvedPointEncoderConfig {
  const resolved: ResolvedPointEncoderConfig = {
    numChannels: config.numChannels ?? 6,
    mlpSizes: config.mlpSizes ?? [64, 128],
    hiddenSize: config.hiddenSize,
    hiddenAct: config.hiddenAct ?? "relu",
    layerNormEps: config.layerNormEps ?? 1e-5,
    labels: config.labels ?? [],
    seed: config.seed ?? 0,
  };
  for (const [name, value] of [
    ["numChannels", resolved.numChannels],
    ["hiddenSize", resolved.hiddenSize],
    ...resolved.mlpSizes.map((size, k) => [`mlpSizes[${k}]`, size] as const),
  ] as const) {
    if (!Number.isInteger(value) || value <= 0)
      throw new Error(`PointEncoder: config.${name} must be a positive integer, got ${JSON.stringify(value)}`);
  }
  if (!resolved.labels.every((label) => typeof label === "string"))
    throw new Error(`PointEncoder: config.labels must be strings, got ${JSON.stringify(resolved.labels)}`);
  return resolved;
}

/** Named sizes. */
export const POINT_ENCODER_PRESETS = {
  /** ≈ 26k parameters: 6 → 64 → 128 → 128. */
  "pointnet-nano": { hiddenSize: 128, mlpSizes: [64, 128] },
} as const;

export interface PointEncoderOutput {
  /** [B, N, D]: each point's feature (the shared MLP's output, after a LayerNorm). */
  pointFeatures: tf.Tensor;
  /** [B, D]: the max over points. */
  pooled: tf.Tensor;
  /** [B, classes] when the config has labels. */
  logits?: tf.Tensor;
}

export class PointEncoder extends Module {
  /** The shared MLP's layers (`mlp.0`, `mlp.1`, …). */
  readonly layers: Linear[] = [];
  readonly norm: LayerNorm;
  readonly classifier?: Linear;
  readonly config: ResolvedPointEncoderConfig;
  private readonly act: (x: tf.Tensor) => tf.Tensor;

  constructor(options: PointEncoderConfig) {
    super();
    const config = (this.config = resolvePointEncoderConfig(options));
    const random = new Random(config.seed);
    this.act = activation(config.hiddenAct);
    const widths = [config.numChannels, ...config.mlpSizes, config.hiddenSize];
    for (let i = 0; i + 1 < widths.length; i++)
      this.layers.push(
        this.module(`mlp.${i}`, new Linear({ inFeatures: widths[i], outFeatures: widths[i + 1], seed: random.nextSeed() })),
      );
    this.norm = this.module("norm", new LayerNorm({ dim: config.hiddenSize, eps: config.layerNormEps }));
    const classifierSeed = random.nextSeed();
    if (config.labels.length)
      this.classifier = this.module(
        "classifier",
        new Linear({ inFeatures: config.hiddenSize, outFeatures: config.labels.length, seed: classifierSeed }),
      );
  }

  /** points: [B, N, C] → per-point [B, N, D], pooled [B, D] (+ logits) */
  forward(points: tf.Tensor): PointEncoderOutput {
    const C = this.config.numChannels;
    if (points.rank !== 3 || points.shape[2] !== C)
      throw new Error(`PointEncoder: points must be [B, N, ${C}], got [${points.shape}]`);
    return tidy<PointEncoderOutput>(() => {
      let x = points; // [B, N, C]
      this.layers.forEach((layer, i) => {
        x = layer.apply(x); // the same weights on every point
        if (i + 1 < this.layers.length) x = this.act(x);
      });
      const pointFeatures = this.norm.apply(x); // [B, N, D]
      const pooled = pointFeatures.max(1); // [B, D]: symmetric in the points
      const out: PointEncoderOutput = { pointFeatures, pooled };
      if (this.classifier) out.logits = this.classifier.apply(pooled);
      return out;
    });
  }
}
