/**
 * softmax(x·scale + mask) over the last axis — the attention weights of scaled dot-product attention —
 * in one fused kernel forward and one backward on `native` (C++) and `webgpu` (WGSL), the composite
 * elsewhere. The mask gets no gradient.
 *
 * Reference: Megatron-LM's `FusedScaleMaskSoftmax`.
 */
import * as tf from "@tensorflow/tfjs";
import { defineKernel, hasFusedKernels } from "../registry";
import { scaledMaskedSoftmaxComposite } from "./composite";
import { scaledMaskedSoftmaxNative, scaledSoftmaxGradNative } from "./native";
import { scaledMaskedSoftmaxWebGpu, scaledSoftmaxGradWebGpu } from "./webgpu";

export { scaledMaskedSoftmaxComposite };

export const MASKED_SOFTMAX_KERNEL = "MllmScaledMaskedSoftmax";
export const SOFTMAX_GRAD_KERNEL = "MllmScaledSoftmaxGrad";

export const SCALED_MASKED_SOFTMAX = defineKernel({
  op: "scaledMaskedSoftmax",
  summary: "softmax(x·scale + mask) over the last axis; (x, mask?) → y, gradient (y, dy) → dx",
  composite: scaledMaskedSoftmaxComposite,
  kernels: {
    [MASKED_SOFTMAX_KERNEL]: { native: scaledMaskedSoftmaxNative, webgpu: scaledMaskedSoftmaxWebGpu },
    [SOFTMAX_GRAD_KERNEL]: { native: scaledSoftmaxGradNative, webgpu: scaledSoftmaxGradWebGpu },
  },
});

/**
 * x: [..., Tq, Tk]; mask (additive, optional): [Tq, Tk], the same for every leading index.
 * @returns [..., Tq, Tk], each row summing to 1
 */
export function scaledMaskedSoftmax(x: tf.Tensor, scale: number, mask?: tf.Tensor): tf.Tensor {
  const [Tq, Tk] = x.shape.slice(-2);
  const maskFits = !mask || (mask.rank === 2 && mask.shape[0] === Tq && mask.shape[1] === Tk && mask.dtype === "float32");
  if (x.dtype !== "float32" || x.rank < 2 || !maskFits || !hasFusedKernels(SCALED_MASKED_SOFTMAX)) {
    return scaledMaskedSoftmaxComposite(x, scale, mask);
  }
  const fused = tf.customGrad(((input: tf.Tensor, save: tf.GradSaveFunc) => {
    const inputs: Record<string, tf.Tensor> = mask ? { x: input, mask } : { x: input };
    const y = tf.engine().runKernel(MASKED_SOFTMAX_KERNEL, inputs, { scale }) as tf.Tensor;
    save([y]);
    return {
      value: y,
      gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) =>
        tf.engine().runKernel(SOFTMAX_GRAD_KERNEL, { y: saved[0], dy }, { scale }) as tf.Tensor,
    };
  }) as any);
  return fused(x);
}
