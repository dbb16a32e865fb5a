/**
 * Scaled dot-product attention: softmax(Q·Kᵀ / √Dh + mask) · V.
 *
 * Paper: Vaswani et al., "Attention Is All You Need" (2017), §3.2.1.
 * Reference: torch.nn.functional.scaled_dot_product_attention.
 */
import * as tf from "@tensorflow/tfjs";
import { scaledMaskedSoftmax } from "../kernels/masked_softmax";

/** The output of attention and the weights that made it. */
export interface AttentionResult {
  /** [B, H, Tq, Dh] */
  output: tf.Tensor;
  /** [B, H, Tq, Tk]; each row sums to 1. */
  weights: tf.Tensor;
}

/**
 * A causal mask: 0 where query i may attend to key j (j ≤ i), −∞ (−1e9) above the diagonal.
 * @returns [T, T] additive mask
 */
export function causalMask(T: number): tf.Tensor2D {
  if (!(Number.isInteger(T) && T > 0)) throw new Error(`causalMask: T must be a positive integer, got ${T}`);
  // Written directly: tf.linalg.bandPart builds it from int32 broadcasts, which run on slow generic paths.
  const values = new Float32Array(T * T);
  for (let i = 0; i < T - 1; i++) values.fill(-1e9, i * T + i + 1, (i + 1) * T); // row i: keys after i are masked
  return tf.tensor2d(values, [T, T]);
}

/**
 * q: [B, H, Tq, Dh], k: [B, H, Tk, Dh], v: [B, H, Tk, Dh];
 * mask: additive, broadcastable to [B, H, Tq, Tk] (e.g. [Tq, Tk] from {@link causalMask}).
 */
export function scaledDotProductAttention(q: tf.Tensor, k: tf.Tensor, v: tf.Tensor, mask?: tf.Tensor): AttentionResult {
  if (q.rank !== 4 || k.rank !== 4 || v.rank !== 4) {
    throw new Error(`scaledDotProductAttention: expected rank-4 q, k, v [B, H, T, Dh], got [${q.shape}], [${k.shape}], [${v.shape}]`);
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
