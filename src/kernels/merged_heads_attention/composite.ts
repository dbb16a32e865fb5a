/** Attention over heads in the merged layout, in tfjs ops: what every backend without the op's kernel runs. */
import * as tf from "@tensorflow/tfjs";
import { scaledMaskedSoftmax } from "../masked_softmax";

/**
 * q: [B, Tq, H·Dh], k, v: [B, Tk, H·Dh]; mask: additive [Tq, Tk] or none → [B, Tq, H·Dh]: each head's
 * softmax(q·kᵀ/√Dh + mask)·v, heads merged back. The same ops as nn/attention.ts's splitHeads,
 * scaledDotProductAttention and mergeHeads.
 */
export function mergedHeadsAttentionComposite(
  q: tf.Tensor,
  k: tf.Tensor,
  v: tf.Tensor,
  heads: number,
  mask?: tf.Tensor,
): tf.Tensor {
  return tf.tidy(() => {
    const split = (x: tf.Tensor) => {
      const [B, T, width] = x.shape;
      return x.reshape([B, T, heads, width / heads]).transpose([0, 2, 1, 3]); // [B, T, H, Dh] → [B, H, T, Dh]
    };
    const Dh = (q.shape[2] as number) / heads;
    const scores = tf.matMul(split(q), split(k), false, true); // [B,H,Tq,Dh]·[B,H,Tk,Dh]ᵀ → [B,H,Tq,Tk]
    const weights = scaledMaskedSoftmax(scores, 1 / Math.sqrt(Dh), mask); // [B, H, Tq, Tk]
    const output = tf.matMul(weights, split(v)); // [B,H,Tq,Tk]·[B,H,Tk,Dh] → [B,H,Tq,Dh]
    const [B, H, Tq] = output.shape;
    return output.transpose([0, 2, 1, 3]).reshape([B, Tq, H * Dh]); // [B, Tq, H, Dh] → [B, Tq, H·Dh]
  });
}
