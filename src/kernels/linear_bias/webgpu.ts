/** The bias gradient of a linear layer on the `webgpu` backend: one column-wise WGSL program (tfjs's Sum over rows is a transpose, then a reduction). */
import type * as tf from "@tensorflow/tfjs";
import type { KernelArgs } from "../registry";
import { runColumnwise } from "../webgpu_programs";

/** inputs dy [N, out] → Σ over the N rows [out]. */
export function biasGradWebGpu({ inputs, backend }: KernelArgs): tf.TensorInfo {
  const { dy } = inputs;
  const [rows, cols] = dy.shape;
  return runColumnwise(
    backend,
    "bias_grad",
    { dy },
    rows,
    cols,
    `var value = 0.0;
        for (var r = 0; r < rows; r++) { value += dy[r * cols + col]; }`,
  );
}
