/**
 * The Q-Former with its text side (BLIP-2 stage 1): Nq learned queries and a
 * BERT-style text encoder/decoder in one transformer. Queries and text share
 * the self-attention layers (one sequence [queries; text], an attention mask
 * decides who sees whom); only the queries cross-attend to the frozen image
 * encoder's features (every `crossAttentionFrequency` layers); queries and
 * text have their own feed-forward weights.
 *
 * Paper: Li et al., "BLIP-2: Bootstrapping Language-Image Pre-training with
 * Frozen Image Encoders and Large Language Models" (2023), §3.1 and Fig. 2.
 * Reference: salesforce/LAVIS `lavis/models/blip2_models/Qformer.py`
 * (`BertLayer.forward`: `feed_forward_chunk_query` on the first `query_length`
 * positions, `feed_forward_chunk` on the text); transformers
 * `models/blip_2/modeling_blip_2.py` (`Blip2QFormerLayer`, `Blip2TextEmbeddings`).
 *
 * Built on `./blip2`'s `Blip2QFormerLayer` (self-attention, cross-attention and
 * the query FFN `intermediate_query`/`output_query`, same parameter names);
 * this file adds the text FFN (`intermediate`/`output`), the text embeddings
 * and the attention mask.
 */
import * as tf from "@tensorflow/tfjs";
import { tidy } from "../util/tidy";
import { Module } from "../nn/module";
import { Linear } from "../nn/linear";
import { LayerNorm } from "../nn/layer_norm";
import { Embedding } from "../nn/embedding";
import { activation } from "../nn/activations";
import { scaledDotProductAttention, splitHeads, mergeHeads } from "../nn/attention";
import {
  Blip2QFormerLayer,
  resolveBlip2QFormerConfig,
  type Blip2QFormerAttention,
  type Blip2QFormerConfig,
  type ResolvedBlip2QFormerConfig,
  qformerImageContext,
} from "./blip2";
import { Random } from "../util/random";

/** The Q-Former with a text side. Extends `Blip2QFormerConfig` (width, layers, heads, cross-attention frequency, image width). */
export interface Blip2QFormerTextConfig extends Blip2QFormerConfig {
  /** Text vocabulary V (the world tokenizer's, 851). */
  readonly vocabSize: number;
  /** Longest text T the position table holds. Default 40 (the CLIP text tower's). */
  readonly maxPositionEmbeddings?: number;
}

export interface ResolvedBlip2QFormerTextConfig extends ResolvedBlip2QFormerConfig {
  readonly vocabSize: number;
  readonly maxPositionEmbeddings: number;
}

/** Fills every default of a {@link Blip2QFormerTextConfig} once (the Q-Former's from {@link resolveBlip2QFormerConfig}) and checks it. */
export function resolveBlip2QFormerTextConfig(config: Blip2QFormerTextConfig): ResolvedBlip2QFormerTextConfig {
  const resolved = {
    ...resolveBlip2QFormerConfig(config),
    vocabSize: config.vocabSize,
    maxPositionEmbeddings: config.maxPositionEmbeddings ?? 40,
  };
  for (const key of ["vocabSize", "maxPositionEmbeddings"] as const) {
    if (!Number.isInteger(resolved[key]) || resolved[key] <= 0)
      throw new Error(`Q-Former: config.${key} must be a positive integer, got ${JSON.stringify(resolved[key])}`);
  }
  return resolved;
}

/**
 * One attention of a Q-Former layer with an additive mask, returning its weights too.
 * Same computation as `Blip2QFormerAttention.apply` (blip2.ts), repeated here
 * because that one takes no mask and returns no weights; it runs the same
 * modules (`attention.query`, `key`, `value`, `output.dense`, `output.LayerNorm`).
 * x: [B, Tq, Dq]; context: [B, Tk, Dk]; mask: additive, broadcastable to [B, H, Tq, Tk]
 * → output LayerNorm(x + dense(attention)) [B, Tq, Dq], weights [B, H, Tq, Tk]
 */
export function qformerAttention(
  attention: Blip2QFormerAttention,
  heads: number,
  x: tf.Tensor,
  context: tf.Tensor,
  mask?: tf.Tensor,
): { output: tf.Tensor; weights: tf.Tensor } {
  return tf.tidy(() => {
    const q = splitHeads(attention.query.apply(x), heads); // [B, H, Tq, Dh]
    const k = splitHeads(attention.key.apply(context), heads); // [B, H, Tk, Dh]
    const v = splitHeads(attention.value.apply(context), heads); // [B, H, Tk, Dh]
    const { output, weights } = scaledDotProductAttention(q, k, v, mask);
    return { output: attention.outputNorm.apply(attention.outputDense.apply(mergeHeads(output)).add(x)), weights }; // [B, Tq, Dq]
  }) as { output: tf.Tensor; weights: tf.Tensor };
}

/** A Q-Former layer over [queries; text]: shared masked self-attention, cross-attention for the queries, one FFN per path. */
export class Blip2QFormerMultimodalLayer extends Blip2QFormerLayer {
  /** The text path's FFN (LAVIS `intermediate`/`output`; the queries use the parent's `intermediate_query`/`output_query`). */
  readonly textIntermediate: Linear;
  readonly textOutputDense: Linear;
  readonly textOutputNorm: LayerNorm;
  private readonly heads: number;
  private readonly hiddenAct: (x: tf.Tensor) => tf.Tensor;

  constructor(config: ResolvedBlip2QFormerConfig, index: number, seed: number) {
    super(config, index, seed);
    const random = new Random(seed + 7919); // apart from the parent's draws
    const Dq = config.hiddenSize;
    this.heads = config.numHeads;
    this.hiddenAct = activation(config.hiddenAct);
    this.textIntermediate = this.module(
      "intermediate.dense",
      new Linear({ inFeatures: Dq, outFeatures: config.intermediateSize, seed: random.nextSeed() }),
    );
    this.textOutputDense = this.module(
      "output.dense",
      new Linear({ inFeatures: config.intermediateSize, outFeatures: Dq, seed: random.nextSeed() }),
    );
    this.textOutputNorm = this.module("output.LayerNorm", new LayerNorm({ dim: Dq, eps: config.layerNormEps }));
  }

  /**
   * hidden: [B, Nq + T, Dq] (queries first); image: the cross-attention's keys/values [B, Tk, w²·Dv]
   * (`qformerImageContext`; needed when Nq > 0 and this layer cross-attends);
   * mask: additive [B, 1, Nq + T, Nq + T] or [Nq + T, Nq + T]
   * → hidden [B, Nq + T, Dq] and the queries' cross-attention weights [B, H, Nq, Tk] (when this layer cross-attends)
   */
  forward(
    hidden: tf.Tensor,
    numQueries: number,
    image: tf.Tensor | undefined,
    mask?: tf.Tensor,
  ): { hidden: tf.Tensor; crossWeights?: tf.Tensor } {
    const [B, L, Dq] = hidden.shape;
    const T = L - numQueries;
    return tidy<{ hidden: tf.Tensor; crossWeights?: tf.Tensor }>(() => {
      const h = qformerAttention(this.selfAttention, this.heads, hidden, hidden, mask).output; // [B, Nq + T, Dq]
      const parts: tf.Tensor[] = [];
      let crossWeights: tf.Tensor | undefined;
      if (numQueries > 0) {
        let q = h.slice([0, 0, 0], [B, numQueries, Dq]); // [B, Nq, Dq]
        if (this.crossAttention) {
          if (!image) throw new Error("Q-Former layer: the queries need image features (this layer cross-attends)");
          const cross = qformerAttention(this.crossAttention, this.heads, q, image);
          q = cross.output;
          crossWeights = cross.weights; // [B, H, Nq, Tk]
        }
        parts.push(this.outputNorm.apply(this.outputDense.apply(this.hiddenAct(this.intermediate.apply(q))).add(q)));
      }
      if (T > 0) {
        const t = h.slice([0, numQueries, 0], [B, T, Dq]); // [B, T, Dq]
        parts.push(this.textOutputNorm.apply(this.textOutputDense.apply(this.hiddenAct(this.textIntermediate.apply(t))).add(t)));
      }
      const out = parts.length === 1 ? parts[0] : tf.concat(parts, 1); // [B, Nq + T, Dq]
      return crossWeights ? { hidden: out, crossWeights } : { hidden: out };
    });
  }
}

/** What {@link Blip2QFormerWithText.forward} returns. */
export interface QFormerOutput {
  /** [B, Nq + T, Dq]: the queries' outputs first, then the text's. */
  lastHiddenState: tf.Tensor;
  /** Per cross-attending layer, the queries' weights over the image features [B, H, Nq, Tk] (when asked). */
  crossAttentions?: tf.Tensor[];
}

/** The Q-Former: text embeddings (word + position), one LayerNorm over [queries; text], the multimodal layers. */
export class Blip2QFormerWithText extends Module {
  readonly wordEmbeddings: Embedding;
  readonly positionEmbeddings: Embedding;
  /** Over the concatenated embeddings (transformers' `qformer.layernorm`). */
  readonly layernorm: LayerNorm;
  readonly layers: Blip2QFormerMultimodalLayer[] = [];
  readonly maxPositions: number;

  readonly config: ResolvedBlip2QFormerTextConfig;

  constructor(textConfig: Blip2QFormerTextConfig, seed: number) {
    super();
    const config = (this.config = resolveBlip2QFormerTextConfig(textConfig));
    const random = new Random(seed);
    this.maxPositions = config.maxPositionEmbeddings;
    const Dq = config.hiddenSize;
    this.wordEmbeddings = this.module(
      "embeddings.word_embeddings",
      new Embedding({ numEmbeddings: config.vocabSize, embeddingDim: Dq, seed: random.nextSeed() }),
    );
    this.positionEmbeddings = this.module(
      "embeddings.position_embeddings",
      new Embedding({ numEmbeddings: this.maxPositions, embeddingDim: Dq, seed: random.nextSeed() }),
    );
    this.layernorm = this.module("layernorm", new LayerNorm({ dim: Dq, eps: config.layerNormEps }));
    for (let i = 0; i < config.numLayers; i++)
      this.layers.push(this.module(`encoder.layer.${i}`, new Blip2QFormerMultimodalLayer(config, i, random.nextSeed())));
  }

  /** inputIds: [B, T] int32 → word + position embeddings [B, T, Dq] (before the LayerNorm) */
  embedText(inputIds: tf.Tensor): tf.Tensor {
    const [B, T] = inputIds.shape;
    if (inputIds.rank !== 2 || inputIds.dtype !== "int32")
      throw new Error(`Q-Former: inputIds must be int32 [B, T], got ${inputIds.dtype} [${inputIds.shape}]`);
    if (T > this.maxPositions) throw new Error(`Q-Former: text of ${T} tokens exceeds its ${this.maxPositions} positions`);
    return tf.tidy(() =>
      this.wordEmbeddings
        .apply(inputIds)
        .add(this.positionEmbeddings.apply(tf.range(0, T, 1, "int32").reshape([1, T])).tile([B, 1, 1])),
    );
  }

  /**
   * queryEmbeds: [B, Nq, Dq] (optional); inputIds: [B, T] int32 (optional); image: [B, Tk, Dv] ([B, 1 + g·g, Dv] when
   * encoderWindow > 1: the cross-attention reads each patch's neighbourhood, `qformerImageContext`);
   * mask: additive [B, 1, Nq + T, Nq + T] (see `blip2_losses.ts`), none = everyone sees everyone.
   */
  forward(inputs: {
    queryEmbeds?: tf.Tensor;
    inputIds?: tf.Tensor;
    image?: tf.Tensor;
    mask?: tf.Tensor;
    outputCrossAttentions?: boolean;
  }): QFormerOutput {
    const { queryEmbeds, inputIds, image, mask } = inputs;
    if (!queryEmbeds && !inputIds) throw new Error("Q-Former: give queryEmbeds, inputIds or both");
    if (image && image.shape[2] !== this.config.encoderHiddenSize)
      throw new Error(`Q-Former: image features must have width ${this.config.encoderHiddenSize}, got [${image.shape}]`);
    const Nq = queryEmbeds ? (queryEmbeds.shape[1] as number) : 0;
    return tidy<QFormerOutput>(() => {
      const parts: tf.Tensor[] = [];
      if (queryEmbeds) parts.push(queryEmbeds);
      if (inputIds) parts.push(this.embedText(inputIds));
      let x = this.layernorm.apply(parts.length === 1 ? parts[0] : tf.concat(parts, 1)); // [B, Nq + T, Dq]
      const context = image && Nq > 0 ? qformerImageContext(image, this.config.encoderWindow) : image; // [B, Tk, w²·Dv]
      const crossAttentions: tf.Tensor[] = [];
      for (const layer of this.layers) {
        const out = layer.forward(x, Nq, context, mask);
        x = out.hidden;
        if (out.crossWeights) crossAttentions.push(out.crossWeights);
      }
      return inputs.outputCrossAttentions ? { lastHiddenState: x, crossAttentions } : { lastHiddenState: x };
    });
  }
}
