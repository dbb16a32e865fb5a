/**
 * GPT: a decoder-only transformer language model (token and learned position
 * embeddings, pre-norm blocks with causal self-attention, final LayerNorm,
 * a linear head to the vocabulary).
 *
 * Paper: Radford et al., "Language Models are Unsupervised Multitask Learners" (GPT-2, 2019).
 * Reference: nanoGPT `GPT` (https://github.com/karpathy/nanoGPT/blob/master/model.py).
 */
import * as tf from "@tensorflow/tfjs";
import { Module } from "../nn/module";
import { Embedding } from "../nn/embedding";
import { LayerNorm } from "../nn/layer_norm";
import { Linear } from "../nn/linear";
import { TransformerBlock } from "../nn/transformer_block";
import { causalMask } from "../nn/attention";
import { Random } from "../util/random";
import { tidy } from "../util/tidy";

/** GPT's configuration. Defaults are filled by {@link resolveGPTConfig}. */
export interface GPTConfig {
  /** Vocabulary size V. */
  readonly vocabSize: number;
  /** Longest sequence T (positions learned). */
  readonly contextLength: number;
  /** Model width D. */
  readonly dim: number;
  /** Number of transformer blocks. */
  readonly layers: number;
  /** Attention heads H per block; must divide D. */
  readonly heads: number;
  /** Seed of every initialiser. Default 0. */
  readonly seed?: number;
}

export type ResolvedGPTConfig = Required<GPTConfig>;

/** Fills GPT's defaults once and checks the sizes (idempotent). */
export function resolveGPTConfig(config: GPTConfig): ResolvedGPTConfig {
  for (const key of ["vocabSize", "contextLength", "dim", "layers", "heads"] as const) {
    if (!Number.isInteger(config[key]) || config[key] <= 0)
      throw new Error(`GPT: config.${key} must be a positive integer, got ${config[key]}`);
  }
  if (config.dim % config.heads !== 0) throw new Error(`GPT: heads (${config.heads}) must divide dim (${config.dim})`);
  return {
    vocabSize: config.vocabSize,
    contextLength: config.contextLength,
    dim: config.dim,
    layers: config.layers,
    heads: config.heads,
    seed: config.seed ?? 0,
  };
}

/** Options of {@link GPT.forward}. */
export interface GPTForwardOptions {
  /** Also return every block's attention weights. Default false. */
  readonly outputAttentions?: boolean;
}

/** What {@link GPT.forward} returns. */
export interface GPTOutput {
  /** [B, T, V] */
  logits: tf.Tensor;
  /** With `outputAttentions`: one per block, [B, H, T, T], each row summing to 1 (row i over keys 0…i). */
  attentions?: tf.Tensor[];
}

/** Named sizes. Parameter counts are for the vocabulary given. */
export const GPT_PRESETS = {
  /** ≈ 27k parameters at V = 16, T = 16: lab 00's sequence tasks; trains in a minute on 2 CPU cores. */
  "gpt-pico": { dim: 32, layers: 2, heads: 2 },
  /** ≈ 0.1M parameters at V = 64: small text experiments. */
  "gpt-nano": { dim: 48, layers: 3, heads: 3 },
  /** ≈ 3.3M parameters at V = 256, T = 128: the engine's benchmark model. */
  "gpt-micro": { dim: 256, layers: 4, heads: 4 },
} as const;

export class GPT extends Module {
  readonly config: ResolvedGPTConfig;
  readonly tokenEmbedding: Embedding;
  readonly positionEmbedding: Embedding;
  readonly blocks: TransformerBlock[];
  readonly finalNorm: LayerNorm;
  readonly head: Linear;

  constructor(options: GPTConfig) {
    super();
    const config = (this.config = resolveGPTConfig(options));
    const random = new Random(config.seed);
    this.tokenEmbedding = this.module(
      "tokenEmbedding",
      new Embedding({ numEmbeddings: config.vocabSize, embeddingDim: config.dim, seed: random.nextSeed() }),
    );
    this.positionEmbedding = this.module(
      "positionEmbedding",
      new Embedding({ numEmbeddings: config.contextLength, embeddingDim: config.dim, seed: random.nextSeed() }),
    );
    this.blocks = [];
    for (let i = 0; i < config.layers; i++) {
      this.blocks.push(
        this.module(`blocks.${i}`, new TransformerBlock({ dim: config.dim, heads: config.heads, seed: random.nextSeed() })),
      );
    }
    this.finalNorm = this.module("finalNorm", new LayerNorm({ dim: config.dim }));
    this.head = this.module(
      "head",
      new Linear({ inFeatures: config.dim, outFeatures: config.vocabSize, bias: false, seed: random.nextSeed() }),
    );
  }

  /** ids: [B, T] int32 → logits [B, T, V] */
  apply(ids: tf.Tensor): tf.Tensor {
    return this.forward(ids).logits;
  }

  /**
   * ids: [B, T] int32 → logits [B, T, V] and, with `outputAttentions`, each
   * block's attention weights (numLayers of [B, H, T, T]).
   */
  forward(ids: tf.Tensor, options: GPTForwardOptions = {}): GPTOutput {
    if (ids.rank !== 2) throw new Error(`GPT: expected ids [B, T], got [${ids.shape.join(", ")}]`);
    const [, T] = ids.shape;
    if (T > this.config.contextLength)
      throw new Error(`GPT: sequence length ${T} exceeds contextLength ${this.config.contextLength}`);
    return tidy(() => {
      const positions = tf.range(0, T, 1, "int32"); // [T]
      let x = this.tokenEmbedding.apply(ids).add(this.positionEmbedding.apply(positions)); // [B, T, D] + [T, D]
      const mask = causalMask(T); // [T, T]
      const attentions: tf.Tensor[] = [];
      for (const block of this.blocks) {
        if (!options.outputAttentions) {
          x = block.apply(x, mask);
          continue;
        }
        const { output, weights } = block.applyWithWeights(x, mask);
        x = output;
        attentions.push(weights); // [B, H, T, T]
      }
      const logits = this.head.apply(this.finalNorm.apply(x)); // [B, T, V]
      return options.outputAttentions ? { logits, attentions } : { logits };
    });
  }
}
