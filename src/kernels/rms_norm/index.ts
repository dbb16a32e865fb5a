/**
 * RMS normalisation over the last axis: x / √(mean(x²) + eps) · weight, as Llama's `LlamaRMSNorm`
 * computes it, with one fused kernel forward and one backward on `native` (C++) and `webgpu` (WGSL),
 * the composite elsewhere.
 *
 * Paper: Zhang & Sennrich, "Root Mean Square Layer Normalization" (2019).
 * Reference: transformers `models/llama/modeling_llama.py` `LlamaRMSNorm`.
 */
import * as tf from "@tensorflow/tfjs";
import { defineKernel, hasFusedKernels } from "../registry";
import { rmsNormComposite } from "./composite";
import { rmsNormGradNative, rmsNormNative } from "./native";
import { rmsNormGradWebGpu, rmsNormWebGpu } from "./webgpu";

export { rmsNormComposite };

export const RMS_NORM_KERNEL = "MllmRmsNorm";
export const RMS_NORM_GRAD_KERNEL = "MllmRmsNormGrad";

export const RMS_NORM = defineKernel({
  op: "rmsNorm",
  summary: "RMSNorm over the last axis; (x, weight) → (y, rstd), gradient (dy, x, weight, rstd) → (dx, dweight)",
  composite: rmsNormComposite,
  kernels: {
    [RMS_NORM_KERNEL]: { native: rmsNormNative, webgpu: rmsNormWebGpu },
    [RMS_NORM_GRAD_KERNEL]: { native: rmsNormGradNative, webgpu: rmsNormGradWebGpu },
  },
});

/** x: [..., D], weight: [D] → [..., D]. */
export function rmsNorm(x: tf.Tensor, weight: tf.Tensor, eps = 1e-6): tf.Tensor {
  const D = x.shape[x.rank - 1];
  if (weight.shape.join() !== `${D}`) throw new Error(`rmsNorm: weight [${weight.shape}] must be [${D}] for x [${x.shape}]`);
  if (x.dtype !== "float32" || !hasFusedKernels(RMS_NORM)) return rmsNormComposite(x, weight, eps);
  const fused = tf.customGrad(((input: tf.Tensor, scale: tf.Tensor, save: tf.GradSaveFunc) => {
    const [y, rstd] = tf.engine().runKernel(RMS_NORM_KERNEL, { x: input, weight: scale }, { eps }) as tf.Tensor[];
    save([input, scale, rstd]);
    return {
      value: y,
      gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => {
        const [savedX, savedWeight, savedRstd] = saved;
        return tf
          .engine()
          .runKernel(RMS_NORM_GRAD_KERNEL, { dy, x: savedX, weight: savedWeight, rstd: savedRstd }) as tf.Tensor[];
      },
    };
  }) as any);
  return fused(x, weight);
}
