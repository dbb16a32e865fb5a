/**
 * GELU, tanh approximation (GPT-2's `gelu_new`, PyTorch's `gelu(approximate="tanh")`):
 * 0.5·x·(1 + tanh(√(2/π)·(x + 0.044715·x³))).
 *
 * Paper: Hendrycks & Gimpel, "Gaussian Error Linear Units" (2016).
 * One fused kernel forward and one backward on backends that register
 * `MllmGeluTanh` (the native backend); the same math in tfjs ops elsewhere.
 */
import * as tf from "@tensorflow/tfjs";

export const GELU_KERNEL = "MllmGeluTanh";
export const GELU_GRAD_KERNEL = "MllmGeluTanhGrad";

let gradientRegistered = false;

function registerGradient(): void {
  if (gradientRegistered) return;
  gradientRegistered = true;
  tf.registerGradient({
    kernelName: GELU_KERNEL,
    inputsToSave: ["x"],
    gradFunc: (dy, saved) => {
      const [x] = saved;
      return { x: () => tf.engine().runKernel(GELU_GRAD_KERNEL, { x, dy: dy as tf.Tensor }) as tf.Tensor };
    },
  });
}

/** The same function in plain tfjs ops (every backend; autograd differentiates it). */
export function geluComposite(x: tf.Tensor): tf.Tensor {
  return tf.tidy(() => {
    const inner = x.add(x.mul(x).mul(x).mul(0.044715)).mul(Math.sqrt(2 / Math.PI));
    return x.mul(0.5).mul(tf.tanh(inner).add(1));
  });
}

/** x: any shape → same shape. */
export function gelu(x: tf.Tensor): tf.Tensor {
  if (x.dtype === "float32" && tf.getKernel(GELU_KERNEL, tf.getBackend()) && tf.getKernel(GELU_GRAD_KERNEL, tf.getBackend())) {
    registerGradient();
    return tf.engine().runKernel(GELU_KERNEL, { x }) as tf.Tensor;
  }
  return geluComposite(x);
}
