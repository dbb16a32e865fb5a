/** GELU (tanh approximation) in plain tfjs ops: every backend runs it, autograd differentiates it. */
import * as tf from "@tensorflow/tfjs";

/** x: any shape → same shape: 0.5·x·(1 + tanh(√(2/π)·(x + 0.044715·x³))). */
export function geluComposite(x: tf.Tensor): tf.Tensor {
  return tf.tidy(() => {
    const inner = x.add(x.mul(x).mul(x).mul(0.044715)).mul(Math.sqrt(2 / Math.PI));
    return x.mul(0.5).mul(tf.tanh(inner).add(1));
  });
}
