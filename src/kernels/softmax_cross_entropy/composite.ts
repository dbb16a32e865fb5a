/** Softmax cross-entropy in tfjs ops: what every backend without the op's kernels runs. */
import * as tf from "@tensorflow/tfjs";

/**
 * logits: [N, V], targets: [N] int32 → scalar mean over the N rows of −log softmax(logits)[target]
 * (a target outside [0, V) picks nothing: its row adds 0 and still counts in the mean). The same ops
 * as train/loss.ts's crossEntropy without weights.
 */
export function softmaxCrossEntropyComposite(logits: tf.Tensor2D, targets: tf.Tensor1D): tf.Scalar {
  return tf.tidy(() => {
    const V = logits.shape[1];
    const logProbs = tf.logSoftmax(logits); // [N, V]
    const picked = logProbs.mul(tf.oneHot(targets, V, 1, 0, "float32")).sum(-1); // [N]; a float one-hot needs no cast
    return picked.mean().neg() as tf.Scalar;
  });
}
