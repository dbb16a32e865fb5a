/**
 * A pre-norm transformer block: x + Attention(LN(x)), then + MLP(LN(·)).
 *
 * Paper: Xiong et al., "On Layer Normalization in the Transformer Architecture" (2020);
 * Reference: nanoGPT `Block`.
 *
 * Same structure as nn/pre_norm_encoder_layer.ts (CLIP's and BLIP-2's layer),
 * kept separate because lab 00 builds this one by hand: its parameter names
 * (`norm1`, `attention`, `norm2`, `mlp.up`, `mlp.down`), its fixed GELU MLP and
 * its additive mask tensor are what the lab teaches and stores.
 */
import * as tf from "@tensorflow/tfjs";
import { Module } from "./module";
import { LayerNorm } from "./layer_norm";
import { MultiHeadAttention } from "./multi_head_attention";
import { MLP } from "./mlp";
import { Random } from "../util/random";

/** Options for {@link TransformerBlock}. */
export interface TransformerBlockArgs {
  dim: number;
  heads: number;
  /** MLP hidden width. Default 4·dim. */
  hiddenDim?: number;
  seed: number;
}

export class TransformerBlock extends Module {
  readonly norm1: LayerNorm;
  readonly attention: MultiHeadAttention;
  readonly norm2: LayerNorm;
  readonly mlp: MLP;

  constructor(args: TransformerBlockArgs) {
    super();
    const random = new Random(args.seed);
    this.norm1 = this.module("norm1", new LayerNorm({ dim: args.dim }));
    this.attention = this.module(
      "attention",
      new MultiHeadAttention({ dim: args.dim, heads: args.heads, seed: random.nextSeed() }),
    );
    this.norm2 = this.module("norm2", new LayerNorm({ dim: args.dim }));
    this.mlp = this.module("mlp", new MLP({ dim: args.dim, hiddenDim: args.hiddenDim, seed: random.nextSeed() }));
  }

  /** x: [B, T, D], mask additive [T, T] → [B, T, D] */
  apply(x: tf.Tensor, mask?: tf.Tensor): tf.Tensor {
    return tf.tidy(() => {
      const h = x.add(this.attention.apply(this.norm1.apply(x), mask));
      return h.add(this.mlp.apply(this.norm2.apply(h)));
    });
  }

  /** As {@link apply}, also returning the attention weights [B, H, T, T]. */
  applyWithWeights(x: tf.Tensor, mask?: tf.Tensor): { output: tf.Tensor; weights: tf.Tensor } {
    return tf.tidy(() => {
      const attended = this.attention.applyWithWeights(this.norm1.apply(x), mask);
      const h = x.add(attended.output);
      return { output: h.add(this.mlp.apply(this.norm2.apply(h))), weights: attended.weights };
    });
  }
}
