/** A linear layer's product with its bias in tfjs ops: what every backend without the op's kernels runs. */
import * as tf from "@tensorflow/tfjs";

/**
 * x: [N, in], weight: [out, in], bias: [out] → x·Wᵀ + b [N, out] (tfjs's fused product: one program
 * forward; its gradient sums dy over the rows for the bias).
 */
export function linearWithBiasComposite(x: tf.Tensor2D, weight: tf.Tensor2D, bias: tf.Tensor1D): tf.Tensor2D {
  return tf.fused.matMul({ a: x, b: weight, transposeB: true, bias }) as tf.Tensor2D;
}
