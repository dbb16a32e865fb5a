/**
 * One AdamW step for one parameter, in one fused kernel on `native` (C++; three WGSL programs on
 * `webgpu`), the composite elsewhere. The optimizer (src/train/adamw.ts) calls it per parameter.
 *
 * Papers: Kingma & Ba, "Adam" (2015); Loshchilov & Hutter, "Decoupled Weight Decay Regularization"
 * (2019). Reference: torch.optim.AdamW (eps added to √v̂).
 */
import * as tf from "@tensorflow/tfjs";
import { defineKernel, hasFusedKernels } from "../registry";
import type { AdamWStepAttrs } from "./attrs";
import { adamwStepComposite } from "./composite";
import { adamwNative } from "./native";
import { adamwWebGpu } from "./webgpu";

export { adamwStepComposite, type AdamWStepAttrs };

export const ADAMW_KERNEL = "MllmAdamW";

export const ADAMW = defineKernel({
  op: "adamwStep",
  summary: "one AdamW step; (param, grad, m, v) → (param', m', v')",
  composite: adamwStepComposite,
  kernels: { [ADAMW_KERNEL]: { native: adamwNative, webgpu: adamwWebGpu } },
});

/** param, grad, m, v: one shape → [param', m', v'] (new tensors; the inputs are not disposed). */
export function adamwStep(
  param: tf.Tensor,
  grad: tf.Tensor,
  m: tf.Tensor,
  v: tf.Tensor,
  attrs: AdamWStepAttrs,
): [tf.Tensor, tf.Tensor, tf.Tensor] {
  if (param.dtype === "float32" && hasFusedKernels(ADAMW)) {
    return tf.engine().runKernel(ADAMW_KERNEL, { param, grad, m, v }, { ...attrs }) as [tf.Tensor, tf.Tensor, tf.Tensor];
  }
  return adamwStepComposite(param, grad, m, v, attrs);
}
