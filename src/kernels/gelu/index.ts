/**
 * GELU, tanh approximation (GPT-2's `gelu_new`, PyTorch's `gelu(approximate="tanh")`):
 * 0.5·x·(1 + tanh(√(2/π)·(x + 0.044715·x³))).
 *
 * Paper: Hendrycks & Gimpel, "Gaussian Error Linear Units" (2016).
 * Kernels: one forward and one backward on `native` (C++) and `webgpu` (WGSL), the composite elsewhere.
 */
import * as tf from "@tensorflow/tfjs";
import { defineKernel, hasFusedKernels } from "../registry";
import { geluComposite } from "./composite";
import { geluGradNative, geluNative } from "./native";
import { geluGradWebGpu, geluWebGpu } from "./webgpu";

export { geluComposite };

export const GELU_KERNEL = "MllmGeluTanh";
export const GELU_GRAD_KERNEL = "MllmGeluTanhGrad";

export const GELU = defineKernel({
  op: "gelu",
  summary: "GELU, tanh approximation; inputs x → y, gradient (x, dy) → dx",
  composite: geluComposite,
  kernels: {
    [GELU_KERNEL]: { native: geluNative, webgpu: geluWebGpu },
    [GELU_GRAD_KERNEL]: { native: geluGradNative, webgpu: geluGradWebGpu },
  },
  gradient: {
    kernelName: GELU_KERNEL,
    inputsToSave: ["x"],
    gradFunc: (dy, saved) => {
      const [x] = saved;
      return { x: () => tf.engine().runKernel(GELU_GRAD_KERNEL, { x, dy: dy as tf.Tensor }) as tf.Tensor };
    },
  },
});

/** x: any shape → same shape. */
export function gelu(x: tf.Tensor): tf.Tensor {
  if (x.dtype === "float32" && hasFusedKernels(GELU)) return tf.engine().runKernel(GELU_KERNEL, { x }) as tf.Tensor;
  return geluComposite(x);
}
