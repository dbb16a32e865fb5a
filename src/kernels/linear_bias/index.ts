/**
 * A linear layer's product with its bias, y = x·Wᵀ + b (PyTorch's weight layout), whose backward pass
 * takes the bias gradient Σ_rows dy in one kernel: on `webgpu` a column-wise WGSL program instead of
 * tfjs's transpose and reduction (issue 21: the GPT step's dispatch count). The forward pass and the
 * products of the backward pass are tfjs's own (`_FusedMatMul`, `BatchMatMul`). Backends without the
 * kernel (`native`, `cpu`) run the composite, tfjs's fused product with its own gradient, unchanged.
 *
 * Reference: torch.nn.functional.linear; tfjs's `fused.matMul` gradient (tfjs-core `fused/mat_mul.ts`).
 */
import * as tf from "@tensorflow/tfjs";
import { defineKernel, hasFusedKernels } from "../registry";
import { linearWithBiasComposite } from "./composite";
import { biasGradWebGpu } from "./webgpu";

export { linearWithBiasComposite };

export const BIAS_GRAD_KERNEL = "MllmBiasGrad";

export const LINEAR_WITH_BIAS = defineKernel({
  op: "linearWithBias",
  summary: "x·Wᵀ + b; gradient of the bias (dy [N, out]) → Σ over rows [out] in one kernel",
  composite: linearWithBiasComposite,
  kernels: { [BIAS_GRAD_KERNEL]: { webgpu: biasGradWebGpu } },
});

/** x: [N, in], weight: [out, in], bias: [out] → [N, out] */
export function linearWithBias(x: tf.Tensor2D, weight: tf.Tensor2D, bias: tf.Tensor1D): tf.Tensor2D {
  if (x.rank !== 2 || weight.rank !== 2 || bias.rank !== 1 || x.shape[1] !== weight.shape[1] || bias.shape[0] !== weight.shape[0])
    throw new Error(
      `linearWithBias: expected x [N, in], weight [out, in], bias [out], got [${x.shape}], [${weight.shape}], [${bias.shape}]`,
    );
  if (x.dtype !== "float32" || weight.dtype !== "float32" || !hasFusedKernels(LINEAR_WITH_BIAS))
    return linearWithBiasComposite(x, weight, bias);
  const fused = tf.customGrad(((a: tf.Tensor2D, w: tf.Tensor2D, b: tf.Tensor1D, save: tf.GradSaveFunc) => {
    save([a, w]);
    return {
      value: tf.fused.matMul({ a, b: w, transposeB: true, bias: b }), // [N, in] · [out, in]ᵀ + [out] → [N, out]
      gradFunc: (dy: tf.Tensor2D, saved: tf.Tensor[]) => {
        const [input, weightSaved] = saved as tf.Tensor2D[];
        return [
          tf.matMul(dy, weightSaved), // [N, out] · [out, in] → dx [N, in]
          tf.matMul(dy, input, true, false), // [N, out]ᵀ · [N, in] → dW [out, in]
          tf.engine().runKernel(BIAS_GRAD_KERNEL, { dy }) as tf.Tensor1D, // Σ_N dy → db [out]
        ];
      },
    };
  }) as any);
  return fused(x, weight, bias) as tf.Tensor2D;
}
