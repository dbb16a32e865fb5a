/**
 * Layer normalisation over the last axis: (x − mean)/√(var + eps)·γ + β, with its backward pass in one
 * fused kernel each on `native` (C++) and `webgpu` (WGSL), the composite elsewhere.
 *
 * Paper: Ba, Kiros, Hinton, "Layer Normalization" (2016). Reference: torch.nn.functional.layer_norm.
 */
import * as tf from "@tensorflow/tfjs";
import { defineKernel, hasFusedKernels } from "../registry";
import { layerNormComposite } from "./composite";
import { layerNormGradNative, layerNormNative } from "./native";
import { layerNormGradWebGpu, layerNormWebGpu } from "./webgpu";

export { layerNormComposite };

export const LAYER_NORM_KERNEL = "MllmLayerNorm";
export const LAYER_NORM_GRAD_KERNEL = "MllmLayerNormGrad";

export const LAYER_NORM = defineKernel({
  op: "layerNorm",
  summary:
    "LayerNorm over the last axis; (x, gamma, beta) → (y, mean, rstd), gradient (dy, x, gamma, mean, rstd) → (dx, dgamma, dbeta)",
  composite: layerNormComposite,
  kernels: {
    [LAYER_NORM_KERNEL]: { native: layerNormNative, webgpu: layerNormWebGpu },
    [LAYER_NORM_GRAD_KERNEL]: { native: layerNormGradNative, webgpu: layerNormGradWebGpu },
  },
});

/** x: [..., D], gamma, beta: [D] → [..., D]. */
export function layerNorm(x: tf.Tensor, gamma: tf.Tensor, beta: tf.Tensor, eps = 1e-5): tf.Tensor {
  const D = x.shape[x.rank - 1];
  if (gamma.shape.join() !== `${D}` || beta.shape.join() !== `${D}`) {
    throw new Error(`layerNorm: gamma [${gamma.shape}] and beta [${beta.shape}] must be [${D}] for x [${x.shape}]`);
  }
  if (x.dtype !== "float32" || !hasFusedKernels(LAYER_NORM)) return layerNormComposite(x, gamma, beta, eps);
  const fused = tf.customGrad(((input: tf.Tensor, scale: tf.Tensor, shift: tf.Tensor, save: tf.GradSaveFunc) => {
    const [y, mean, rstd] = tf
      .engine()
      .runKernel(LAYER_NORM_KERNEL, { x: input, gamma: scale, beta: shift }, { eps }) as tf.Tensor[];
    save([input, scale, mean, rstd]);
    return {
      value: y,
      gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => {
        const [savedX, savedGamma, savedMean, savedRstd] = saved;
        return tf.engine().runKernel(LAYER_NORM_GRAD_KERNEL, {
          dy,
          x: savedX,
          gamma: savedGamma,
          mean: savedMean,
          rstd: savedRstd,
        }) as tf.Tensor[];
      },
    };
  }) as any);
  return fused(x, gamma, beta);
}
