/**
 * Cross-entropy of logits against integer targets, averaged over the positions
 * whose weight is non-zero (a mask excludes padding or prompt positions).
 */
import * as tf from "@tensorflow/tfjs";
import { softmaxCrossEntropy } from "../kernels/softmax_cross_entropy";

/**
 * logits: [..., V]; targets: [...] int32; weights (optional): [...] 0/1 float.
 * @returns scalar mean negative log-likelihood
 */
export function crossEntropy(logits: tf.Tensor, targets: tf.Tensor, weights?: tf.Tensor): tf.Scalar {
  checkTargets("crossEntropy", logits, targets);
  return tf.tidy(() => {
    // Unweighted: the fused op (one kernel forward and one backward on webgpu; the same tfjs ops as below elsewhere).
    if (!weights) {
      const V = logits.shape[logits.rank - 1];
      return softmaxCrossEntropy(logits.reshape([-1, V]) as tf.Tensor2D, targets.reshape([-1]) as tf.Tensor1D); // [N, V], [N]
    }
    const { logLikelihood, weight } = weightedLogLikelihood(logits, targets, weights);
    return logLikelihood.div(weight.maximum(1)).neg() as tf.Scalar;
  });
}

/**
 * The two sums a weighted cross-entropy divides: Σ w · log p(target) and Σ w. A loss over several batches (a batch in
 * parts of different lengths) adds each batch's sums and divides once, and is the loss of their rows as one batch.
 * logits: [..., V]; targets: [...] int32; weights: [...] → two scalars
 */
export function weightedLogLikelihood(
  logits: tf.Tensor,
  targets: tf.Tensor,
  weights: tf.Tensor,
): { logLikelihood: tf.Scalar; weight: tf.Scalar } {
  checkTargets("weightedLogLikelihood", logits, targets);
  const V = logits.shape[logits.rank - 1];
  const [logLikelihood, weight] = tf.tidy(() => {
    const logProbs = tf.logSoftmax(logits.reshape([-1, V])); // [N, V]
    const picked = logProbs.mul(tf.oneHot(targets.reshape([-1]), V, 1, 0, "float32")).sum(-1); // [N]; a float one-hot needs no cast
    const w = weights.reshape([-1]).toFloat();
    return [picked.mul(w).sum() as tf.Scalar, w.sum() as tf.Scalar];
  });
  return { logLikelihood, weight };
}

function checkTargets(where: string, logits: tf.Tensor, targets: tf.Tensor): void {
  if (targets.dtype !== "int32") throw new Error(`${where}: targets must be int32, got ${targets.dtype}`);
  if (logits.shape.slice(0, -1).join() !== targets.shape.join()) {
    throw new Error(`${where}: logits [${logits.shape}] and targets [${targets.shape}] disagree`);
  }
}
