/**
 * The gradient of an embedding lookup on the `webgpu` backend: one element-wise WGSL program over the
 * table [V, D], each value summing dy over the rows that looked it up, in row order (deterministic; no
 * float atomics). tfjs's own gradient is a transpose, a fill, two transposes, a segment sum and a
 * transpose back: 6 dispatches.
 */
import type * as tf from "@tensorflow/tfjs";
import type { KernelArgs } from "../registry";
import { runElementwise } from "../webgpu_programs";

/** inputs dy [N, D], ids [N] int32; attrs tableRows V → d table [V, D] (ids outside [0, V) add nowhere). */
export function embeddingGradWebGpu({ inputs, backend, attrs }: KernelArgs): tf.TensorInfo {
  const { dy, ids } = inputs;
  const [count, cols] = dy.shape;
  return runElementwise(
    backend,
    "embedding_grad",
    { dy, ids },
    [attrs.tableRows as number, cols],
    `let column = index % uniforms.cols;
        let tableRow = index / uniforms.cols;
        var value = 0.0;
        for (var n = 0; n < uniforms.count; n++) {
          if (ids[n] == tableRow) { value += dy[n * uniforms.cols + column]; }
        }`,
    [
      { name: "cols", type: "i32", value: cols },
      { name: "count", type: "i32", value: count },
    ],
  );
}
