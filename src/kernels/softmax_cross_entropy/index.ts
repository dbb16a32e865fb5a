/**
 * Softmax cross-entropy: the mean over rows of −log softmax(logits)[target], the language-model loss,
 * with its gradient (softmax − onehot)/N in one kernel. On `webgpu`: 2 dispatches forward (the rows'
 * losses, their mean) and 1 backward, against about 20 for tfjs's log-softmax, one-hot, product, sum
 * and mean with their gradients (issue 21: the GPT step's dispatch count). Backends without the kernels
 * (`native`, `cpu`) run the composite, the same ops as train/loss.ts's crossEntropy before.
 *
 * Reference: torch.nn.functional.cross_entropy; Megatron-LM's fused `vocab_parallel_cross_entropy`.
 */
import * as tf from "@tensorflow/tfjs";
import { defineKernel, hasFusedKernels } from "../registry";
import { softmaxCrossEntropyComposite } from "./composite";
import { softmaxCrossEntropyGradWebGpu, softmaxCrossEntropyWebGpu } from "./webgpu";

export { softmaxCrossEntropyComposite };

export const SOFTMAX_CROSS_ENTROPY_KERNEL = "MllmSoftmaxCrossEntropy";
export const SOFTMAX_CROSS_ENTROPY_GRAD_KERNEL = "MllmSoftmaxCrossEntropyGrad";

export const SOFTMAX_CROSS_ENTROPY = defineKernel({
  op: "softmaxCrossEntropy",
  summary:
    "mean over rows of −log softmax(logits)[target]; (logits, targets) → the rows' losses, gradient (logits, targets, dy) → d logits",
  composite: softmaxCrossEntropyComposite,
  kernels: {
    [SOFTMAX_CROSS_ENTROPY_KERNEL]: { webgpu: softmaxCrossEntropyWebGpu },
    [SOFTMAX_CROSS_ENTROPY_GRAD_KERNEL]: { webgpu: softmaxCrossEntropyGradWebGpu },
  },
});

/**
 * logits: [N, V] float32, targets: [N] int32 → scalar mean loss (a target outside [0, V) adds 0 and
 * still counts in the mean, as with a one-hot of it). The targets get no gradient.
 */
export function softmaxCrossEntropy(logits: tf.Tensor2D, targets: tf.Tensor1D): tf.Scalar {
  if (logits.rank !== 2 || targets.rank !== 1 || targets.shape[0] !== logits.shape[0])
    throw new Error(`softmaxCrossEntropy: expected logits [N, V] and targets [N], got [${logits.shape}] and [${targets.shape}]`);
  if (targets.dtype !== "int32") throw new Error(`softmaxCrossEntropy: targets must be int32, got ${targets.dtype}`);
  if (logits.dtype !== "float32" || !hasFusedKernels(SOFTMAX_CROSS_ENTROPY)) return softmaxCrossEntropyComposite(logits, targets);
  const fused = tf.customGrad(((input: tf.Tensor2D, save: tf.GradSaveFunc) => {
    save([input, targets]); // tfjs keeps saved copies: the caller's targets may be freed before the backward pass
    const losses = tf.engine().runKernel(SOFTMAX_CROSS_ENTROPY_KERNEL, { logits: input, targets }) as tf.Tensor1D; // [N]
    const value = losses.mean() as tf.Scalar;
    losses.dispose();
    return {
      value,
      gradFunc: (dy: tf.Scalar, saved: tf.Tensor[]) =>
        tf.engine().runKernel(SOFTMAX_CROSS_ENTROPY_GRAD_KERNEL, { logits: saved[0], targets: saved[1], dy }) as tf.Tensor2D, // [N, V]
    };
  }) as any);
  return fused(logits) as tf.Scalar;
}
