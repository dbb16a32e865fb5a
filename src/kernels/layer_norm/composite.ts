/** Layer normalisation in plain tfjs ops: every backend runs it, autograd differentiates it. */
import * as tf from "@tensorflow/tfjs";

/** x: [..., D], gamma, beta: [D] → [..., D]: (x − mean)/√(var + eps)·γ + β over the last axis. */
export function layerNormComposite(x: tf.Tensor, gamma: tf.Tensor, beta: tf.Tensor, eps: number): tf.Tensor {
  return tf.tidy(() => {
    const { mean, variance } = tf.moments(x, -1, true); // [..., 1] each
    return x
      .sub(mean)
      .mul(tf.rsqrt(variance.add(eps)))
      .mul(gamma)
      .add(beta);
  });
}
