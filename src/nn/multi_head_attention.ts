/**
 * Multi-head self-attention: project to H heads of size Dh = D / H, attend in
 * each head, concatenate, project back.
 *
 * Paper: Vaswani et al. (2017), §3.2.2. Reference: nanoGPT `CausalSelfAttention`
 * (https://github.com/karpathy/nanoGPT/blob/master/model.py).
 */
import * as tf from "@tensorflow/tfjs";
import { Module } from "./module";
import { Linear } from "./linear";
import { scaledDotProductAttention, splitHeads, mergeHeads, type AttentionResult } from "./attention";
import { Random } from "../util/random";
import { mergedHeadsAttention } from "../kernels/merged_heads_attention";

/** Options for {@link MultiHeadAttention}. */
export interface MultiHeadAttentionArgs {
  /** Model width D. */
  dim: number;
  /** Number of heads H; must divide D. */
  heads: number;
  /** Seed of the projections' initialisers. */
  seed: number;
  /** Bias in the projections. Default true. */
  bias?: boolean;
}

export class MultiHeadAttention extends Module {
  readonly query: Linear;
  readonly key: Linear;
  readonly value: Linear;
  readonly output: Linear;
  readonly heads: number;
  readonly headDim: number;

  constructor(args: MultiHeadAttentionArgs) {
    super();
    if (args.dim % args.heads !== 0) throw new Error(`MultiHeadAttention: heads (${args.heads}) must divide dim (${args.dim})`);
    this.heads = args.heads;
    this.headDim = args.dim / args.heads;
    const random = new Random(args.seed);
    const linear = () => new Linear({ inFeatures: args.dim, outFeatures: args.dim, bias: args.bias, seed: random.nextSeed() });
    this.query = this.module("query", linear());
    this.key = this.module("key", linear());
    this.value = this.module("value", linear());
    this.output = this.module("output", linear());
  }

  /** [B, T, D] → [B, H, T, Dh] (nn/attention.ts's {@link splitHeads} with this layer's H) */
  splitHeads(x: tf.Tensor): tf.Tensor {
    return splitHeads(x, this.heads);
  }

  /** [B, H, T, Dh] → [B, T, D] (nn/attention.ts's {@link mergeHeads}) */
  mergeHeads(x: tf.Tensor): tf.Tensor {
    return mergeHeads(x);
  }

  /**
   * x: [B, T, D]; mask: additive, broadcastable to [B, H, T, T].
   * @returns output [B, T, D] and attention weights [B, H, T, T]
   */
  applyWithWeights(x: tf.Tensor, mask?: tf.Tensor): { output: tf.Tensor; weights: tf.Tensor } {
    return tf.tidy(() => {
      const q = this.splitHeads(this.query.apply(x)); // [B, H, T, Dh]
      const k = this.splitHeads(this.key.apply(x));
      const v = this.splitHeads(this.value.apply(x));
      const attended: AttentionResult = scaledDotProductAttention(q, k, v, mask);
      return { output: this.output.apply(this.mergeHeads(attended.output)), weights: attended.weights };
    });
  }

  /** x: [B, T, D] → [B, T, D] */
  apply(x: tf.Tensor, mask?: tf.Tensor): tf.Tensor {
    return tf.tidy(() => {
      // The heads stay in the merged layout [B, T, D]: on webgpu no split/merge transposes (kernels/merged_heads_attention).
      const attended = mergedHeadsAttention(this.query.apply(x), this.key.apply(x), this.value.apply(x), this.heads, mask); // [B, T, D]
      return this.output.apply(attended);
    });
  }
}
