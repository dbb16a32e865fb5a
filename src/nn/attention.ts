/**
 * Scaled dot-product attention: softmax(Q·Kᵀ / √Dh + mask) · V.
 *
 * Paper: Vaswani et al., "Attention Is All You Need" (2017), §3.2.1.
 * Reference: torch.nn.functional.scaled_dot_product_attention.
 */
import * as tf from "@tensorflow/tfjs";
import { scaledMaskedSoftmax } from "../kernels/masked_softmax";
import { causalMask } from "./masks";

/** The output of attention and the weights that made it. */
export interface AttentionResult {
  /** [B, H, Tq, Dh] */
  output: tf.Tensor;
  /** [B, H, Tq, Tk]; each row sums to 1. */
  weights: tf.Tensor;
}

/** The causal mask builder lives with the other masks (nn/masks.ts); exported here too, where lab 00 finds it. */
export { causalMask };

/**
 * q: [B, H, Tq, Dh], k: [B, H, Tk, Dh], v: [B, H, Tk, Dh];
 * mask: additive, broadcastable to [B, H, Tq, Tk] (e.g. [Tq, Tk] from `causalMask`).
 */
export function scaledDotProductAttention(q: tf.Tensor, k: tf.Tensor, v: tf.Tensor, mask?: tf.Tensor): AttentionResult {
  if (q.rank !== 4 || k.rank !== 4 || v.rank !== 4) {
    throw new Error(
      `scaledDotProductAttention: expected rank-4 q, k, v [B, H, T, Dh], got [${q.shape}], [${k.shape}], [${v.shape}]`,
    );
  }
  const Dh = q.shape[3] as number;
  if (k.shape[3] !== Dh) throw new Error(`scaledDotProductAttention: q has Dh=${Dh} but k has ${k.shape[3]}`);
  if (k.shape[2] !== v.shape[2]) throw new Error(`scaledDotProductAttention: k has Tk=${k.shape[2]} but v has ${v.shape[2]}`);
  return tf.tidy(() => {
    const scores = tf.matMul(q, k, false, true); // [B,H,Tq,Dh]·[B,H,Tk,Dh]ᵀ → [B,H,Tq,Tk]
    const weights = scaledMaskedSoftmax(scores, 1 / Math.sqrt(Dh), mask); // softmax(scores/√Dh + mask): [B, H, Tq, Tk]
    const output = tf.matMul(weights, v); // [B,H,Tq,Tk]·[B,H,Tk,Dh] → [B,H,Tq,Dh]
    return { output, weights };
  });
}

/**
 * Grouped-query attention's key/value sharing: each of the Hkv heads serves
 * H/Hkv query heads in turn (torch's `repeat_interleave` on the head axis).
 * x: [B, Hkv, T, Dh] → [B, Hkv·repeats, T, Dh]
 */
export function repeatKeyValue(x: tf.Tensor, repeats: number): tf.Tensor {
  if (repeats === 1) return x.clone();
  const [B, Hkv, T, Dh] = x.shape;
  return tf.tidy(() =>
    x
      .reshape([B * Hkv, 1, T * Dh]) // rank 3: WebGPU's tile runs rank ≤ 4 on the GPU
      .tile([1, repeats, 1]) // [B·Hkv, repeats, T·Dh]
      .reshape([B, Hkv * repeats, T, Dh]),
  );
}

/** [B, T, H·Dh] → [B, H, T, Dh] */
export function splitHeads(x: tf.Tensor, heads: number): tf.Tensor {
  const [B, T, width] = x.shape;
  return tf.tidy(() => x.reshape([B, T, heads, width / heads]).transpose([0, 2, 1, 3]));
}

/** [B, H, T, Dh] → [B, T, H·Dh] */
export function mergeHeads(x: tf.Tensor): tf.Tensor {
  const [B, H, T, Dh] = x.shape;
  return tf.tidy(() => x.transpose([0, 2, 1, 3]).reshape([B, T, H * Dh]));
}
