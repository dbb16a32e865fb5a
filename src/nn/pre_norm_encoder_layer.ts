/**
 * A pre-norm transformer encoder layer: h = x + attention(LN₁(x)), then
 * h + FFN(LN₂(h)) — CLIP's and BLIP-2's ViT layers (and the labs' audio
 * encoder), with their checkpoint names `layer_norm1`, `self_attn`,
 * `layer_norm2`, `mlp.fc1`, `mlp.fc2`. The attention is given, so the same
 * layer serves separate q/k/v projections (CLIP) and a fused qkv (BLIP-2).
 *
 * Paper: Xiong et al., "On Layer Normalization in the Transformer Architecture" (2020).
 * Reference: transformers `models/clip/modeling_clip.py` (`CLIPEncoderLayer`),
 * `models/blip_2/modeling_blip_2.py` (`Blip2EncoderLayer`).
 * Same structure as nn/transformer_block.ts (`TransformerBlock`), kept
 * separate because that block's parameter names (`norm1`, `attention`,
 * `mlp.up`) and additive-tensor mask are lab 00's GPT.
 */
import * as tf from "@tensorflow/tfjs";
import { Module } from "./module";
import { LayerNorm } from "./layer_norm";
import type { FeedForward } from "./feed_forward";
import type { AttentionMask } from "./masks";

/** A self-attention module: x [B, T, D] (and a mask) → [B, T, D]. */
export interface SelfAttentionModule extends Module {
  apply(x: tf.Tensor, mask: AttentionMask): tf.Tensor;
}

/** Parts of a {@link PreNormEncoderLayer} (built by the caller, so each model keeps its own seeds). */
export interface PreNormEncoderLayerParts<A extends SelfAttentionModule> {
  /** Width D. */
  readonly dim: number;
  /** Epsilon of both LayerNorms. */
  readonly eps: number;
  readonly attention: A;
  readonly mlp: FeedForward;
}

export class PreNormEncoderLayer<A extends SelfAttentionModule = SelfAttentionModule> extends Module {
  readonly selfAttention: A;
  readonly norm1: LayerNorm;
  readonly mlp: FeedForward;
  readonly norm2: LayerNorm;

  constructor(parts: PreNormEncoderLayerParts<A>) {
    super();
    this.selfAttention = this.module("self_attn", parts.attention);
    this.norm1 = this.module("layer_norm1", new LayerNorm({ dim: parts.dim, eps: parts.eps }));
    this.mlp = this.module("mlp", parts.mlp);
    this.norm2 = this.module("layer_norm2", new LayerNorm({ dim: parts.dim, eps: parts.eps }));
  }

  /** x: [B, T, D]; mask (default none: every token sees every token) → [B, T, D] */
  apply(x: tf.Tensor, mask: AttentionMask = {}): tf.Tensor {
    return tf.tidy(() => {
      const h = x.add(this.selfAttention.apply(this.norm1.apply(x), mask));
      return h.add(this.mlp.apply(this.norm2.apply(h)));
    });
  }
}
