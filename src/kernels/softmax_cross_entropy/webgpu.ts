/**
 * Softmax cross-entropy on the `webgpu` backend: one row-wise WGSL program (a workgroup per row) for the
 * rows' losses, one for the gradient of their mean with respect to the logits.
 */
import type * as tf from "@tensorflow/tfjs";
import type { KernelArgs } from "../registry";
import { ROW_THREADS, runRowwise } from "../webgpu_programs";

// The row's maximum and log Σ exp(x − max), from the threads of its workgroup (uniform control flow).
const LOG_SUM_EXP = `
      var localMax = -3.402823e+38;
      for (var c = tid; c < cols; c += ${ROW_THREADS}) { localMax = max(localMax, logits[base + c]); }
      let rowMax = maxOf(localMax);
      var localSum = 0.0;
      for (var c = tid; c < cols; c += ${ROW_THREADS}) { localSum += exp(logits[base + c] - rowMax); }
      let logSum = log(sum(localSum));
      var picked = -1;
      if (rowActive) { picked = targets[row]; }
      let picks = picked >= 0 && picked < cols;`;

/** inputs logits [N, V], targets [N] int32 → the rows' losses [N]: log Σ exp(logits) − logits[target] (0 when target ∉ [0, V)). */
export function softmaxCrossEntropyWebGpu({ inputs, backend }: KernelArgs): tf.TensorInfo {
  const { logits, targets } = inputs;
  const [rows, cols] = logits.shape;
  const body = `${LOG_SUM_EXP}
      if (tid == 0) {
        var loss = 0.0;
        if (picks) { loss = rowMax + logSum - logits[base + picked]; }
        put(row, loss);
      }`;
  return runRowwise(backend, "softmax_cross_entropy", { logits, targets }, [rows], rows, cols, body);
}

/**
 * inputs logits [N, V], targets [N] int32, dy (the mean loss's gradient, one value); attrs rows N →
 * d logits [N, V] = dy/N · (softmax(logits) − onehot(target)) (0 in rows whose target ∉ [0, V)).
 */
export function softmaxCrossEntropyGradWebGpu({ inputs, backend }: KernelArgs): tf.TensorInfo {
  const { logits, targets, dy } = inputs;
  const [rows, cols] = logits.shape;
  const body = `${LOG_SUM_EXP}
      var scale = 0.0;
      if (picks) { scale = dy[0] / f32(uniforms.rows); }
      for (var c = tid; c < cols; c += ${ROW_THREADS}) {
        var onehot = 0.0;
        if (c == picked) { onehot = 1.0; }
        put(base + c, scale * (exp(logits[base + c] - rowMax - logSum) - onehot));
      }`;
  return runRowwise(backend, "softmax_cross_entropy_grad", { logits, targets, dy }, logits.shape, rows, cols, body);
}
