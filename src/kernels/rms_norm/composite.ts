/** RMS normalisation in plain tfjs ops: every backend runs it, autograd differentiates it. */
import * as tf from "@tensorflow/tfjs";

/** x: [..., D], weight: [D] → [..., D]: x / √(mean(x²) + eps) · weight over the last axis. */
export function rmsNormComposite(x: tf.Tensor, weight: tf.Tensor, eps: number): tf.Tensor {
  return tf.tidy(() => x.mul(tf.rsqrt(x.square().mean(-1, true).add(eps))).mul(weight));
}
