/** GELU (tanh) on the `webgpu` backend: one element-wise WGSL program forward, one backward. */
import type * as tf from "@tensorflow/tfjs";
import { runElementwise } from "../webgpu_programs";

type Args = { inputs: Record<string, tf.TensorInfo>; backend: object };

// u = √(2/π)·(x + 0.044715·x³); 0.5·(1 + tanh(u)) = 1 / (1 + e^(−2u)) (one exp, and no tanh of a large u).
const INNER = "let u = 0.7978845608028654 * (v + 0.044715 * v * v * v);";

/** inputs x → gelu(x), same shape. */
export function geluWebGpu({ inputs, backend }: Args): tf.TensorInfo {
  return runElementwise(
    backend,
    "gelu",
    { x: inputs.x },
    inputs.x.shape,
    `let v = x[index]; ${INNER} let value = v / (1.0 + exp(-2.0 * u));`,
  );
}

/** inputs x, dy (same shape) → dy · gelu'(x) = dy · (0.5(1 + t) + 0.5·x·(1 − t²)·√(2/π)(1 + 3·0.044715·x²)), t = tanh(u). */
export function geluGradWebGpu({ inputs, backend }: Args): tf.TensorInfo {
  return runElementwise(
    backend,
    "gelu_grad",
    { x: inputs.x, dy: inputs.dy },
    inputs.x.shape,
    `let v = x[index]; ${INNER}
        let t = 2.0 / (1.0 + exp(-2.0 * u)) - 1.0;
        let value = dy[index] * (0.5 * (1.0 + t) + 0.5 * v * (1.0 - t * t) * 0.7978845608028654 * (1.0 + 3.0 * 0.044715 * v * v));`,
  );
}
